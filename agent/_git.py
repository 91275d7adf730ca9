"""The program's git repository: commit, branch, remote, and uncommitted changes.

Asked once per process, with GitPython, on the background worker: importing
GitPython and starting ``git`` costs about a tenth of a second, which no
training loop should wait for, and the answers do not change while a script
runs. Outside a repository, or without a ``git`` executable, there are simply no
facts: such a program is common and deserves no warning.

The remote URL loses its credentials (``_redact.clean_remote_url``); the diff
against ``HEAD`` is read up to ``DIFF_LIMIT_BYTES``, so a repository with a huge
generated file checked in cannot fill the memory or the store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

from autologagent import _redact

DIFF_LIMIT_BYTES = 1_000_000
COMMAND_TIMEOUT_S = 10.0


class GitFacts:
    """What a run records about its repository; None where git could not tell."""

    __slots__ = ("root", "commit", "branch", "remote_url", "dirty", "diff", "diff_truncated")

    def __init__(self, root: str) -> None:
        self.root = root
        self.commit: str | None = None
        self.branch: str | None = None
        self.remote_url: str | None = None
        self.dirty: bool | None = None
        self.diff = b""
        self.diff_truncated = False

    def tags(self) -> dict[str, str]:
        """MLflow's tag names where MLflow has one, ``autolog.git.*`` for the rest."""
        tags: dict[str, str] = {}
        if self.commit:
            tags["mlflow.source.git.commit"] = self.commit
        if self.branch:
            tags["mlflow.source.git.branch"] = self.branch
        if self.remote_url:
            tags["mlflow.source.git.repoURL"] = self.remote_url
            tags["mlflow.gitRepoURL"] = self.remote_url
        if self.dirty is not None:
            tags["autolog.git.dirty"] = "true" if self.dirty else "false"
        if self.diff_truncated:
            tags["autolog.git.diff_truncated"] = "true"
        return tags


_lock = threading.Lock()
_gathered = False
_facts: GitFacts | None = None


def find_root(start: str) -> str | None:
    """The folder holding ``.git`` at or above ``start``, by looking (no git, no import)."""
    folder = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def cached() -> tuple[bool, GitFacts | None]:
    """(whether the facts were gathered already, the facts) without gathering."""
    return _gathered, _facts


def facts(start: str) -> GitFacts | None:
    """The repository's facts for a program started from ``start`` (gathered once)."""
    global _gathered, _facts
    with _lock:
        if not _gathered:
            try:
                _facts = _gather(start)
            finally:
                _gathered = True
        return _facts


def _git_executable() -> str | None:
    return os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or shutil.which("git")


def _gather(start: str) -> GitFacts | None:
    executable = _git_executable()
    if executable is None or find_root(start) is None:
        return None
    try:
        import git
    except ImportError:  # GitPython absent, or it found no working git
        return None
    try:
        repo = git.Repo(start, search_parent_directories=True)
    except git.exc.GitError:  # InvalidGitRepositoryError, NoSuchPathError
        return None
    try:
        root = repo.working_tree_dir
        if root is None:  # a bare repository: no tree to have run from
            return None
        found = GitFacts(str(root))
        try:
            found.commit = repo.git.rev_parse("HEAD", kill_after_timeout=COMMAND_TIMEOUT_S)
        except git.exc.GitError:
            pass  # no commit yet
        try:
            found.branch = repo.head.reference.name
        except (TypeError, ValueError, git.exc.GitError):
            pass  # detached HEAD
        found.remote_url = _remote_url(repo)
        if found.commit:
            found.diff, found.diff_truncated = _diff_head(executable, found.root)
            found.dirty = bool(found.diff)
        return found
    finally:
        repo.close()


def _remote_url(repo: object) -> str | None:
    """``origin``'s URL, else the first remote's, without credentials."""
    try:
        remotes = list(repo.remotes)  # type: ignore[attr-defined]
        chosen = next((r for r in remotes if r.name == "origin"), remotes[0] if remotes else None)
        if chosen is None:
            return None
        url = next(iter(chosen.urls), None)
    except Exception:  # a broken config: no URL, as with no remote
        return None
    return _redact.clean_remote_url(url) if url else None


def _diff_head(executable: str, root: str) -> tuple[bytes, bool]:
    """``git diff HEAD`` (staged and unstaged changes), at most DIFF_LIMIT_BYTES of it."""
    try:
        process = subprocess.Popen(
            [executable, "-C", root, "diff", "HEAD", "--no-color", "--no-ext-diff"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return b"", False
    timer = threading.Timer(COMMAND_TIMEOUT_S, process.kill)
    timer.daemon = True
    timer.start()
    try:
        assert process.stdout is not None
        data = process.stdout.read(DIFF_LIMIT_BYTES + 1)
        truncated = len(data) > DIFF_LIMIT_BYTES
        if truncated:
            process.kill()
        process.stdout.close()
        status = process.wait()
    finally:
        timer.cancel()
    if truncated:
        return data[:DIFF_LIMIT_BYTES], True
    return (data, False) if status == 0 else (b"", False)


def reset_after_fork() -> None:
    """In a forked child: a new lock (the parent's may have been held at the fork)."""
    global _lock
    _lock = threading.Lock()
