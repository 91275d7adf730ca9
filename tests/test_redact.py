"""Redaction: every value that could carry a credential loses it before it is recorded.

One table per kind of value: command lines, git remote URLs, environment
variables, free text. A case is (input, expected output).
"""

from __future__ import annotations

import pytest
from autologagent import _redact

ARGV_CASES = [
    # option=value
    (["train.py", "--token=abc123secret"], ["train.py", "--token=***"]),
    (["train.py", "--password=hunter2"], ["train.py", "--password=***"]),
    (["train.py", "--api-key=k1"], ["train.py", "--api-key=***"]),
    (["train.py", "--api_key=k1"], ["train.py", "--api_key=***"]),
    (["train.py", "--apiKey=k1"], ["train.py", "--apiKey=***"]),
    (["train.py", "--hf_token=hf_x"], ["train.py", "--hf_token=***"]),
    (["train.py", "--client-secret=s"], ["train.py", "--client-secret=***"]),
    (["train.py", "--db-passwd=p"], ["train.py", "--db-passwd=***"]),
    (["train.py", "--aws-secret-access-key=z"], ["train.py", "--aws-secret-access-key=***"]),
    # option value
    (["train.py", "--token", "abc", "--lr", "0.1"], ["train.py", "--token", "***", "--lr", "0.1"]),
    (["train.py", "--password", "p", "x"], ["train.py", "--password", "***", "x"]),
    (["train.py", "--secret", "s"], ["train.py", "--secret", "***"]),
    (["train.py", "--auth", "u:p"], ["train.py", "--auth", "***"]),
    # a flag followed by another option keeps that option
    (
        ["train.py", "--use-auth-token", "--model", "bert"],
        ["train.py", "--use-auth-token", "--model", "bert"],
    ),
    (["train.py", "--token"], ["train.py", "--token"]),
    # Hydra-style overrides
    (["train.py", "db.password=pw", "lr=0.1"], ["train.py", "db.password=***", "lr=0.1"]),
    (["train.py", "+trainer.api_key=k"], ["train.py", "+trainer.api_key=***"]),
    # not secrets
    (["train.py", "--tokenizer", "gpt2"], ["train.py", "--tokenizer", "gpt2"]),
    (["train.py", "--max-tokens", "100"], ["train.py", "--max-tokens", "100"]),
    (["train.py", "--author=me", "--epochs=3"], ["train.py", "--author=me", "--epochs=3"]),
    (["train.py", "-p", "8080"], ["train.py", "-p", "8080"]),
    (["python", "-m", "pkg.train", "--lr=0.1"], ["python", "-m", "pkg.train", "--lr=0.1"]),
    # URLs with credentials anywhere
    (
        ["train.py", "--db", "postgresql://bob:s3cret@db.local:5432/x"],
        ["train.py", "--db", "postgresql://bob:***@db.local:5432/x"],
    ),
    (
        ["train.py", "--data=https://user:pw@host/data.csv"],
        ["train.py", "--data=https://user:***@host/data.csv"],
    ),
    (["train.py", "https://ghp_abc@github.com/o/r"], ["train.py", "https://***@github.com/o/r"]),
    # tokens that give themselves away
    (
        ["train.py", "ghp_" + "a" * 36],
        ["train.py", "***"],
    ),
    (["train.py", "--header", "Bearer abc.def"], ["train.py", "--header", "Bearer ***"]),
]


@pytest.mark.parametrize(("argv", "expected"), ARGV_CASES, ids=[" ".join(a) for a, _ in ARGV_CASES])
def test_redact_argv(argv: list[str], expected: list[str]) -> None:
    assert _redact.redact_argv(argv) == expected


COMMAND_CASES = [
    (["python", "train.py", "--token=abc"], "python train.py --token=***"),
    (["python", "train.py", "--name", "my run"], "python train.py --name 'my run'"),
    (["python", "-c", "print(1)"], "python -c 'print(1)'"),
]


@pytest.mark.parametrize(("argv", "expected"), COMMAND_CASES)
def test_redact_command(argv: list[str], expected: str) -> None:
    assert _redact.redact_command(argv) == expected


REMOTE_CASES = [
    (
        "https://user:ghp_SECRETTOKEN123@github.com/o/r.git",
        "https://github.com/o/r.git",
    ),
    ("https://ghp_SECRETTOKEN123@github.com/o/r.git", "https://github.com/o/r.git"),
    ("https://oauth2:glpat-xyz@gitlab.com/g/p.git", "https://gitlab.com/g/p.git"),
    ("https://github.com/o/r.git", "https://github.com/o/r.git"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
    ("ssh://git:pw@host/r.git", "ssh://git@host/r.git"),
    ("/srv/git/r.git", "/srv/git/r.git"),
    ("https://u:p@ss@host/r.git", "https://host/r.git"),
]


@pytest.mark.parametrize(("url", "expected"), REMOTE_CASES)
def test_clean_remote_url(url: str, expected: str) -> None:
    assert _redact.clean_remote_url(url) == expected


ENV_CASES = [
    ("HF_TOKEN", "hf_abc", "***"),
    ("AWS_SECRET_ACCESS_KEY", "x", "***"),
    ("OPENAI_API_KEY", "sk-x", "***"),
    ("DB_PASSWORD", "p", "***"),
    ("github_token", "t", "***"),
    ("CUDA_VISIBLE_DEVICES", "0,1", "0,1"),
    ("DATABASE_URL", "postgres://a:b@h/db", "postgres://a:***@h/db"),
    ("VIRTUAL_ENV", "/home/me/.venv", "/home/me/.venv"),
]


@pytest.mark.parametrize(("name", "value", "expected"), ENV_CASES)
def test_redact_env(name: str, value: str, expected: str) -> None:
    assert _redact.redact_env(name, value) == expected


TEXT_CASES = [
    (
        "see https://a:b@host/x and https://c:d@host2/y",
        "see https://a:***@host/x and https://c:***@host2/y",
    ),
    ("no secret here", "no secret here"),
    ("mail me at a@b.com", "mail me at a@b.com"),
    ("key AKIAABCDEFGHIJKLMNOP", "key ***"),
]


@pytest.mark.parametrize(("text", "expected"), TEXT_CASES)
def test_redact_text(text: str, expected: str) -> None:
    assert _redact.redact_text(text) == expected
