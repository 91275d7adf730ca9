"""One place that takes credentials out of what the agent records.

Anything that could carry a secret passes through here before it becomes a tag:
the command line, the git remote URL, values read from the environment. A
secret is replaced by ``***`` rather than dropped, so a reader sees that
something was there; a git remote URL loses its user-info part entirely, as
MLflow's does, since ``https://github.com/o/r.git`` is what one clones anyway.

The rules err on the side of hiding: ``--sort-key name`` loses ``name``, which
costs a reader little, while a token that slipped through would live in every
copy of the store. Single-letter options are left alone (``-p`` is a port as
often as a password).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

MASK = "***"

# A name part (split at anything not a letter or digit) that marks a value secret.
_SECRET_WORDS = frozenset(
    {
        "token",
        "password",
        "passwd",
        "pwd",
        "pass",
        "passphrase",
        "secret",
        "secrets",
        "key",
        "apikey",
        "credential",
        "credentials",
        "auth",
    }
)
# Run together (``hf_token`` -> ``hftoken``, ``apiKey`` -> ``apikey``), names ending so.
_SECRET_SUFFIXES = ("token", "password", "passwd", "secret", "key", "credentials")
# Anywhere in the run-together name; never "token" (``--tokenizer`` is no secret).
_SECRET_INFIXES = ("password", "passwd", "secret", "apikey", "privatekey", "accesskey")
# An environment variable whose name contains one of these holds a secret.
_SECRET_ENV_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")

_NAME_PARTS = re.compile(r"[^a-z0-9]+")
# ``name=value`` outside an option (Hydra-style overrides: ``db.password=x``).
_ASSIGNMENT = re.compile(r"[+~]{0,2}[A-Za-z_][\w.\-/]*")
# scheme://userinfo@host: the user-info part runs to the last "@" before the path.
_URL_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s@]*(?:@[^/?#\s@]*)*)@"
)
# HTTP-like schemes, where a lone user name is usually a token (https://TOKEN@host).
_TOKEN_USER_SCHEMES = frozenset({"http", "https", "ftp", "ftps", "git+https", "git+http"})
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=\-]+")
# Tokens whose shape gives them away wherever they appear.
_KNOWN_TOKENS = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{20,}"
    r"|hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_\-]{20,}|AKIA[0-9A-Z]{16}|xox[abposr]-[A-Za-z0-9\-]{10,})"
)
# Characters that need no shell quoting in a displayed command (``*`` included, for ***).
_PLAIN = re.compile(r"[\w@%+=:,./*\-]+")


def is_secret_name(name: str) -> bool:
    """Whether an option or setting called ``name`` (``--api-key``, ``hf_token``) is secret."""
    parts = [part for part in _NAME_PARTS.split(name.lower()) if part]
    if any(part in _SECRET_WORDS for part in parts):
        return True
    compact = "".join(parts)
    return compact.endswith(_SECRET_SUFFIXES) or any(word in compact for word in _SECRET_INFIXES)


def is_secret_env_name(name: str) -> bool:
    """Whether an environment variable called ``name`` holds a secret (``HF_TOKEN``)."""
    upper = name.upper()
    return any(word in upper for word in _SECRET_ENV_WORDS)


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match.group("scheme"), match.group("userinfo")
    user, has_password, _ = userinfo.partition(":")
    if has_password:
        return f"{scheme}{user}:{MASK}@"
    if scheme[:-3].lower() in _TOKEN_USER_SCHEMES:
        return f"{scheme}{MASK}@"
    return match.group(0)  # ssh://git@host: a user name, not a secret


def redact_text(text: str) -> str:
    """``text`` with URL passwords, bearer tokens and well-known token shapes masked."""
    if "@" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _KNOWN_TOKENS.sub(MASK, text)


def clean_remote_url(url: str) -> str:
    """A git remote URL without credentials.

    ``https://user:token@host/o/r.git`` -> ``https://host/o/r.git`` (the user-info
    is dropped: it is never needed to name the repository); ``ssh://git@host/r``
    and ``git@host:o/r.git`` keep their user name, which is part of the address.
    """

    def drop(match: re.Match[str]) -> str:
        scheme, userinfo = match.group("scheme"), match.group("userinfo")
        if scheme[:-3].lower() in _TOKEN_USER_SCHEMES:
            return scheme
        user = userinfo.partition(":")[0]
        return f"{scheme}{user}@" if user else scheme

    return redact_text(_URL_USERINFO.sub(drop, url.strip()))


def redact_env(name: str, value: str) -> str:
    """The value of the environment variable ``name`` as it may be recorded."""
    return MASK if is_secret_env_name(name) else redact_text(value)


def redact_argv(argv: Iterable[str]) -> list[str]:
    """Command-line arguments with secret option values masked.

    ``--token=abc`` -> ``--token=***``; ``--password abc`` -> ``--password ***``
    (unless the next argument is itself an option: ``--use-auth-token --model x``);
    ``db.password=abc`` -> ``db.password=***``; every argument also through
    :func:`redact_text`.
    """
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            mask_next = False
            if not arg.startswith("--"):
                out.append(MASK)
                continue
        name, has_value, _ = arg.partition("=")
        if arg.startswith("--") and len(name) > 2:
            if is_secret_name(name):
                if has_value:
                    out.append(f"{name}={MASK}")
                else:
                    out.append(arg)
                    mask_next = True
                continue
        elif has_value and _ASSIGNMENT.fullmatch(name) and is_secret_name(name):
            out.append(f"{name}={MASK}")
            continue
        out.append(redact_text(arg))
    return out


def _quote(arg: str) -> str:
    return arg if arg and _PLAIN.fullmatch(arg) else shlex.quote(arg)


def redact_command(argv: Iterable[str]) -> str:
    """A command line as one string, redacted, quoted as a shell would need it."""
    return " ".join(_quote(arg) for arg in redact_argv(argv))
