"""Post-import hooks by package prefix, on a ``sys.meta_path`` finder.

wrapt's post-import hooks fire for exact module names. An integration needs every
module under its framework's package (``sklearn.ensemble._forest``, ...), whose
names differ between versions, so the agent keeps its own small finder keyed by
the top-level package name, in the same shape as ``wrapt.importer``: the hook
runs right after the module has executed, and hooks run outside the registry
lock to avoid deadlocks.

The finder costs one dictionary lookup per import that is not of interest.
"""

import sys
from _thread import RLock
from _thread import _local as thread_local

from autologagent import _frame_room

TYPE_CHECKING = False
if TYPE_CHECKING:  # start-up cost: no typing, importlib.abc or threading at run time
    from collections.abc import Callable
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    ModuleHook = Callable[[ModuleType], None]

_hooks: "dict[str, list[ModuleHook]]" = {}
_lock = RLock()
_finder: "PackageHookFinder | None" = None


class _HookedLoader:
    """Delegates to the real loader, then runs the hooks for the module."""

    def __init__(self, loader: object) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> object:
        return getattr(self._loader, name)

    def create_module(self, spec: "ModuleSpec") -> "ModuleType | None":
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: "ModuleType") -> None:
        spec = module.__spec__
        if spec is not None and spec.loader is self:
            spec.loader = self._loader  # type: ignore[assignment]
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._loader
        try:
            # The outermost hooked import runs with room on the frame stack: this
            # frame would otherwise move where the framework's import churns memory.
            _frame_room.call_in_room(self._loader.exec_module, module)  # type: ignore[attr-defined]
        except BaseException as exc:
            exc.__traceback__ = _frame_room.without_frames(exc.__traceback__, _OWN_CODE)
            raise
        run_hooks(module)


class PackageHookFinder:
    """A ``sys.meta_path`` finder that wraps the loader of every module under a watched package."""

    def __init__(self) -> None:
        self._busy = thread_local()

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> "ModuleSpec | None":
        if fullname.partition(".")[0] not in _hooks:
            return None
        busy = self._busy.__dict__.setdefault("names", set())
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = _find_with_the_others(fullname, path, target, self)
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _HookedLoader(spec.loader)  # type: ignore[assignment]
        return spec


def _find_with_the_others(
    fullname: str, path: object, target: object, me: PackageHookFinder
) -> "ModuleSpec | None":
    for finder in list(sys.meta_path):
        if finder is me:
            continue
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        spec = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


_OWN_CODE = (_HookedLoader.exec_module.__code__, *_frame_room.OWN_CODE)


def run_hooks(module: "ModuleType") -> None:
    with _lock:
        hooks = list(_hooks.get(module.__name__.partition(".")[0], ()))
    for hook in hooks:
        hook(module)


def install_finder() -> None:
    global _finder
    with _lock:
        if _finder is None or _finder not in sys.meta_path:
            _finder = PackageHookFinder()
            sys.meta_path.insert(0, _finder)


def watch_package(package: str, hook: "ModuleHook") -> None:
    """Call ``hook(module)`` for ``package`` and each module under it, once executed.

    Modules already imported are handed to the hook at once, parents first.
    """
    install_finder()
    with _lock:
        hooks = _hooks.setdefault(package, [])
        if hook in hooks:
            return
        hooks.append(hook)
        loaded = [
            module
            for name, module in list(sys.modules.items())
            if (name == package or name.startswith(package + ".")) and module is not None
        ]
    for module in sorted(loaded, key=lambda m: m.__name__.count(".")):
        hook(module)


def unwatch_package(package: str, hook: "ModuleHook") -> None:
    with _lock:
        hooks = _hooks.get(package, [])
        if hook in hooks:
            hooks.remove(hook)
        if not hooks:
            _hooks.pop(package, None)
