"""A classifier's training plots as PNG artifacts: confusion matrix, ROC and PR curves.

The numbers (the matrix, the curves) are computed in the training process, where
scikit-learn is loaded; the drawing happens in the agent's drawing process
(``autologagent._render``), which imports only numpy and matplotlib, so the
training loop never waits on matplotlib. Drawn with matplotlib's object API (a
``Figure`` on the Agg canvas), never ``pyplot``, and blitted: what every plot of
a kind shares is drawn once per process. matplotlib is an optional
extra; without it there are no plots and one warning.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any

PREFIX = "training_"
CONFUSION_MATRIX = PREFIX + "confusion_matrix.png"
ROC_CURVE = PREFIX + "roc_curve.png"
PR_CURVE = PREFIX + "precision_recall_curve.png"
_DRAW = "autologagent.integrations._sklearn_plots:draw"
_PREPARE = "autologagent.integrations._sklearn_plots:prepare"
_PREPARE_CONFUSION = "autologagent.integrations._sklearn_plots:prepare_confusion"
# Labels are read ahead from at most this many training targets (a sort of them).
_EXPECT_MAX_ROWS = 100_000
_MAX_CELLS = 20  # labels beyond this: the matrix's cells get no counts
_DPI = 80
_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
_available: bool | None = None


def _installed() -> bool:
    global _available
    if _available is None:
        import importlib.util

        _available = importlib.util.find_spec("matplotlib") is not None
    return _available


def available() -> bool:
    """Whether matplotlib is installed (one warning, at the first plot, when it is not)."""
    if not _installed():
        from autologagent import _errors

        _errors.warn(
            "matplotlib is not installed: no plots are logged "
            "(pip install 'autologagent[plots]' to get them)",
            key="no-matplotlib",
        )
    return _installed()


def warm_up() -> None:
    """Start the drawing process early, so it is ready when a fit ends (no warning:
    a program may never fit a classifier)."""
    if _installed():
        from autologagent import _render

        _render.prepare(_PREPARE)


def expect(y: Any) -> None:
    """A classifier's fit starts: have its confusion matrix's fixed parts drawn while
    it trains (a third of the plots' time at the fit's end, about 30 ms), for the
    labels its training targets hold. A guess: plots for other labels draw their own."""
    if not _installed() or y is None:
        return
    import numpy

    try:
        if len(y) > _EXPECT_MAX_ROWS:
            return
        targets = numpy.asarray(y)
        if targets.ndim != 1:
            return
        labels = [str(label) for label in numpy.unique(targets)]  # as submit() names them
    except Exception:  # targets numpy cannot sort: the fit's end draws it all
        return
    from autologagent import _render

    _render.prepare(_PREPARE_CONFUSION, {"labels": labels})


def submit(run_id: str, y_true: Any, y_pred: Any, y_proba: Any, classes: Any) -> None:
    """Compute one classifier's plot data now and have it drawn for ``run_id``."""
    if not available():
        return
    import numpy
    from autologagent import _artifacts, _render
    from sklearn import metrics

    y_true = numpy.asarray(y_true)
    labels = list(classes) if classes is not None else sorted(set(y_true.tolist()))
    matrix = metrics.confusion_matrix(y_true, y_pred, labels=labels)
    curves: list[tuple[str, Any, Any, Any, Any]] = []
    if y_proba is not None and getattr(y_proba, "ndim", 0) == 2 and y_proba.shape[1] >= 2:
        columns = [1] if len(labels) == 2 else range(len(labels))
        for column in columns:
            positive = y_true == labels[column]
            if positive.all() or not positive.any():
                continue
            scores = y_proba[:, column]
            fpr, tpr, _ = metrics.roc_curve(positive, scores)
            precision, recall, _ = metrics.precision_recall_curve(positive, scores)
            auc = metrics.auc(fpr, tpr)
            curves.append((f"class {labels[column]} (AUC {auc:.3f})", fpr, tpr, recall, precision))
    _render.submit(
        _DRAW,
        {
            "folder": _artifacts.run_artifact_dir(run_id),
            "matrix": matrix,
            "labels": [str(label) for label in labels],
            "curves": curves,
        },
    )


# --- in the drawing process -------------------------------------------------------

# Figures whose fixed parts (axes, ticks, labels, title) are drawn once and kept
# as pixels; each plot restores them and draws only what changes (matplotlib's
# blitting). A new Figure drawn whole and saved cost about 60 ms per PNG, this
# about 17: a loop of classifier fits no longer waits for its plots at exit.
_templates: dict[tuple[Any, ...], Any] = {}
_MAX_TEMPLATES = 8  # confusion matrices are kept per label set


def prepare() -> None:
    """Draw what every classifier's plots share ahead of the first fit's end: the
    curves' templates, and with them the fonts and text layout. The first plots
    of a fresh process then take less than half the time (220 ms before)."""
    _template(("roc",), lambda: _Curves(*_ROC))
    _template(("pr",), lambda: _Curves(*_PR))


def prepare_confusion(labels: list[str]) -> None:
    """Draw a confusion matrix's fixed parts for ``labels`` ahead of its plot."""
    _template(("confusion", tuple(labels)), lambda: _ConfusionMatrix(labels))


def draw(folder: str, matrix: Any, labels: list[str], curves: list[tuple[Any, ...]]) -> None:
    """Draw and write the plots into ``folder`` (the run's artifact folder)."""
    os.makedirs(folder, exist_ok=True)
    key = ("confusion", tuple(labels))
    confusion = _template(key, lambda: _ConfusionMatrix(labels))
    _write(folder, CONFUSION_MATRIX, confusion.render(matrix))
    if not curves:
        return
    roc = _template(("roc",), lambda: _Curves(*_ROC))
    _write(folder, ROC_CURVE, roc.render([(c[1], c[2], c[0]) for c in curves]))
    pr = _template(("pr",), lambda: _Curves(*_PR))
    _write(folder, PR_CURVE, pr.render([(c[3], c[4], c[0]) for c in curves]))


# x label, y label, title, diagonal, legend location
_ROC = ("False positive rate", "True positive rate", "ROC curve", True, "lower right")
_PR = ("Recall", "Precision", "Precision-recall curve", False, "lower left")


def _template(key: tuple[Any, ...], make: Any) -> Any:
    template = _templates.get(key)
    if template is None:
        if len(_templates) >= _MAX_TEMPLATES:
            _templates.pop(next(iter(_templates)))
        template = _templates[key] = make()
    return template


def _write(folder: str, name: str, data: bytes) -> None:
    partial = os.path.join(folder, f".partial-{os.getpid()}-{name}")
    with open(partial, "wb") as out:
        out.write(data)
    os.replace(partial, os.path.join(folder, name))


class _Blitted:
    """A figure drawn once without its animated artists; ``_png`` adds them on top."""

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(5.5, 4.5), dpi=_DPI)
        self.figure.subplots_adjust(left=0.14, right=0.95, bottom=0.12, top=0.92)
        self.canvas = FigureCanvasAgg(self.figure)
        self.axes = self.figure.add_subplot()
        self.background: Any = None

    def _fixed_parts_drawn(self) -> None:
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.figure.bbox)

    def _png(self, artists: list[Any]) -> bytes:
        canvas = self.canvas
        canvas.restore_region(self.background)
        renderer = canvas.get_renderer()
        for artist in artists:
            artist.draw(renderer)
        return _encode_png(canvas.buffer_rgba())


def _encode_png(rgba: Any) -> bytes:
    """The canvas's pixels as an RGB PNG, every row unfiltered, zlib level 1.

    PIL (and so matplotlib's ``print_png``) picks a filter for each row by trying
    all five: 6 ms for one of these plots, where zlib alone takes 1 ms. On flat
    colours and thin lines the filters gain nothing (17 KB either way), so the
    file is written here: a PNG is its signature and three chunks.
    """
    import numpy

    pixels = numpy.asarray(rgba)
    height, width = pixels.shape[:2]
    rows = numpy.zeros((height, 1 + width * 3), dtype=numpy.uint8)  # filter byte 0: none
    rows[:, 1:] = pixels[:, :, :3].reshape(height, width * 3)  # opaque: alpha dropped
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class _ConfusionMatrix(_Blitted):
    """One label set's matrix: the cells' colours, counts and colour bar change per plot."""

    def __init__(self, labels: list[str]) -> None:
        super().__init__()
        import numpy

        axes = self.axes
        size = len(labels)
        self.image = axes.imshow(numpy.zeros((size, size)), cmap="Blues", animated=True)
        self.colorbar = self.figure.colorbar(self.image, ax=axes)
        self.colorbar.ax.set_animated(True)
        ticks = range(size)
        axes.set_xticks(ticks, labels)
        axes.set_yticks(ticks, labels)
        axes.set_xlabel("Predicted label")
        axes.set_ylabel("True label")
        axes.set_title("Confusion matrix (training data)")
        self.cells = []
        if size <= _MAX_CELLS:
            self.cells = [
                axes.text(column, row, "", ha="center", va="center", animated=True)
                for row in ticks
                for column in ticks
            ]
        self._fixed_parts_drawn()

    def render(self, matrix: Any) -> bytes:
        low, high = (matrix.min(), matrix.max()) if matrix.size else (0, 1)
        self.image.set_data(matrix)
        self.image.set_clim(low, high)
        self.colorbar.update_normal(self.image)
        threshold = high / 2 if matrix.size else 0
        size = matrix.shape[0]
        for index, cell in enumerate(self.cells):
            value = matrix[index // size, index % size]
            cell.set_text(str(value))
            cell.set_color("white" if value > threshold else "black")
        return self._png([self.image, *self.cells, self.colorbar.ax])


class _Curves(_Blitted):
    """ROC or precision-recall axes: the curves and their legend change per plot."""

    def __init__(
        self, x_label: str, y_label: str, title: str, diagonal: bool, legend_at: str
    ) -> None:
        super().__init__()
        axes = self.axes
        if diagonal:
            axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.02)
        axes.set_xticks(_TICKS)  # fixed ticks: no tick search, and fewer labels to draw
        axes.set_yticks(_TICKS)
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        axes.set_title(title + " (training data)")
        self.legend_at = legend_at
        self._fixed_parts_drawn()

    def render(self, curves: list[tuple[Any, Any, str]]) -> bytes:
        axes = self.axes
        lines = [
            axes.plot(x, y, label=label, color=f"C{index % 10}", animated=True)[0]
            for index, (x, y, label) in enumerate(curves)
        ]
        legend = axes.legend(handles=lines, loc=self.legend_at, fontsize="small")
        legend.set_animated(True)
        try:
            return self._png([*lines, legend])
        finally:
            for line in lines:
                line.remove()
            legend.remove()
