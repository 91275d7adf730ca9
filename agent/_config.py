"""One table of options, read from the environment, overridden in code.

Precedence, lowest first: the defaults below, the environment (``AUTOLOG_*``),
``autologagent.autolog(...)``, then ``autologagent.integrations.<name>.autolog(...)``
for that integration alone, whatever the order of the two calls.

Overrides made in code are serialised into ``AUTOLOG_CONFIG`` (JSON) so that child
processes, which start from the environment, see the same configuration.

This module is imported at start-up by every process of an ``AUTOLOG=1``
environment: it imports nothing beyond ``os``, and ``json`` only when needed.
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # start-up cost: no typing at run time
    from collections.abc import Callable, Mapping
    from typing import Any

# The integrations shipped with the agent, by name. Kept here as data so that
# validating AUTOLOG_DISABLE costs no import.
KNOWN_INTEGRATIONS: tuple[str, ...] = ("sklearn", "xgboost", "lightgbm", "torch", "lightning")

DEFAULT_TRACKING_URI = "./autologruns"
SERIALISED_OVERRIDES_VAR = "AUTOLOG_CONFIG"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A configuration value that is not accepted; its message is one line."""


def _bad(source: str, raw: object, accepted: str) -> ConfigError:
    return ConfigError(f"{source}={raw!r} is not valid: expected {accepted}")


def parse_bool(raw: object, source: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _bad(source, raw, "true or false (also 1/0, yes/no, on/off)")


def _parse_int(raw: object, source: str, minimum: int) -> int:
    if isinstance(raw, bool):
        raise _bad(source, raw, f"an integer >= {minimum}")
    try:
        value = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise _bad(source, raw, f"an integer >= {minimum}") from None
    if value < minimum:
        raise _bad(source, raw, f"an integer >= {minimum}")
    return value


def parse_non_negative_int(raw: object, source: str) -> int:
    return _parse_int(raw, source, 0)


def parse_positive_int(raw: object, source: str) -> int:
    return _parse_int(raw, source, 1)


def parse_positive_float(raw: object, source: str) -> float:
    try:
        value = float(str(raw).strip()) if not isinstance(raw, (int, float)) else float(raw)
    except ValueError:
        raise _bad(source, raw, "a number of seconds > 0") from None
    if isinstance(raw, bool) or not value > 0 or value == float("inf"):
        raise _bad(source, raw, "a number of seconds > 0")
    return value


def parse_name(raw: object, source: str) -> str:
    text = str(raw).strip()
    if not text or "\n" in text:
        raise _bad(source, raw, "a non-empty name on one line")
    return text


def parse_integration_list(raw: object, source: str) -> frozenset[str]:
    if isinstance(raw, (list, tuple, set, frozenset)):
        names = [str(item).strip() for item in raw]
    else:
        names = [part.strip() for part in str(raw).split(",")]
    names = [name for name in names if name]
    unknown = [name for name in names if name not in KNOWN_INTEGRATIONS]
    if unknown:
        raise _bad(source, raw, "a comma list of " + ", ".join(KNOWN_INTEGRATIONS))
    return frozenset(names)


def parse_tracking_uri(raw: object, source: str) -> str:
    """Accept a folder, ``file:///folder``, ``sqlite:///path.db``, ``http(s)://host[:port]``.

    An ``http(s)://`` URI is an MLflow tracking server (``_mlflow_store``). A bad
    value's message never repeats the URI's credentials.
    """
    text = str(raw).strip()
    accepted = "a folder, file:///folder, sqlite:///path.db or http(s)://host[:port]"
    if not text:
        raise _bad(source, raw, accepted)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    scheme = scheme.lower()
    if scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return text
    if scheme == "file" and rest.startswith("/"):
        return text
    if scheme in ("http", "https"):
        # host[:port] after any user-info, read by hand: urllib costs start-up time.
        netloc = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
        if netloc.startswith("["):  # [IPv6]:port
            host, _, after = netloc[1:].partition("]")
            port = after[1:] if after.startswith(":") else after
        else:
            host, _, port = netloc.partition(":")
        if host and (not port or port.isdigit()):
            return text
        raise _bad(source, f"{scheme}://{netloc}", accepted)
    raise _bad(source, raw, accepted)


class Option:
    """One configuration option: its name in code, its variable, parser and default."""

    __slots__ = ("name", "env", "parse", "default")

    def __init__(
        self, name: str, env: str, parse: "Callable[[object, str], Any]", default: "Any"
    ) -> None:
        self.name = name
        self.env = env
        self.parse = parse
        self.default = default


OPTIONS: tuple[Option, ...] = (
    Option("tracking_uri", "AUTOLOG_TRACKING_URI", parse_tracking_uri, DEFAULT_TRACKING_URI),
    Option("experiment", "AUTOLOG_EXPERIMENT", parse_name, "Default"),
    Option("disable_integrations", "AUTOLOG_DISABLE", parse_integration_list, frozenset()),
    Option("log_models", "AUTOLOG_LOG_MODELS", parse_bool, True),
    Option("log_datasets", "AUTOLOG_LOG_DATASETS", parse_bool, True),
    Option("max_tuning_runs", "AUTOLOG_MAX_TUNING_RUNS", parse_non_negative_int, 5),
    Option("log_every_n_steps", "AUTOLOG_LOG_EVERY_N_STEPS", parse_positive_int, 1),
    Option("system_metrics", "AUTOLOG_SYSTEM_METRICS", parse_bool, True),
    Option(
        "system_metrics_interval",
        "AUTOLOG_SYSTEM_METRICS_INTERVAL",
        parse_positive_float,
        10.0,
    ),
    Option("silent", "AUTOLOG_SILENT", parse_bool, False),
    Option("testing", "AUTOLOG_TESTING", parse_bool, False),
)
OPTIONS_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}

# Options that autolog(...) accepts, universal or per integration. Disabling is
# expressed there as ``disable=True``.
CODE_OPTIONS = (
    "log_models",
    "log_datasets",
    "max_tuning_runs",
    "log_every_n_steps",
    "system_metrics",
    "silent",
)


class Config:
    """The effective configuration of this process.

    ``values`` holds defaults overlaid with the environment; ``universal`` and
    ``per_integration`` hold what code asked for.
    """

    def __init__(self, values: "dict[str, Any]") -> None:
        self.values = values
        self.universal: dict[str, Any] = {}
        self.per_integration: dict[str, dict[str, Any]] = {}

    def get(self, name: str, integration: str | None = None) -> "Any":
        if integration is not None:
            specific = self.per_integration.get(integration)
            if specific and name in specific:
                return specific[name]
        if name in self.universal:
            return self.universal[name]
        return self.values[name]

    def integration_enabled(self, integration: str) -> bool:
        specific = self.per_integration.get(integration, {})
        if "disable" in specific:
            return not specific["disable"]
        if "disable" in self.universal:
            return not self.universal["disable"]
        return integration not in self.values["disable_integrations"]

    def to_json(self) -> str:
        import json

        return json.dumps({"universal": self.universal, "per_integration": self.per_integration})


def validate_code_options(options: "Mapping[str, Any]", where: str) -> "dict[str, Any]":
    """Check the keyword arguments of an ``autolog(...)`` call; one-line error if bad."""
    checked: dict[str, Any] = {}
    for key, raw in options.items():
        if key == "disable":
            checked[key] = parse_bool(raw, f"{where}(disable)")
            continue
        if key not in CODE_OPTIONS:
            accepted = ", ".join(("disable",) + CODE_OPTIONS)
            raise ConfigError(
                f"{where}() got an unknown option {key!r}: expected one of {accepted}"
            )
        checked[key] = OPTIONS_BY_NAME[key].parse(raw, f"{where}({key})")
    return checked


def load_from_environment(environ: "Mapping[str, str] | None" = None) -> "Config":
    """Read every option from the environment; raise ConfigError on the first bad value."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = env.get(option.env)
        if raw is None or (raw == "" and option.name != "tracking_uri"):
            values[option.name] = option.default
        else:
            values[option.name] = option.parse(raw, option.env)
    config = Config(values)
    serialised = env.get(SERIALISED_OVERRIDES_VAR)
    if serialised:
        import json

        try:
            data = json.loads(serialised)
            config.universal = validate_code_options(data.get("universal", {}), "autolog")
            config.per_integration = {
                name: validate_code_options(opts, f"{name}.autolog")
                for name, opts in data.get("per_integration", {}).items()
                if name in KNOWN_INTEGRATIONS
            }
        except (ValueError, AttributeError, TypeError) as exc:
            raise ConfigError(
                f"{SERIALISED_OVERRIDES_VAR} is not valid: "
                f"expected the JSON the agent writes ({exc})"
            ) from None
    return config


def agent_requested(environ: "Mapping[str, str] | None" = None) -> bool:
    """Whether ``AUTOLOG`` asks for the agent; raises ConfigError for a bad value."""
    env = os.environ if environ is None else environ
    raw = env.get("AUTOLOG", "0")
    if raw == "":
        return False
    return parse_bool(raw, "AUTOLOG")


def is_server_uri(uri: str) -> bool:
    """Whether the tracking URI names an MLflow tracking server."""
    return uri[:8].lower().startswith(("http://", "https://"))


def store_paths(uri: str) -> tuple[str, str]:
    """Return ``(database file, artifact root)`` for a local tracking URI.

    A folder holds ``runs.db`` and ``artifacts/``; ``sqlite:///x.db`` (relative) or
    ``sqlite:////abs/x.db`` names the database, with ``artifacts/`` beside it.
    """
    if uri.startswith("sqlite:///"):
        database = os.path.abspath(uri[len("sqlite:///") :])
        return database, os.path.join(os.path.dirname(database), "artifacts")
    if is_server_uri(uri):  # the spool folder, and artifacts staged for upload
        from autologagent import _spool

        return _spool.server_folder(uri), _spool.staging_root(uri)
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    folder = os.path.abspath(uri)
    return os.path.join(folder, "runs.db"), os.path.join(folder, "artifacts")


def absolute_uri(uri: str) -> str:
    """The same URI with a relative path made absolute, for child processes."""
    if is_server_uri(uri):
        return uri
    database, _ = store_paths(uri)
    if uri.startswith("sqlite:///"):
        return "sqlite:///" + database
    return os.path.dirname(database)
