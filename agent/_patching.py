"""Every patch goes through here: wrapt wrappers, one registry, one boundary.

(wrapt itself loads with the first patch, from ``_wrappers``: manual logging
and the run machinery, which read this module's boundary state, never need it.)

- ``patch(owner, name, wrapper, integration)`` wraps ``owner.name`` with wrapt's
  ``FunctionWrapper`` (signature, ``__doc__``, ``__wrapped__`` intact), records it,
  and is a no-op when the attribute is already wrapped by the agent.
- ``unpatch(integration)`` puts every original back where it was defined.
- ``training_wrapper(...)`` makes the boundary a training method is wrapped with:
  only the outermost patched call of a thread logs; the user's call runs exactly
  once with its return value and exception object untouched (and its traceback
  as without the agent); the agent's own failures are reported by
  ``_errors.report`` and never reach the user.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable
from types import CodeType, TracebackType
from typing import Any

from autologagent import _errors


class _Patch:
    __slots__ = ("owner", "name", "original", "wrapper", "integration")

    def __init__(
        self,
        owner: Any,
        name: str,
        original: Any,
        wrapper: Any,
        integration: str,
    ) -> None:
        self.owner = owner
        self.name = name
        self.original = original
        self.wrapper = wrapper
        self.integration = integration


_registry: dict[tuple[int, str], _Patch] = {}
_registry_lock = threading.RLock()


def patch(
    owner: Any,
    name: str,
    wrapper: Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any],
    integration: str,
) -> bool:
    """Wrap ``owner.name`` (a class or module attribute) once; return whether it was wrapped.

    For a class, the attribute is wrapped where it is defined (``owner.__dict__``);
    an inherited attribute is left to the class that defines it.
    """
    with _registry_lock:
        key = (id(owner), name)
        if key in _registry:
            return False
        namespace = vars(owner)
        if name not in namespace:
            return False
        original = namespace[name]
        from autologagent._wrappers import AgentFunctionWrapper, wrap_module_function

        if isinstance(original, AgentFunctionWrapper):
            return False
        if not (inspect.isfunction(original) or inspect.isbuiltin(original)):
            return False
        if inspect.ismodule(owner) and inspect.isfunction(original):
            wrapped = wrap_module_function(original, wrapper)
        else:
            wrapped = AgentFunctionWrapper(original, wrapper)
        setattr(owner, name, wrapped)
        _registry[key] = _Patch(owner, name, original, wrapped, integration)
        return True


def patch_alias(owner: Any, name: str, defining_owner: Any, integration: str) -> bool:
    """Install at ``owner.name`` the wrapper already at ``defining_owner.name`` (a re-export).

    ``sklearn.metrics.r2_score`` is ``sklearn.metrics._regression.r2_score``: both
    names must hold the same wrapper, so that pickle, which looks a function up
    by its defining module and name, finds the very object it was given. A
    re-export made after the defining module was patched (a package's
    ``from .training import train``) already holds the wrapper: it is recorded
    too, so that ``unpatch`` puts the original back there as well.
    """
    with _registry_lock:
        key = (id(owner), name)
        if key in _registry:
            return False
        record = _registry.get((id(defining_owner), name))
        current = vars(owner).get(name)
        if record is None or (current is not record.original and current is not record.wrapper):
            return False
        if current is not record.wrapper:
            setattr(owner, name, record.wrapper)
        _registry[key] = _Patch(owner, name, record.original, record.wrapper, integration)
        return True


def warn_if_untested(
    module: Any, framework: str, supported: tuple[tuple[int, int], tuple[int, int]], key: str
) -> None:
    """One warning when ``module.__version__`` is outside the (major, minor) range tested.

    A local version label (``2.13.0+cpu``) is left out; a version that does not
    parse is not warned about.
    """
    version = str(getattr(module, "__version__", "")).split("+")[0]
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return
    low, high = supported
    if not low <= major_minor <= high:
        _errors.warn(
            f"{framework} {version} is outside the tested range "
            f"{low[0]}.{low[1]}-{high[0]}.{high[1]}; autologging it anyway",
            key=key,
        )


def unpatch(integration: str | None = None) -> int:
    """Restore the originals of one integration (or all); return how many were restored."""
    restored = 0
    with _registry_lock:
        for key, record in list(_registry.items()):
            if integration is not None and record.integration != integration:
                continue
            if vars(record.owner).get(record.name) is record.wrapper:
                setattr(record.owner, record.name, record.original)
            del _registry[key]
            restored += 1
    return restored


# --- the boundary -------------------------------------------------------------


class _Depth(threading.local):
    """A thread's nesting depth (0 or 1): a class default, so a thread that never set it
    reads 0 without the AttributeError that ``getattr(local, name, 0)`` raises and
    catches inside (about a microsecond, on every PyTorch step)."""

    depth = 0


_thread_state = _Depth()
# How many threads are inside a training call now: hot paths (a PyTorch step) read
# this one global, and the thread-local depth only when it is not 0.
open_training_calls = 0
_open_lock = threading.Lock()


def _count_open(change: int) -> None:
    global open_training_calls
    with _open_lock:
        open_training_calls += change


def _new_lock_in_child() -> None:
    """A lock held by another thread at ``fork`` would stay held in the child."""
    global _open_lock
    _open_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def inside_training_call() -> bool:
    """Whether this thread is inside an outermost patched training call."""
    return _thread_state.depth > 0


class TrainingHooks:
    """What an integration does around the user's call; each method may fail safely."""

    def start(self) -> None:
        """Called before the user's call."""

    def succeeded(self, result: Any) -> None:
        """Called with the user's return value."""

    def failed(self, exc: BaseException) -> None:
        """Called with the user's exception, which is re-raised afterwards."""

    def arguments(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """The arguments the user's call runs with, after ``start`` (default: unchanged).

        XGBoost's and LightGBM's integrations add their per-round callback here,
        in new containers: the user's own lists and dicts are never changed.
        """
        return args, kwargs


HooksFactory = Callable[[Any, tuple, dict], "TrainingHooks | None"]


def training_wrapper(where: str, make_hooks: HooksFactory) -> Callable[..., Any]:
    """A wrapt wrapper that runs the user's call once, with hooks around the outermost.

    ``make_hooks(instance, args, kwargs)`` returns None when the call is not to be
    logged (disabled, not an estimator, or a worker inside its parent's training
    call). The wrapper is the only frame the agent puts between the caller and the
    original; it takes itself out of the traceback of an exception it passes on, so
    the user sees the traceback plain Python would show.
    """

    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        if _thread_state.depth:
            try:
                return wrapped(*args, **kwargs)
            except BaseException as exc:
                exc.__traceback__ = _without_frame(exc.__traceback__, wrapper.__code__)
                raise
        _thread_state.depth = 1
        _count_open(1)
        try:
            hooks = None
            call_args, call_kwargs = args, kwargs
            try:
                hooks = make_hooks(instance, args, kwargs)
                if hooks is not None:
                    hooks.start()
                    call_args, call_kwargs = hooks.arguments(args, kwargs)
            except Exception as own:
                # Hooks that started still see the end of the call, so a run they opened closes.
                _errors.report(own, where)
            try:
                result = wrapped(*call_args, **call_kwargs)
            except BaseException as exc:
                exc.__traceback__ = _without_frame(exc.__traceback__, wrapper.__code__)
                if hooks is not None:
                    try:
                        hooks.failed(exc)
                    except Exception as own:
                        _errors.report(own, where)
                raise
            if hooks is not None:
                try:
                    hooks.succeeded(result)
                except Exception as own:
                    _errors.report(own, where)
            return result
        finally:
            _thread_state.depth = 0
            _count_open(-1)

    return wrapper


class CallObserver:
    """Sees the result of an observed (non-training) call, such as ``predict`` or ``score``."""

    def succeeded(self, result: Any) -> None:
        """Called with the user's return value."""


ObserverFactory = Callable[[Any, tuple, dict], "CallObserver | None"]
_observing = _Depth()


def observing_wrapper(where: str, make_observer: ObserverFactory) -> Callable[..., Any]:
    """A wrapt wrapper for calls that evaluate rather than train (``predict``, ``score``).

    Only the outermost observed call of a thread outside any training call is
    observed: ``score`` calling ``predict`` inside, or the agent computing its
    own training metrics, observes nothing. The call itself runs exactly once,
    untouched, and the wrapper leaves no frame in the user's tracebacks.
    """

    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        if _thread_state.depth or _observing.depth:
            try:
                return wrapped(*args, **kwargs)
            except BaseException as exc:
                exc.__traceback__ = _without_frame(exc.__traceback__, wrapper.__code__)
                raise
        observer = None
        try:
            observer = make_observer(instance, args, kwargs)
        except Exception as own:
            _errors.report(own, where)
        if observer is None:
            try:
                return wrapped(*args, **kwargs)
            except BaseException as exc:
                exc.__traceback__ = _without_frame(exc.__traceback__, wrapper.__code__)
                raise
        _observing.depth = 1
        try:
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                exc.__traceback__ = _without_frame(exc.__traceback__, wrapper.__code__)
                raise
            try:
                observer.succeeded(result)
            except Exception as own:
                _errors.report(own, where)
            return result
        finally:
            _observing.depth = 0

    return wrapper


def _without_frame(tb: TracebackType | None, code: CodeType) -> TracebackType | None:
    """The traceback without its first entry when that entry is the wrapper's frame."""
    if tb is not None and tb.tb_frame.f_code is code:
        return tb.tb_next
    return tb
