"""``estimator.html``: scikit-learn's HTML view of a fitted estimator, as MLflow logs it.

Made on the background worker from the pickled snapshot of the logged model (a
copy that belongs to the agent), so it never touches the user's estimator.

The view lists each estimator's fitted attributes, properties included, and
scikit-learn evaluates every property twice to do so: its ``__dir__`` tests
them with ``hasattr``, then ``inspect.getmembers`` reads them. Some are costly:
a 200-tree forest's ``estimators_samples_`` redraws every tree's bootstrap
sample, and ``feature_importances_`` walks every tree (50 ms together). That
ran on a thread holding the GIL while the program went on scoring, or at exit.
So, in the copy, each estimator's class is swapped for a subclass of the same
name whose properties are computed once; the HTML is the same, at about half
the cost (100-160 ms before, 60 ms after, for the seed's forest).
"""

from __future__ import annotations

import pickle
from typing import Any

FILE = "estimator.html"
_MEMO = "_autologagent_view_memo"  # in the copy's __dict__: not "fitted" (no "_" at the end)


def write(run_id: str, snapshot: bytes) -> None:
    """Write the view of the pickled estimator ``snapshot`` into run ``run_id``."""
    from autologagent import _artifacts
    from sklearn.utils import estimator_html_repr

    estimator = pickle.loads(snapshot)
    _compute_properties_once(estimator)
    _artifacts.write_text(run_id, FILE, estimator_html_repr(estimator))


def _compute_properties_once(estimator: Any) -> None:
    """Swap the classes of the copy and of the estimators inside it (Pipeline steps)."""
    seen: set[int] = set()
    pending = [estimator]
    while pending:
        current = pending.pop()
        if id(current) in seen or isinstance(current, type) or not hasattr(current, "get_params"):
            continue  # a class in the copy is the program's own class: never swapped
        seen.add(id(current))
        try:
            nested = current.get_params(deep=False).values()
        except Exception:
            nested = ()
        for value in nested:
            if isinstance(value, (list, tuple)):  # steps, transformers: tuples of them
                pending.extend(part for item in value if isinstance(item, tuple) for part in item)
            else:
                pending.append(value)
        try:
            current.__class__ = _viewing_class(type(current))
        except Exception:  # a class that cannot be subclassed or swapped: viewed as it is
            pass


_viewing_classes: dict[type, type] = {}


def _viewing_class(cls: type) -> type:
    """``cls`` under its own name, with every property computed once per instance."""
    viewing = _viewing_classes.get(cls)
    if viewing is not None:
        return viewing
    properties = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, property) and value.fget is not None:
                properties[name] = _computed_once(name, value)
    namespace = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        **properties,
    }
    viewing = _viewing_classes[cls] = type(cls.__name__, (cls,), namespace)
    return viewing


def _computed_once(name: str, original: property) -> property:
    def get(self: Any) -> Any:
        memo = self.__dict__.setdefault(_MEMO, {})
        if name not in memo:
            try:
                memo[name] = (True, original.__get__(self))
            except AttributeError as exc:  # hasattr() is False: remembered as such
                memo[name] = (False, exc)
        found, value = memo[name]
        if found:
            return value
        raise value

    return property(get, doc=original.__doc__)
