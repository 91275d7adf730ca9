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

import io
import pickle
from typing import Any

FILE = "estimator.html"
_MEMO = "_autologagent_view_memo"  # in the copy's __dict__: not "fitted" (no "_" at the end)


class Snapshot:
    """The pickled copy of a fitted estimator, read back once on the background worker:
    for the modules its pickle names (the model's requirements) and for the view.

    Reading it with a recording ``find_class`` costs no more than a plain
    ``pickle.loads`` (the C unpickler asks only for each class and function), where
    listing the modules with ``pickletools.genops`` took 7 ms for the seed's forest.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._modules: set[str] = set()
        self._estimator: Any = None
        self._error: Exception | None = None
        self._read = False

    def modules(self) -> set[str]:
        self._load()
        if self._error is not None:  # the view fails on its own; the model still goes
            from autologagent import _models

            return _models.pickle_modules(self.data)
        return self._modules

    def take_estimator(self) -> Any:
        """The copy (made once), handed over: the snapshot keeps no reference to it."""
        self._load()
        if self._error is not None:
            raise self._error
        estimator, self._estimator = self._estimator, None
        return estimator

    def _load(self) -> None:
        if self._read:
            return
        self._read = True
        modules = self._modules

        class Recording(pickle.Unpickler):
            def find_class(self, module: str, name: str, /) -> Any:
                modules.add(module)
                return super().find_class(module, name)

        try:
            self._estimator = Recording(io.BytesIO(self.data)).load()
        except Exception as exc:
            self._error = exc


def write(run_id: str, snapshot: Snapshot) -> None:
    """Write the view of the pickled estimator ``snapshot`` into run ``run_id``."""
    from autologagent import _artifacts
    from sklearn.utils import estimator_html_repr

    estimator = snapshot.take_estimator()
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
