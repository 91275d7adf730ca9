"""One idempotent bootstrap behind the three doors, and the ``autolog()`` calls.

``bootstrap()`` loads the configuration, decides the process's role (root or
worker), arms exit and fork handling, and watches each enabled framework's
package so that its integration patches modules as they are imported.

It runs in every process of an ``AUTOLOG=1`` environment, so it imports only
``os``, ``sys``, ``atexit`` and the agent's start-up modules: no framework, no
``typing``, ``threading``, wrapt or sqlite3. The run machinery (``_runs``,
``_writer``) loads when a run first needs it; exit and fork handling look it up
in ``sys.modules`` and do nothing when it never loaded.
"""

import atexit
import os
import sys

from autologagent import _config, _session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

core_ready = False
active = False
_config_now: "_config.Config | None" = None
_watching: "dict[str, Any]" = {}

_RUNS_MODULE = "autologagent._runs"
_WRITER_MODULE = "autologagent._writer"
_BACKGROUND_MODULE = "autologagent._background"
_FRAME_ROOM_MODULE = "autologagent._frame_room"
# A run's context (source tags, git, system metrics): per-process state and a thread.
_CONTEXT_MODULES = ("autologagent._context", "autologagent._system_metrics")


def config() -> "_config.Config":
    global _config_now
    if _config_now is None:
        _config_now = _config.load_from_environment()
    return _config_now


def prepare_core(loaded: "_config.Config | None" = None) -> None:
    """Decide the role, fix the store's path, arm exit and fork handling (once)."""
    global core_ready, _config_now
    if core_ready:
        return
    if loaded is not None:
        _config_now = loaded
    _session.start()
    _export_absolute_store(config())
    atexit.register(at_exit)
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
    core_ready = True


def _export_absolute_store(settings: "_config.Config") -> None:
    """Children may run in another folder: hand them the store by absolute path."""
    if _session.is_worker():
        return
    uri = _config.absolute_uri(settings.get("tracking_uri"))
    os.environ["AUTOLOG_TRACKING_URI"] = uri
    settings.values["tracking_uri"] = uri


def at_exit() -> None:
    """End what is still running and flush (idempotent); a no-op if no run machinery loaded."""
    try:
        if _RUNS_MODULE not in sys.modules and not _root_run_may_exist():
            return
        from autologagent import _runs

        _runs.at_exit()
    except Exception as exc:
        from autologagent import _errors

        _errors.warn(f"could not close the runs at exit ({type(exc).__name__}: {exc})")


def _root_run_may_exist() -> bool:
    """Root only: workers may have made the root run as their parent (checked cheaply)."""
    if _session.is_worker():
        return False
    if "multiprocessing" not in sys.modules and "subprocess" not in sys.modules:
        return False
    return os.path.exists(_config.store_paths(config().get("tracking_uri"))[0])


def _before_fork() -> None:
    writer = sys.modules.get(_WRITER_MODULE)
    if writer is not None:
        writer.before_fork()


def _after_fork_in_parent() -> None:
    writer = sys.modules.get(_WRITER_MODULE)
    if writer is not None:
        writer.after_fork_in_parent()


def _after_fork_in_child() -> None:
    _session.became_forked_child()
    runs = sys.modules.get(_RUNS_MODULE)
    if runs is not None:
        runs.reset_after_fork()
    writer = sys.modules.get(_WRITER_MODULE)
    if writer is not None:
        writer.reset_after_fork()
    for name in (_BACKGROUND_MODULE, "autologagent._render", _FRAME_ROOM_MODULE, *_CONTEXT_MODULES):
        module = sys.modules.get(name)
        if module is not None:
            module.reset_after_fork()


def bootstrap(loaded: "_config.Config | None" = None) -> None:
    """Turn the agent on in this process; calling it again changes nothing.

    With a configuration (the ``python -m autologagent`` door, whose options come
    after the ``.pth`` may already have started the agent), that configuration
    takes over.
    """
    global active
    if active:
        if loaded is not None:
            settings = config()
            settings.values = loaded.values
            _export_absolute_store(settings)
            _sync_integrations(settings)
        return
    prepare_core(loaded)
    active = True
    _sync_integrations(config())


def _sync_integrations(settings: "_config.Config") -> None:
    for name in _config.KNOWN_INTEGRATIONS:
        if settings.integration_enabled(name):
            _watch(name)
        else:
            _unwatch(name)


def _watch(name: str) -> None:
    if name in _watching:
        return
    from autologagent import _finder
    from autologagent.integrations import PACKAGES

    integration: list[Any] = []  # the integration's module, imported at the first hook

    def on_import(module: "ModuleType", _name: str = name) -> None:
        try:
            if config().integration_enabled(_name):
                if not integration:
                    integration.append(_integration(_name))
                integration[0].patch_module(module)
        except Exception as exc:
            from autologagent import _errors

            _errors.report(exc, f"patching {module.__name__} for {_name}")

    _watching[name] = on_import
    for package in _packages_of(PACKAGES[name]):
        _finder.watch_package(package, on_import)


def _packages_of(packages: "str | tuple[str, ...]") -> "tuple[str, ...]":
    """An integration watches one package, or several (``lightning``, ``pytorch_lightning``)."""
    return (packages,) if isinstance(packages, str) else packages


# What a training run imports of the agent: imported with the first integration,
# while the program is importing its framework anyway, rather than inside the
# first training call, where it cost a 500-round ``lightgbm.train`` 5-8 ms.
RUN_MODULES = (
    "autologagent._runs",
    "autologagent._fluent",
    "autologagent._artifacts",
    "autologagent._datasets",
    "autologagent._models",
    "autologagent._packages",
    "autologagent._redact",
    "autologagent._render",
    "autologagent._system_metrics",
    "autologagent._sqlite_store",  # the writer's first flush opens the store
)


def _integration(name: str) -> "Any":
    import importlib

    module = importlib.import_module(f"autologagent.integrations.{name}")
    for run_module in RUN_MODULES:
        importlib.import_module(run_module)
    if config().get("system_metrics"):
        try:  # the sampler's first reading would import it, mid-training, on another thread
            importlib.import_module("psutil")
        except ImportError:
            pass
    return module


def _unwatch(name: str) -> None:
    hook = _watching.pop(name, None)
    if hook is None:
        return
    from autologagent import _finder
    from autologagent.integrations import PACKAGES

    for package in _packages_of(PACKAGES[name]):
        _finder.unwatch_package(package, hook)
    module = sys.modules.get(f"autologagent.integrations.{name}")
    if module is not None:
        module.unpatch()


def autolog(**options: "Any") -> None:
    """Turn autologging on for every integration, with options (``disable=True`` turns off)."""
    checked = _config.validate_code_options(options, "autolog")
    settings = config()
    settings.universal.update(checked)
    _apply(settings)


def autolog_integration(name: str, **options: "Any") -> None:
    """Options for one integration; they supersede ``autolog(...)`` whatever the order."""
    checked = _config.validate_code_options(options, f"{name}.autolog")
    settings = config()
    settings.per_integration.setdefault(name, {}).update(checked)
    _apply(settings)


def _apply(settings: "_config.Config") -> None:
    """Apply code options here, and export them for child processes."""
    if settings.get("silent"):
        os.environ["AUTOLOG_SILENT"] = "true"
    os.environ[_config.SERIALISED_OVERRIDES_VAR] = settings.to_json()
    os.environ["AUTOLOG"] = "1"
    bootstrap()
    _sync_integrations(settings)
