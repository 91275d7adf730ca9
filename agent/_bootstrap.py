"""One idempotent bootstrap behind the three doors, and the ``autolog()`` calls.

``bootstrap()`` loads the configuration, decides the process's role (root or
worker), arms exit and fork handling, and watches each enabled framework's
package so that its integration patches modules as they are imported. It
imports no framework and nothing heavy: wrapt, sqlite3 and the integration
modules load when a watched framework is imported or a run first writes.
"""

from __future__ import annotations

import atexit
import os
import sys
from types import ModuleType
from typing import Any

from autologagent import _config, _errors, _runs, _session, _writer

core_ready = False
active = False
_config_now: _config.Config | None = None
_watching: dict[str, Any] = {}


def config() -> _config.Config:
    global _config_now
    if _config_now is None:
        _config_now = _config.load_from_environment()
    return _config_now


def _process_run_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None):
        return str(spec.name)
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    return os.path.basename(path) or "python"


def prepare_core(loaded: _config.Config | None = None) -> None:
    """Set up runs, the writer and exit handling; needed by the manual API too."""
    global core_ready, _config_now
    if core_ready:
        return
    if loaded is not None:
        _config_now = loaded
    _session.start()
    _configure_runs_and_writer(config())
    atexit.register(at_exit)
    os.register_at_fork(after_in_child=_after_fork_in_child)
    core_ready = True


def _configure_runs_and_writer(settings: _config.Config) -> None:
    uri = settings.get("tracking_uri")
    if not _session.is_worker():
        from autologagent._store import absolute_uri

        # Children may run in another folder: hand them the store by absolute path.
        uri = absolute_uri(uri)
        os.environ["AUTOLOG_TRACKING_URI"] = uri
        settings.values["tracking_uri"] = uri
    _writer.configure(uri)
    _runs.configure(settings.get("experiment"), _process_run_name())


def _reload(loaded: _config.Config) -> None:
    settings = config()
    settings.values = loaded.values
    _configure_runs_and_writer(settings)
    for name in _config.KNOWN_INTEGRATIONS:
        if settings.integration_enabled(name):
            _watch(name)
        else:
            _unwatch(name)


def at_exit() -> None:
    try:
        _runs.at_exit()
    except Exception as exc:
        _errors.warn(f"could not close the runs at exit ({type(exc).__name__}: {exc})")


def _after_fork_in_child() -> None:
    _session.became_forked_child()
    _runs.reset_after_fork()
    _writer.reset_after_fork()


def bootstrap(loaded: _config.Config | None = None) -> None:
    """Turn the agent on in this process; calling it again changes nothing.

    With a configuration (the ``python -m autologagent`` door, whose options come
    after the ``.pth`` may already have started the agent), that configuration
    takes over.
    """
    global active
    if active:
        if loaded is not None:
            _reload(loaded)
        return
    prepare_core(loaded)
    active = True
    for name in _config.KNOWN_INTEGRATIONS:
        if config().integration_enabled(name):
            _watch(name)


def _watch(name: str) -> None:
    if name in _watching:
        return
    from autologagent import _finder
    from autologagent.integrations import PACKAGES

    def on_import(module: ModuleType, _name: str = name) -> None:
        try:
            integration = _integration(_name)
            if config().integration_enabled(_name):
                integration.patch_module(module)
        except Exception as exc:
            _errors.report(exc, f"patching {module.__name__} for {_name}")

    _watching[name] = on_import
    _finder.watch_package(PACKAGES[name], on_import)


def _integration(name: str) -> Any:
    import importlib

    return importlib.import_module(f"autologagent.integrations.{name}")


def _unwatch(name: str) -> None:
    hook = _watching.pop(name, None)
    if hook is None:
        return
    from autologagent import _finder
    from autologagent.integrations import PACKAGES

    _finder.unwatch_package(PACKAGES[name], hook)
    module = sys.modules.get(f"autologagent.integrations.{name}")
    if module is not None:
        module.unpatch()


def _export_overrides() -> None:
    """Let child processes start with what code configured here."""
    settings = config()
    os.environ[_config.SERIALISED_OVERRIDES_VAR] = settings.to_json()
    os.environ["AUTOLOG"] = "1"


def autolog(**options: Any) -> None:
    """Turn autologging on for every integration, with options (``disable=True`` turns off)."""
    checked = _config.validate_code_options(options, "autolog")
    settings = config()
    settings.universal.update(checked)
    _apply(settings)


def autolog_integration(name: str, **options: Any) -> None:
    """Options for one integration; they supersede ``autolog(...)`` whatever the order."""
    checked = _config.validate_code_options(options, f"{name}.autolog")
    settings = config()
    settings.per_integration.setdefault(name, {}).update(checked)
    _apply(settings)


def _apply(settings: _config.Config) -> None:
    if settings.get("silent"):
        os.environ["AUTOLOG_SILENT"] = "true"
    _export_overrides()
    bootstrap()
    for name in _config.KNOWN_INTEGRATIONS:
        if settings.integration_enabled(name):
            _watch(name)
        else:
            _unwatch(name)
