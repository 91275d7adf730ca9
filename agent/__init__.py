"""autologagent: zero-code autologging for machine-learning training.

Run ``python -m autologagent train.py``, or set ``AUTOLOG=1``, and every training
run is recorded. The names below are the manual API, with MLflow's signatures.
They load on first use, so that ``import autologagent`` (done by every process
of an ``AUTOLOG=1`` environment) costs almost nothing.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "active_run",
    "autolog",
    "end_run",
    "flush",
    "last_active_run",
    "load_model",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
    "start_run",
]

_FROM_FLUENT = frozenset(__all__) - {"autolog", "ActiveRun", "load_model"}


def autolog(**options: "Any") -> None:
    """Turn autologging on in this process for every integration (MLflow's ``autolog``).

    Options: ``disable``, ``log_models``, ``log_datasets``, ``max_tuning_runs``,
    ``log_every_n_steps``, ``system_metrics``, ``silent``. An integration's own
    ``autologagent.integrations.<name>.autolog(...)`` supersedes these for it.
    """
    from autologagent._bootstrap import autolog as _autolog

    _autolog(**options)


def __getattr__(name: str) -> "Any":
    if name in _FROM_FLUENT:
        from autologagent import _fluent

        value = getattr(_fluent, name)
    elif name == "load_model":
        from autologagent import _models

        value = _models.load_model
    elif name == "ActiveRun":
        from autologagent import _runs

        value = _runs.ActiveRun
    else:
        raise AttributeError(f"module 'autologagent' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
