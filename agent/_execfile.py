"""Run a script or a module as ``__main__``, exactly as ``python`` would.

In the manner of coverage.py's ``execfile.py``: a fresh ``__main__`` module,
``sys.argv`` and ``sys.path[0]`` as the interpreter sets them, the script's own
``__spec__`` / ``__file__`` / ``__loader__``, and on an uncaught exception a
traceback that starts at the user's code, not ours.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import os
import sys
import types
from types import CodeType

from autologagent import _frame_room


class NoSource(Exception):
    """The script or module to run does not exist (exit status 2, as python's)."""


class UncaughtException(Exception):
    """The user's code raised; ``exc`` is their exception, its traceback trimmed."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(exc)
        self.exc = exc


def _fresh_main(
    file: str, spec: importlib.machinery.ModuleSpec | None, loader: object
) -> types.ModuleType:
    main = types.ModuleType("__main__")
    main.__file__ = file
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    main.__annotations__ = {}
    main.__spec__ = spec
    main.__loader__ = loader  # type: ignore[assignment]
    main.__package__ = spec.parent if spec is not None else None
    main.__cached__ = spec.cached if spec is not None else None  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    return main


def _compile_script(path: str) -> CodeType:
    """Compile as python does: under the absolute path, which tracebacks then show."""
    with open(path, "rb") as handle:
        source = handle.read()
    try:
        return compile(source, os.path.abspath(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise UncaughtException(exc.with_traceback(None)) from None


def prepare_script(path: str, args: list[str]) -> tuple[CodeType, types.ModuleType]:
    """Set up ``__main__`` for ``python path args``; raise NoSource if it is missing."""
    if not os.path.exists(path):
        raise NoSource(f"can't open file {os.path.abspath(path)!r}: no such file or directory")
    if os.path.isdir(path):
        main_py = os.path.join(path, "__main__.py")
        if not os.path.exists(main_py):
            raise NoSource(f"can't find '__main__' module in {path!r}")
        sys.path[0] = os.path.abspath(path)
        code = _compile_script(main_py)
        file = os.path.abspath(main_py)
    else:
        sys.path[0] = os.path.dirname(os.path.realpath(path))
        code = _compile_script(path)
        file = os.path.abspath(path)
    loader = importlib.machinery.SourceFileLoader("__main__", file)
    main = _fresh_main(file, None, loader)
    sys.argv[:] = [path, *args]
    return code, main


def prepare_module(name: str, args: list[str]) -> tuple[CodeType, types.ModuleType]:
    """Set up ``__main__`` for ``python -m name args``."""
    sys.path[0] = os.getcwd()
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise NoSource(f"error while finding module specification for {name!r} ({exc})") from None
    if spec is not None and spec.submodule_search_locations is not None:
        package_main = f"{name}.__main__"
        try:
            spec = importlib.util.find_spec(package_main)
        except ImportError as exc:
            raise NoSource(
                f"{exc}; {name!r} is a package and cannot be directly executed"
            ) from None
        if spec is None:
            raise NoSource(
                f"no module named {package_main}; {name!r} is a package and cannot be "
                "directly executed"
            )
    if spec is None or spec.loader is None:
        raise NoSource(f"no module named {name}")
    try:
        code = spec.loader.get_code(spec.name)  # type: ignore[attr-defined]
    except SyntaxError as exc:
        raise UncaughtException(exc.with_traceback(None)) from None
    if code is None:
        raise NoSource(f"no code object available for {name}")
    file = spec.origin or ""
    main = _fresh_main(file, spec, spec.loader)
    sys.argv[:] = [file, *args]
    return code, main


def run(code: CodeType, main: types.ModuleType) -> None:
    """Execute the code in ``__main__``; wrap an uncaught exception with a trimmed traceback.

    The program runs with room on the frame stack (``_frame_room``): the door's
    own frames below it would otherwise move where its calls churn memory.
    ``SystemExit`` passes through untouched, so the interpreter exits as it would.
    """
    try:
        _frame_room.call_in_room(exec, code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        # Drop the agent's frames: the user's traceback starts in their code.
        exc.__traceback__ = _frame_room.without_frames(exc.__traceback__, _OWN_CODE)
        raise UncaughtException(exc) from None


_OWN_CODE = (run.__code__, *_frame_room.OWN_CODE)
