"""Drawing off the training process: one helper process renders the plots.

Drawing is Python where it costs (a plot's layout, text, lines): in a thread of
the training process it would hold the GIL the training loop needs. So plots are
drawn by a separate ``python`` process, fed through a pipe. It runs on another
core, in parallel with training. It is started early (as scikit-learn loads, see
``prepare``), so that it has loaded what drawing needs before the first fit ends;
one that is never given a plot is stopped at exit. It is not an agent process:
it is started isolated (``-I``) with ``AUTOLOG=0``, so it makes no runs, and it
imports only what its jobs need (Pillow for scikit-learn's plots, matplotlib for
the boosting libraries' importance charts).

A feeder thread starts the helper and writes the jobs into its pipe: starting a
process (a fork and exec) costs the training thread nothing, and a loop of fits
that outpaces the drawing never blocks on a full pipe (64 KiB), paced by the drawing.

A job is ``(function, kwargs)``: the function is named "module:function" and
must be in ``autologagent.integrations``; it writes its files itself. At exit
the training process sends "quit" and waits for the queue to drain (bounded).
Where no helper process can be started, jobs run on the background thread.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from typing import Any

from autologagent import _background, _errors

_ALLOWED_PREFIX = "autologagent.integrations."
_HEADER = struct.Struct("<I")

_lock = threading.Lock()
_process: subprocess.Popen[bytes] | None = None
_failed = False  # the helper could not start: draw in this process from now on
_reader: threading.Thread | None = None
_feeder: threading.Thread | None = None
# Jobs for the feeder: (function, kwargs, frame), or None for "quit when done".
_jobs: queue.SimpleQueue[tuple[str, dict[str, Any], bytes] | None] = queue.SimpleQueue()
_sent = 0  # drawing jobs given to the feeder: none, and the helper is stopped at exit


def _start_feeder_locked() -> bool:
    """Have the feeder thread running (it starts the helper); False once drawing is local."""
    global _feeder
    if _failed:
        return False
    if _feeder is None:
        _feeder = threading.Thread(
            target=_feed, args=(_jobs,), daemon=True, name="autologagent-render-feeder"
        )
        try:
            _feeder.start()
        except RuntimeError:  # interpreter shutdown: no thread, draw here
            _feeder = None
            return False
    return True


def _spawn() -> subprocess.Popen[bytes] | None:
    """Start the helper process (on the feeder thread: a fork and exec of a large
    training process takes milliseconds the training thread should not wait)."""
    global _process, _failed, _reader
    env = dict(os.environ, AUTOLOG="0")
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-m", "autologagent._render_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=env,
            close_fds=True,
        )
    except (OSError, ValueError) as exc:
        with _lock:
            _failed = True
        _errors.warn(f"cannot start the drawing process ({exc}); drawing in this process")
        return None
    reader = threading.Thread(
        target=_read_replies, args=(process,), daemon=True, name="autologagent-render-replies"
    )
    reader.start()
    with _lock:
        _process = process
        _reader = reader
    return process


def _feed(jobs: queue.SimpleQueue[tuple[str, dict[str, Any], bytes] | None]) -> None:
    """Start the helper, then write the jobs into its pipe; without it, draw them here.

    Ends at the None job (sent by :func:`wait`): the helper is told to quit when
    its jobs are done.
    """
    from autologagent._writer import _block_async_signals

    _block_async_signals()
    process = _spawn()
    stream = process.stdin if process is not None else None
    while True:
        job = jobs.get()
        if job is None:
            if stream is not None:
                try:
                    stream.write(_HEADER.pack(0))  # an empty frame: quit when done
                    stream.close()
                except (OSError, ValueError):
                    pass
            return
        function, kwargs, frame = job
        if stream is not None:
            try:
                stream.write(frame)
                stream.flush()
                continue
            except (OSError, ValueError):
                stream = None
                with _lock:
                    _give_up_locked()
        _draw_here(function, kwargs)


def _draw_here(function: str, kwargs: dict[str, Any]) -> None:
    _background.submit(lambda: call(function, kwargs), f"drawing with {function}")


def prepare(function: str) -> None:
    """Start the helper now and have it run ``function()`` first, while it has nothing
    else to do (load what drawing will need). Unlike a drawing job, this one is not
    waited for at exit: a helper that got nothing else is stopped there."""
    _send(function, {}, needed=False)


def submit(function: str, kwargs: dict[str, Any]) -> None:
    """Draw ``function(**kwargs)`` in the helper process (or here, if it cannot run)."""
    _send(function, kwargs, needed=True)


def _send(function: str, kwargs: dict[str, Any], needed: bool) -> None:
    global _sent
    if not function.startswith(_ALLOWED_PREFIX):
        raise ValueError(f"not a drawing function of the agent: {function!r}")
    payload = pickle.dumps((function, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
    with _lock:
        if _start_feeder_locked():
            if needed:
                _sent += 1
            _jobs.put((function, kwargs, _HEADER.pack(len(payload)) + payload))
            return
    if needed:
        _draw_here(function, kwargs)


def call(function: str, kwargs: dict[str, Any]) -> None:
    """Run a drawing function here (the helper process does the same)."""
    import importlib

    module_name, _, name = function.partition(":")
    if not module_name.startswith(_ALLOWED_PREFIX):
        raise ValueError(f"not a drawing function of the agent: {function!r}")
    getattr(importlib.import_module(module_name), name)(**kwargs)


def _read_replies(process: subprocess.Popen[bytes]) -> None:
    from autologagent._writer import _block_async_signals

    _block_async_signals()
    stream = process.stdout
    assert stream is not None
    for line in stream:
        text = line.decode("utf-8", "replace").rstrip("\n")
        if text.startswith("store "):
            from autologagent._artifacts import warn_unwritable

            warn_unwritable(OSError(text[len("store ") :]))
        elif text != "ok":
            _errors.warn(f"drawing failed: {text}", key="render-" + text[:60])


def _give_up_locked() -> None:
    global _process, _failed
    _failed = True
    _process = None


def wait(timeout: float = 120.0) -> bool:
    """Finish every job sent so far and stop the helper; False if ``timeout`` passed."""
    global _feeder, _process
    with _lock:
        feeder = _feeder
        _feeder = None
        if feeder is None:
            return True
        idle = _sent == 0
        _jobs.put(None)
    deadline = time.monotonic() + timeout
    feeder.join(timeout)  # every job written (or drawn here), then "quit" sent
    with _lock:
        process = _process
        reader = _reader
        _process = None
    if process is None:
        return not feeder.is_alive()
    if idle:  # started early, never needed: it may still be importing or preparing
        process.kill()
        process.wait()
        return True
    try:
        if feeder.is_alive():  # the helper stopped reading its pipe
            raise subprocess.TimeoutExpired(process.args, timeout)
        process.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        return False
    if reader is not None:
        reader.join(5)
    return True


def reset_after_fork() -> None:
    """A forked child must not write into the parent's helper, nor wait for it."""
    global _process, _lock, _reader, _feeder, _jobs, _sent
    process = _process
    _process = None
    _sent = 0
    _reader = None
    _feeder = None
    _jobs = queue.SimpleQueue()
    _lock = threading.Lock()
    if process is not None:
        for stream in (process.stdin, process.stdout):
            try:
                if stream is not None:
                    os.close(stream.fileno())
            except (OSError, ValueError):
                pass
