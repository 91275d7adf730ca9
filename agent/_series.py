"""Metric series packed in chunks: how points travel from the queue into SQLite.

A row per point costs SQLite a b-tree insert per point (about 250,000 points/s
here, while holding up the training thread's GIL at every step). The store keeps
instead one row per chunk of up to ``CHUNK_POINTS`` consecutive points of one
series, with its steps, values and timestamps as packed little-endian arrays.
Packing runs in C (``sorted``, ``map``, ``itemgetter``, ``array``), so a flush
of a million points costs a fraction of a second, and reading a long series back
(for a chart of a million points) is a few blob reads instead of a million rows.

The logical model is unchanged and maps onto MLflow's: each point is
``(key, value, step, timestamp)``; the newest point of a series is the one with
the highest step, the last written among equal steps.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter

CHUNK_POINTS = 100_000

_series_of = itemgetter(0, 1)
_values_of = itemgetter(2)
_steps_of = itemgetter(3)
_seconds_of = itemgetter(4)
_LITTLE_ENDIAN = sys.byteorder == "little"
_INT64_MAX = 2**63 - 1


class Chunk:
    """Consecutive points of one series, ready to store."""

    __slots__ = ("run_id", "key", "steps", "values", "timestamps", "low", "high")

    def __init__(
        self, run_id: str, key: str, steps: list[int], values: array, timestamps: array
    ) -> None:
        self.run_id = run_id
        self.key = key
        # The lowest and highest step, found in the list: an array's items would be
        # made into int objects one by one, three times over (min, max, newest).
        self.low = _clamp(min(steps))
        self.high = _clamp(max(steps))
        self.steps = _int64(steps)
        self.values = values
        self.timestamps = timestamps

    def newest(self) -> int:
        """Index of the newest point: the highest step, the last one among equals."""
        steps = self.steps
        if steps[-1] == self.high:  # steps logged in order: the last one
            return len(steps) - 1
        return len(steps) - 1 - steps[::-1].index(self.high)

    def blobs(self) -> tuple[bytes, bytes, bytes]:
        return _pack(self.steps), _pack(self.values), _pack(self.timestamps)


def _pack(values: array) -> bytes:
    if not _LITTLE_ENDIAN:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def unpack(typecode: str, blob: bytes) -> array:
    values = array(typecode)
    values.frombytes(blob)
    if not _LITTLE_ENDIAN:
        values.byteswap()
    return values


def _clamp(value: int) -> int:
    return max(-_INT64_MAX, min(_INT64_MAX, value))


def _int64(values: list[int]) -> array:
    try:
        return array("q", values)
    except OverflowError:
        return array("q", map(_clamp, values))


def chunks(points: list[tuple[str, str, float, int, float]]) -> Iterator[Chunk]:
    """Group queued points ``(run_id, key, value, step, seconds)`` into chunks.

    Points of a series keep the order they were logged in.
    """
    ordered = sorted(points, key=_series_of)  # stable
    for (run_id, key), group in groupby(ordered, key=_series_of):
        members = list(group)
        for start in range(0, len(members), CHUNK_POINTS):
            part = members[start : start + CHUNK_POINTS]
            yield Chunk(
                run_id,
                key,
                list(map(_steps_of, part)),
                array("d", map(_values_of, part)),
                _int64(list(map(int, map((1000.0).__mul__, map(_seconds_of, part))))),
            )
