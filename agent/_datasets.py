"""Training and evaluation data, described rather than copied, and named after the caller.

A dataset input records what a run saw: the name of the caller's variable
(``X_train``), its shape, its column names and dtypes, and a digest of its
content (sampled on large data, so describing it stays cheap on the training
thread). The same record shape as MLflow's dataset inputs.
"""

from __future__ import annotations

import hashlib
import json
import sys
from types import FrameType
from typing import Any

# Rows hashed from each end of a large array: the digest tells data sets apart
# without reading gigabytes on the training thread.
_DIGEST_ROWS = 10_000
_AGENT_MODULE_PREFIXES = ("autologagent", "wrapt")


def caller_frame() -> FrameType | None:
    """The innermost frame outside the agent and wrapt: the user's call site."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(_AGENT_MODULE_PREFIXES):
            return frame
        frame = frame.f_back
    return None


def variable_name(value: Any, frame: FrameType | None) -> str | None:
    """The name the caller's frame binds to ``value`` (locals first), or None."""
    if frame is None or value is None:
        return None
    for namespace in (frame.f_locals, frame.f_globals):
        for name, bound in namespace.items():
            if bound is value and not name.startswith("_"):
                return name
    return None


def _shape(value: Any) -> tuple[int, ...]:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return tuple(int(n) for n in shape)
    try:
        return (len(value),)
    except TypeError:
        return ()


def schema(value: Any) -> dict[str, Any]:
    """Column names and dtypes of a DataFrame, else the array's dtype and shape."""
    columns = getattr(value, "columns", None)
    dtypes = getattr(value, "dtypes", None)
    if columns is not None and dtypes is not None:
        return {
            "type": "dataframe",
            "columns": [
                {"name": str(name), "type": str(dtype)}
                for name, dtype in zip(columns, dtypes, strict=False)
            ],
        }
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        shape = _shape(value)
        if getattr(value, "ndim", 1) == 1 and getattr(value, "name", None) is not None:
            return {"type": "series", "name": str(value.name), "dtype": str(dtype)}
        return {"type": "tensor", "dtype": str(dtype), "shape": [-1, *shape[1:]]}
    return {"type": type(value).__name__}


def digest(value: Any) -> str:
    """Eight hex characters of MD5 over the shape, dtypes and (a sample of) the content."""
    md5 = hashlib.md5(usedforsecurity=False)
    md5.update(repr(_shape(value)).encode())
    md5.update(json.dumps(schema(value), sort_keys=True).encode())
    for part in _content_samples(value):
        md5.update(part)
    return md5.hexdigest()[:8]


def _content_samples(value: Any) -> list[bytes]:
    """The bytes to hash: all of a small data set, the first and last rows of a large one.

    Rows are sliced before any conversion, so a large DataFrame is never copied.
    """
    try:
        import numpy

        if hasattr(value, "toarray") and hasattr(value, "nnz"):  # scipy.sparse
            return [numpy.ascontiguousarray(value.data[: _DIGEST_ROWS * 10]).tobytes()]
        rows = len(value)
        if rows <= 2 * _DIGEST_ROWS:
            parts = [value]
        elif hasattr(value, "iloc"):  # pandas
            parts = [value.iloc[:_DIGEST_ROWS], value.iloc[-_DIGEST_ROWS:]]
        else:
            parts = [value[:_DIGEST_ROWS], value[-_DIGEST_ROWS:]]
        samples = []
        for part in parts:
            array = part.to_numpy() if hasattr(part, "to_numpy") else numpy.asarray(part)
            if array.dtype == object:
                samples.append(repr(array.tolist()).encode())
            else:
                samples.append(numpy.ascontiguousarray(array).tobytes())
        return samples
    except Exception:
        return [repr(type(value)).encode()]


def record(run_id: str, value: Any, name: str, context: str) -> tuple[str, ...]:
    """The store's input record for ``value`` (see ``_store.Input``)."""
    shape = _shape(value)
    profile = {"num_rows": shape[0] if shape else None, "shape": list(shape)}
    return (
        run_id,
        name,
        digest(value),
        "code",
        type(value).__module__.partition(".")[0] + "." + type(value).__name__,
        json.dumps(schema(value)),
        json.dumps(profile),
        context,
    )
