"""The drawing process's side of a classifier's plots: PNGs drawn with Pillow.

Pillow (which matplotlib installs) and matplotlib's own DejaVu Sans font, with
matplotlib's looks (its figure margins, ``tab10`` line colours, ``Blues`` colour
map), but not matplotlib itself: its import took the drawing process half a
second of CPU while the program imported scikit-learn on the other core, and two
busy cores run slower here (a process spinning beside it makes ``import
sklearn`` 10 % slower): the seed paid about 100 ms for it. Pillow's import takes
15 ms, a plot 4 to 5 ms.

Everything is drawn at twice the size and halved (``Image.reduce``): that
smooths the lines and the text as matplotlib's anti-aliasing does. The plot data
come as plain lists, so this process never imports numpy either.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from typing import Any

WIDTH, HEIGHT = 440, 360  # pixels, as matplotlib's 5.5 x 4.5 inches at 80 dpi
SCALE = 2  # drawn at twice the size, then halved
PIXELS_PER_POINT = 80 / 72
# The axes, in fractions of the figure (matplotlib's subplots_adjust).
LEFT, RIGHT, BOTTOM, TOP = 0.14, 0.95, 0.12, 0.92
TICK, PAD = 4, 6  # tick length and the gap to its label, in pixels
LINE_WIDTH = round(1.5 * PIXELS_PER_POINT * SCALE)  # matplotlib's default 1.5 pt
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
MAX_CELLS = 20  # labels beyond this: the matrix's cells get no counts

Colour = tuple[int, int, int]
BLACK: Colour = (0, 0, 0)
WHITE: Colour = (255, 255, 255)
GREY: Colour = (128, 128, 128)
LEGEND_EDGE: Colour = (204, 204, 204)
TAB10: tuple[Colour, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
# matplotlib's "Blues" (ColorBrewer's nine steps), from low to high.
BLUES: tuple[Colour, ...] = (
    (247, 251, 255),
    (222, 235, 247),
    (198, 219, 239),
    (158, 202, 225),
    (107, 174, 214),
    (66, 146, 198),
    (33, 113, 181),
    (8, 81, 156),
    (8, 48, 107),
)

_fonts: dict[int, Any] = {}


def load() -> None:
    """Import Pillow and load the fonts: what the first plot would otherwise wait for."""
    for points in (8.33, 10, 12):
        _font(points)


def confusion_matrix_png(matrix: list[list[int]], labels: list[str]) -> bytes:
    """The matrix as coloured cells with their counts, a colour bar at its right."""
    canvas = _Canvas()
    draw = canvas.draw
    size = len(labels)
    values = [value for row in matrix for value in row]
    low, high = (min(values), max(values)) if values else (0, 1)
    span = (high - low) or 1
    width, height = WIDTH * SCALE, HEIGHT * SCALE
    # A square in the axes' area, less the colour bar's room (as imshow and colorbar).
    area_left, area_right = LEFT * width, (RIGHT - 0.17) * width
    area_top, area_bottom = (1 - TOP) * height, (1 - BOTTOM) * height
    side = min(area_right - area_left, area_bottom - area_top)
    x0 = area_left + (area_right - area_left - side) / 2
    y0 = area_top + (area_bottom - area_top - side) / 2
    cell = side / max(size, 1)
    # Cell i is centred on i, the first row at the top (imshow's axes).
    axes = _Axes(canvas, (x0, y0, x0 + side, y0 + side), (-0.5, size - 0.5), (size - 0.5, -0.5))
    for row in range(size):
        for column in range(size):
            value = matrix[row][column]
            box = (
                x0 + column * cell,
                y0 + row * cell,
                x0 + (column + 1) * cell,
                y0 + (row + 1) * cell,
            )
            draw.rectangle(box, fill=_blue((value - low) / span))
            if size <= MAX_CELLS:
                colour = WHITE if value > high / 2 else BLACK
                middle = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                canvas.text(middle, str(value), 10, "mm", colour)
    axes.frame()
    ticks = list(enumerate(labels))
    axes.ticks(ticks, ticks)
    widest = max((_font(10).getlength(label) for label in labels), default=0)
    axes.labels(
        "Predicted label",
        "True label",
        "Confusion matrix (training data)",
        PAD * SCALE + widest + 12 * SCALE,
    )
    tick, pad = TICK * SCALE, PAD * SCALE
    bar_left = x0 + side + 0.04 * width
    bar_right = bar_left + 0.035 * width
    rows = max(int(side), 2)
    for row in range(rows):  # the colour bar: high at the top
        y = y0 + row * side / rows
        draw.line((bar_left, y, bar_right, y), fill=_blue(1 - row / (rows - 1)), width=2)
    draw.rectangle((bar_left, y0, bar_right, y0 + side), outline=BLACK, width=SCALE)
    for value in _round_ticks(low, high):
        y = y0 + side - (value - low) / span * side
        draw.line((bar_right, y, bar_right + tick, y), fill=BLACK, width=SCALE)
        canvas.text((bar_right + pad, y), f"{value:g}", 10, "lm")
    return canvas.png()


def curves_png(
    curves: list[tuple[list[float], list[float], str]],
    x_label: str,
    y_label: str,
    title: str,
    diagonal: bool,
    legend_at: str,
) -> bytes:
    """Curves ``(xs, ys, label)`` on unit axes (ROC or precision-recall), with a legend."""
    canvas = _Canvas()
    width, height = WIDTH * SCALE, HEIGHT * SCALE
    box = (LEFT * width, (1 - TOP) * height, RIGHT * width, (1 - BOTTOM) * height)
    axes = _Axes(canvas, box, (0.0, 1.0), (0.0, 1.02))
    if diagonal:
        _dashed_line(canvas.draw, axes.pixel(0, 0), axes.pixel(1, 1), GREY)
    for index, (xs, ys, _label) in enumerate(curves):
        points = [axes.pixel(x, y) for x, y in zip(xs, ys, strict=False)]
        if len(points) > 1:
            canvas.draw.line(points, fill=TAB10[index % 10], width=LINE_WIDTH, joint="curve")
    axes.frame()
    ticks = [(value, f"{value:.2f}") for value in TICKS]
    axes.ticks(ticks, ticks)
    axes.labels(x_label, y_label, title + " (training data)", 36 * SCALE)
    if curves:
        entries = [(TAB10[index % 10], curve[2]) for index, curve in enumerate(curves)]
        _legend(canvas, axes, entries, legend_at.endswith("right"))
    return canvas.png()


class _Canvas:
    """A white image at twice the plot's size, and text drawn on it in points."""

    def __init__(self) -> None:
        from PIL import Image, ImageDraw

        self.image = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE), WHITE)
        self.draw = ImageDraw.Draw(self.image)

    def text(
        self, xy: tuple[float, float], text: str, points: float, anchor: str, fill: Colour = BLACK
    ) -> None:
        self.draw.text(xy, text, font=_font(points), anchor=anchor, fill=fill)

    def vertical_text(self, centre: tuple[float, float], text: str, points: float) -> None:
        """Text turned a quarter left, centred on ``centre`` (a y axis' label)."""
        from PIL import Image, ImageDraw

        font = _font(points)
        left, top, right, bottom = font.getbbox(text)
        label = Image.new("RGB", (right - left + 4, bottom - top + 4), WHITE)
        ImageDraw.Draw(label).text((2 - left, 2 - top), text, font=font, fill=BLACK)
        label = label.rotate(90, expand=True)
        x, y = round(centre[0] - label.width / 2), round(centre[1] - label.height / 2)
        self.image.paste(label, (x, y))

    def png(self) -> bytes:
        return encode_png(self.image.reduce(SCALE))


class _Axes:
    """A plot's axes: data coordinates to pixels, the frame, ticks and labels."""

    def __init__(
        self,
        canvas: _Canvas,
        box: tuple[float, float, float, float],
        xlim: tuple[float, float],
        ylim: tuple[float, float],
    ) -> None:
        """``box``: left, top, right, bottom in pixels; ``ylim`` bottom to top."""
        self.canvas = canvas
        self.left, self.top, self.right, self.bottom = box  # pixel rows grow down
        self.xlim, self.ylim = xlim, ylim

    def pixel(self, x: float, y: float) -> tuple[float, float]:
        (x_low, x_high), (y_low, y_high) = self.xlim, self.ylim
        return (
            self.left + (x - x_low) / (x_high - x_low) * (self.right - self.left),
            self.bottom + (y - y_low) / (y_high - y_low) * (self.top - self.bottom),
        )

    def frame(self) -> None:
        box = (self.left, self.top, self.right, self.bottom)
        self.canvas.draw.rectangle(box, outline=BLACK, width=SCALE)

    def ticks(self, x_ticks: list[tuple[float, str]], y_ticks: list[tuple[float, str]]) -> None:
        draw, tick, pad = self.canvas.draw, TICK * SCALE, PAD * SCALE
        for value, label in x_ticks:
            x = self.pixel(value, self.ylim[0])[0]
            draw.line((x, self.bottom, x, self.bottom + tick), fill=BLACK, width=SCALE)
            self.canvas.text((x, self.bottom + pad), label, 10, "mt")
        for value, label in y_ticks:
            y = self.pixel(self.xlim[0], value)[1]
            draw.line((self.left - tick, y, self.left, y), fill=BLACK, width=SCALE)
            self.canvas.text((self.left - pad, y), label, 10, "rm")

    def labels(self, x_label: str, y_label: str, title: str, y_label_gap: float) -> None:
        """``y_label_gap``: from the axes' left edge to the y label's middle, in pixels."""
        middle = (self.left + self.right) / 2
        self.canvas.text((middle, self.bottom + 22 * SCALE), x_label, 10, "mt")
        y_label_at = (self.left - y_label_gap, (self.top + self.bottom) / 2)
        self.canvas.vertical_text(y_label_at, y_label, 10)
        self.canvas.text((middle, self.top - PAD * SCALE), title, 12, "mb")


def _dashed_line(
    draw: Any, start: tuple[float, float], end: tuple[float, float], fill: Colour
) -> None:
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    dash, gap = 4 * SCALE, 2 * SCALE
    position = 0.0
    while position < length:
        stop = min(position + dash, length)
        begin_at, end_at = position / length, stop / length
        segment = (
            x0 + (x1 - x0) * begin_at,
            y0 + (y1 - y0) * begin_at,
            x0 + (x1 - x0) * end_at,
            y0 + (y1 - y0) * end_at,
        )
        draw.line(segment, fill=fill, width=SCALE)
        position = stop + gap


def _legend(
    canvas: _Canvas, axes: _Axes, entries: list[tuple[Colour, str]], at_right: bool
) -> None:
    """A boxed legend in the axes' lower corner: a line sample and a label per curve."""
    font = _font(8.33)
    line_height = font.getbbox("Ag")[3] + 4 * SCALE
    sample, pad, margin = 16 * SCALE, 4 * SCALE, 6 * SCALE
    width = pad * 3 + sample + max(font.getlength(label) for _, label in entries)
    height = pad * 2 + line_height * len(entries)
    x = axes.right - margin - width if at_right else axes.left + margin
    y = axes.bottom - margin - height
    box = (x, y, x + width, y + height)
    canvas.draw.rounded_rectangle(
        box, radius=3 * SCALE, fill=WHITE, outline=LEGEND_EDGE, width=SCALE
    )
    for row, (colour, label) in enumerate(entries):
        middle = y + pad + line_height * (row + 0.5)
        canvas.draw.line((x + pad, middle, x + pad + sample, middle), fill=colour, width=LINE_WIDTH)
        canvas.draw.text((x + pad * 2 + sample, middle), label, font=font, anchor="lm", fill=BLACK)


def _blue(fraction: float) -> Colour:
    """``Blues`` at ``fraction`` (0 to 1), interpolated between its steps."""
    position = min(max(fraction, 0.0), 1.0) * (len(BLUES) - 1)
    low = int(position)
    high = min(low + 1, len(BLUES) - 1)
    weight = position - low
    red, green, blue = (
        round(a + (b - a) * weight) for a, b in zip(BLUES[low], BLUES[high], strict=True)
    )
    return red, green, blue


def _round_ticks(low: float, high: float) -> list[float]:
    """About five round values from ``low`` to ``high`` (steps of 1, 2, 2.5 or 5 x 10^n)."""
    if high <= low:
        return [low]
    rough = (high - low) / 5
    power = 10 ** math.floor(math.log10(rough))
    step = next(factor * power for factor in (1, 2, 2.5, 5, 10) if factor * power >= rough)
    ticks, value = [], math.ceil(low / step) * step
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _font(points: float) -> Any:
    from PIL import ImageFont

    size = round(points * PIXELS_PER_POINT * SCALE)
    font = _fonts.get(size)
    if font is None:
        path = _font_path
        try:
            font = ImageFont.truetype(path, size) if path else ImageFont.load_default(size)
        except (OSError, TypeError):  # a Pillow without FreeType, or before 10.1
            font = ImageFont.load_default()
        _fonts[size] = font
    return font


def _find_font() -> str | None:
    """matplotlib's DejaVu Sans, found without importing matplotlib."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "mpl-data", "fonts", "ttf", "DejaVuSans.ttf")
        if os.path.exists(path):
            return path
    return None


_font_path = _find_font()


def encode_png(image: Any) -> bytes:
    """An RGB image as a PNG, every row unfiltered, zlib level 1.

    Pillow's encoder picks a filter for each row by trying all five: 6 ms for one
    of these plots, where zlib alone takes 1 ms. On flat colours and thin lines
    the filters gain nothing (17 KB either way), so the file is written here: a
    PNG is its signature and three chunks.
    """
    width, height = image.size
    pixels = image.tobytes()
    stride = width * 3
    rows = b"".join(b"\x00" + pixels[row * stride : (row + 1) * stride] for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows, 1)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
