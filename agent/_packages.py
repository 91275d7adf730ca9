"""Which installed distributions stand behind which imported modules, and their versions.

Used for a model's ``requirements.txt`` (the distributions its pickle refers to)
and for a run's (the distributions behind every top-level module the program
imported). importlib-metadata answers from the installed metadata: no
subprocess, no ``pip freeze``. The module-to-distribution table is built once
per process (tens of milliseconds), on the background thread.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import types
from collections.abc import Iterable
from typing import Any

_lock = threading.Lock()
_module_table: dict[str, list[str]] | None = None
_versions: dict[str, str | None] = {}

# Distributions that are tooling, never a requirement of a model or a program.
_NEVER_REQUIRED = frozenset({"pip", "setuptools", "wheel", "autologagent"})


def _metadata():  # type: ignore[no-untyped-def]
    """importlib-metadata: the standard library's copy when the program has loaded it.

    scikit-learn, PyTorch and pandas import ``importlib.metadata`` themselves, and
    it answers ``version`` and ``packages_distributions`` as the backport does.
    Importing the backport beside it cost 33 ms, and its first lookup 20 ms more
    than the loaded copy's, on the thread that shares the GIL with training.
    """
    loaded = sys.modules.get("importlib.metadata")
    if hasattr(loaded, "packages_distributions"):  # not one being imported right now
        return loaded
    try:
        import importlib_metadata as metadata  # the maintained backport
    except ImportError:  # pragma: no cover - a dependency of the agent
        from importlib import metadata  # type: ignore[no-redef]
    return metadata


def module_distributions() -> dict[str, list[str]]:
    """Top-level module name -> the distributions that provide it (cached)."""
    global _module_table
    with _lock:
        if _module_table is None:
            _module_table = {
                module: sorted(set(dists))
                for module, dists in _metadata().packages_distributions().items()
            }
        return _module_table


def version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None."""
    if distribution not in _versions:
        try:
            _versions[distribution] = _read_version(_metadata().distribution(distribution))
        except Exception:
            _versions[distribution] = None
    return _versions[distribution]


_VERSION_HEADER = re.compile(r"^Version:[ \t]*(\S+)", re.MULTILINE)


def _read_version(found: Any) -> str | None:
    """The ``Version:`` header of a distribution's metadata, read off its first lines.

    ``metadata.version()`` parses the whole file as an email message first: 8 ms
    for a program's 18 distributions, and garbage enough for several collections,
    on the thread that shares the GIL with training, where reading the line
    takes 1.6 ms and sets off none. (The parse remains for metadata without it.)
    """
    text = found.read_text("METADATA") or found.read_text("PKG-INFO") or ""
    match = _VERSION_HEADER.search(text.split("\n\n", 1)[0])
    return match.group(1) if match else found.version


def top_level(module_names: Iterable[str]) -> set[str]:
    """The top-level package of each dotted module name."""
    return {name.partition(".")[0] for name in module_names if name}


# Top-level modules whose distribution has another name, for the fast path below.
_KNOWN_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "dateutil": "python-dateutil",
    "yaml": "PyYAML",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "git": "GitPython",
    "attr": "attrs",
    "bs4": "beautifulsoup4",
    "jwt": "PyJWT",
    "mpl_toolkits": "matplotlib",
    "lightning_fabric": "lightning",
    "google": "protobuf",
}


def _direct_distribution(module: str) -> str | None:
    """The distribution named like the module (or in the table above), if installed."""
    for candidate in (_KNOWN_DISTRIBUTIONS.get(module), module, module.replace("_", "-")):
        if candidate and version(candidate) is not None:
            return candidate
    return None


def _is_installed_module(module: str) -> bool:
    """Whether the module was loaded from site-packages (not the user's own code)."""
    loaded = sys.modules.get(module)
    path = getattr(loaded, "__file__", None) or ""
    if not path:
        locations = getattr(getattr(loaded, "__spec__", None), "submodule_search_locations", None)
        path = next(iter(locations or ()), "")
    return "site-packages" in path or "dist-packages" in path


def distributions_for(module_names: Iterable[str]) -> dict[str, str]:
    """Distribution name -> installed version, for the distributions behind the modules.

    Modules of the standard library, of no installed distribution (the user's own
    code) and of tooling are left out. A module whose distribution has its name
    (numpy, scipy, torch) is answered at once; the full module table, which
    reads every installed distribution's file list, is built only for the rest.
    """
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    found: dict[str, str] = {}
    for module in sorted(top_level(module_names)):
        if module in stdlib or module.startswith("_"):
            continue
        direct = _direct_distribution(module)
        if direct is not None:
            distributions = [direct]
        elif module in sys.modules and not _is_installed_module(module):
            continue
        else:
            distributions = module_distributions().get(module, [])
        for distribution in distributions:
            if distribution.lower() in _NEVER_REQUIRED:
                continue
            installed = version(distribution)
            if installed is not None:
                found[distribution] = installed
    return found


def requirements_text(pins: dict[str, str]) -> str:
    """``name==version`` lines, sorted case-insensitively, as pip reads them."""
    return "".join(f"{name}=={pins[name]}\n" for name in sorted(pins, key=str.lower))


def imported_distributions() -> dict[str, str]:
    """The distributions behind every top-level module this program has imported."""
    return distributions_for(list(sys.modules))


# Top-level modules of the agent's own dependencies. They are installed because the
# agent is, and libraries pick some up when present (joblib imports psutil if it
# can): a program's requirements leave them out unless its own code uses them.
AGENT_MODULES = frozenset(
    {
        "autologagent",
        "psutil",
        "git",
        "gitdb",
        "smmap",
        "wrapt",
        "importlib_metadata",
        "zipp",
        "pynvml",
    }
)


def program_distributions(module_names: Iterable[str]) -> dict[str, str]:
    """Like ``distributions_for``, without the agent's own dependencies.

    An agent dependency stays when the program's own code (``__main__`` and the
    modules it imports from outside any installed distribution) refers to it.
    """
    tops = top_level(module_names)
    agent_only = (tops & AGENT_MODULES) - user_code_references(tops & AGENT_MODULES)
    return distributions_for(tops - agent_only)


def user_code_references(candidates: Iterable[str]) -> set[str]:
    """Which of the ``candidates`` (top-level names) the program's own code refers to.

    A module binds what it imports in its globals (``import psutil``, ``from
    psutil import Process``): those names are looked for in ``__main__`` and in
    every module loaded from outside site-packages and the standard library.
    """
    wanted = set(candidates)
    found: set[str] = set()
    if not wanted:
        return found
    for module in _user_modules():
        for value in list(vars(module).values()):
            if isinstance(value, types.ModuleType):
                name = value.__name__
            elif isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
                name = getattr(value, "__module__", None) or ""
            else:
                continue
            top = name.partition(".")[0] if isinstance(name, str) else ""
            if top in wanted:
                found.add(top)
    return found


def _user_modules() -> list[types.ModuleType]:
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    stdlib_folder = os.path.dirname(os.__file__)
    modules = []
    for name, module in list(sys.modules.items()):
        if not isinstance(module, types.ModuleType):
            continue
        if name != "__main__":
            top = name.partition(".")[0]
            if top in stdlib or top in AGENT_MODULES:
                continue
            path = getattr(module, "__file__", None) or ""
            if not path or path.startswith(stdlib_folder) or _installed_path(path):
                continue
        modules.append(module)
    return modules


def _installed_path(path: str) -> bool:
    return "site-packages" in path or "dist-packages" in path
