"""System metrics of the machine and of the program's process tree, under MLflow's names.

One daemon thread samples every ``AUTOLOG_SYSTEM_METRICS_INTERVAL`` seconds for
every active run, and stops ``LINGER_S`` after the last run ended. Each run also
gets a sample at its start and one at its end, so that even a run shorter than
the interval has two points; the step of a point is the run's sample index.
The same thread takes those, woken by the start and the end of the run, so the
training thread pays a wake-up and nothing of psutil's or NVML's import or
reads; at exit the end of a run waits for its last sample, so that the final
flush has it. A sample younger than ``FRESH_S`` serves again: a loop of tiny
runs reads the system at most every ``FRESH_S``.

Names follow MLflow's (``system/cpu_utilization_percentage``,
``system/gpu_0_memory_usage_megabytes``, megabytes of 10^6 bytes); the process
tree (this process and its descendants: data-loader workers, joblib pools) adds
``system/process_*``. Network and disk I/O count from the run's start. GPUs come
from NVML (``nvidia-ml-py``, import name ``pynvml``) when it is installed and
finds a device.

CPU percentages come from differences of CPU times that this module keeps
itself: ``psutil.cpu_percent()`` keeps its state in psutil, and the program's own
calls to it must not see the agent's in between.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from autologagent import _errors, _writer

PREFIX = "system/"
MB = 1e6  # MLflow's megabytes
# CPU percentages need this much time between two readings to mean anything;
# closer readings (the end of a run and the start of the next) repeat the last.
MIN_CPU_WINDOW_S = 0.05
# The process tree is listed (by reading every process's /proc entry) at each
# periodic sample; a start or end sample lists it again only if older than this.
CHILDREN_REFRESH_S = 5.0
# With no run left, the thread waits this long for the next one before it stops:
# a loop of short fits then reuses one thread instead of starting one per run
# (a few milliseconds each on some machines).
LINGER_S = 1.0
# A sample this recent serves as a run's start or end sample (see _recent_sample).
FRESH_S = 0.05

Sample = tuple[float, dict[str, float], dict[str, float]]  # time, values, I/O counters


class _RunState:
    """A run being sampled: its next step, and its I/O counters at its first sample."""

    __slots__ = ("run_id", "prefix", "step", "base", "done")

    def __init__(self, run_id: str, prefix: str) -> None:
        self.run_id = run_id
        self.prefix = prefix  # PREFIX, or a rank's own under it
        self.step = 0
        self.base: dict[str, float] | None = None
        self.done = threading.Event()  # set once its last sample is queued


class _Probe:
    """Reads the machine, the process tree and the GPUs (psutil, NVML), with the state
    that percentages need between readings."""

    def __init__(self) -> None:
        import psutil

        self.psutil = psutil
        self.process = psutil.Process()
        self.children: list[Any] = []
        self.children_listed_at = float("-inf")
        self.last_cpu: tuple[float, Any] | None = None
        self.cpu_percent: float | None = None
        self.last_tree: tuple[float, float] | None = None
        self.tree_percent: float | None = None
        self.total_memory = float(psutil.virtual_memory().total)
        self.whole_disks: dict[str, bool] = {}
        self.gpus: list[Any] | None = None  # None: NVML not asked yet
        self.nvml: Any = None
        self._system_cpu(time.monotonic())  # a baseline for the first percentage

    def init_gpus(self) -> None:
        """Open NVML once (slow: the sampler thread does it, never a training thread)."""
        if self.gpus is not None:
            return
        self.gpus = []
        try:
            import pynvml
        except ImportError:
            return
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(index) for index in range(count)]
        except Exception:  # NVMLError: no driver, no device
            return
        self.nvml = pynvml
        self.gpus = handles

    def take(self, list_children: bool) -> Sample:
        now = time.monotonic()
        values: dict[str, float] = {}
        counters: dict[str, float] = {}
        percent = self._system_cpu(now)
        if percent is not None:
            values["cpu_utilization_percentage"] = percent
        memory = self.psutil.virtual_memory()
        values["system_memory_usage_megabytes"] = memory.used / MB
        values["system_memory_usage_percentage"] = float(memory.percent)
        self._disk(values, counters)
        self._network(counters)
        self._tree(now, list_children, values)
        self._gpu_values(values)
        return time.time(), values, counters

    def _system_cpu(self, now: float) -> float | None:
        times = self.psutil.cpu_times()
        if self.last_cpu is not None and now - self.last_cpu[0] >= MIN_CPU_WINDOW_S:
            total = _cpu_total(times) - _cpu_total(self.last_cpu[1])
            busy = _cpu_busy(times) - _cpu_busy(self.last_cpu[1])
            if total > 0:
                self.cpu_percent = min(100.0, max(0.0, busy / total * 100.0))
        if self.last_cpu is None or now - self.last_cpu[0] >= MIN_CPU_WINDOW_S:
            self.last_cpu = (now, times)
        return self.cpu_percent

    def _disk(self, values: dict[str, float], counters: dict[str, float]) -> None:
        try:
            usage = self.psutil.disk_usage(os.sep)
            values["disk_usage_percentage"] = float(usage.percent)
            values["disk_usage_megabytes"] = usage.used / MB
            values["disk_available_megabytes"] = usage.free / MB
        except OSError:
            pass
        try:
            read, write = self._disk_io()
        except (OSError, RuntimeError, AttributeError):
            return
        counters["disk_read"] = read
        counters["disk_write"] = write

    def _disk_io(self) -> tuple[float, float]:
        """Bytes read and written by whole disks (not their partitions), as psutil sums them.

        On Linux the sum is made here from the per-disk counters (whole disks are
        those under /sys/block, looked up once per name), which halves the cost.
        """
        if not sys.platform.startswith("linux"):
            io = self.psutil.disk_io_counters(nowrap=False)
            return float(io.read_bytes), float(io.write_bytes)
        read = write = 0.0
        for name, io in self.psutil.disk_io_counters(perdisk=True, nowrap=False).items():
            whole = self.whole_disks.get(name)
            if whole is None:
                whole = os.path.exists("/sys/block/" + name.replace("/", "!"))
                self.whole_disks[name] = whole
            if whole:
                read += io.read_bytes
                write += io.write_bytes
        return read, write

    def _network(self, counters: dict[str, float]) -> None:
        try:
            net = self.psutil.net_io_counters(nowrap=False)
        except (OSError, RuntimeError):
            net = None
        if net is not None:
            counters["network_receive"] = float(net.bytes_recv)
            counters["network_transmit"] = float(net.bytes_sent)

    def _tree(self, now: float, list_children: bool, values: dict[str, float]) -> None:
        """This process and its descendants: CPU (100 = one core busy), memory, count."""
        psutil = self.psutil
        if list_children or now - self.children_listed_at >= CHILDREN_REFRESH_S:
            try:
                self.children = self.process.children(recursive=True)
            except psutil.Error:
                self.children = []
            self.children_listed_at = now
        cpu_seconds = rss = 0.0
        count = 0
        for process in (self.process, *self.children):
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    memory = process.memory_info()
            except psutil.Error:  # ended since it was listed
                continue
            # Children that ended and were waited for count in their parent's children_*.
            cpu_seconds += times.user + times.system + times.children_user + times.children_system
            rss += memory.rss
            count += 1
        if self.last_tree is None:
            try:
                elapsed = time.time() - self.process.create_time()
            except psutil.Error:
                elapsed = 0.0
            if elapsed > 0:
                self.tree_percent = cpu_seconds / elapsed * 100.0
            self.last_tree = (now, cpu_seconds)
        elif now - self.last_tree[0] >= MIN_CPU_WINDOW_S:
            used = max(0.0, cpu_seconds - self.last_tree[1])
            self.tree_percent = used / (now - self.last_tree[0]) * 100.0
            self.last_tree = (now, cpu_seconds)
        if self.tree_percent is not None:
            values["process_cpu_utilization_percentage"] = self.tree_percent
        values["process_memory_rss_megabytes"] = rss / MB
        values["process_memory_usage_percentage"] = rss / self.total_memory * 100.0
        values["process_count"] = float(count)

    def _gpu_values(self, values: dict[str, float]) -> None:
        nvml = self.nvml
        for index, handle in enumerate(self.gpus or ()):
            name = f"gpu_{index}_"
            try:
                values[name + "utilization_percentage"] = float(
                    nvml.nvmlDeviceGetUtilizationRates(handle).gpu
                )
            except Exception:
                pass
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                values[name + "memory_usage_megabytes"] = memory.used / MB
                if memory.total:
                    values[name + "memory_usage_percentage"] = memory.used / memory.total * 100.0
            except Exception:
                pass
            try:
                watts = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
                values[name + "power_usage_watts"] = watts
                limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
                if limit:
                    values[name + "power_usage_percentage"] = watts / limit * 100.0
            except Exception:
                pass


def _cpu_total(times: Any) -> float:
    # As psutil.cpu_percent: guest time is already counted in user time on Linux.
    return float(sum(times)) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _cpu_busy(times: Any) -> float:
    return _cpu_total(times) - times.idle - getattr(times, "iowait", 0.0)


_lock = threading.RLock()  # re-entrant: a SIGTERM handler may end runs mid-call
_probe_lock = threading.RLock()
_runs: dict[str, _RunState] = {}
_ending: list[_RunState] = []  # runs that ended before the thread could sample them
_thread: threading.Thread | None = None
_wake = threading.Event()
_probe: _Probe | None = None
_last_sample: Sample | None = None


def _get_probe() -> _Probe:
    global _probe
    with _probe_lock:
        if _probe is None:
            _probe = _Probe()
        return _probe


def _take(list_children: bool) -> Sample:
    global _last_sample
    probe = _get_probe()
    with _probe_lock:
        _last_sample = probe.take(list_children)
        return _last_sample


def _recent_sample() -> Sample:
    """A new sample, or the last one (stamped now) if it is younger than FRESH_S.

    A run's start and end samples: in a loop of short runs, one run's end sample
    serves as the next one's start, and a run shorter than FRESH_S ends with the
    sample it started with, so that sampling costs at most one reading per
    FRESH_S however many runs start and end.
    """
    last = _last_sample
    now = time.time()
    if last is not None and 0 <= now - last[0] < FRESH_S:
        return now, last[1], last[2]
    return _take(list_children=False)


def _record(state: _RunState, sample: Sample) -> None:
    """Queue one sample as the run's next step (I/O as megabytes since its first)."""
    timestamp, values, counters = sample
    step = state.step
    state.step += 1
    if state.base is None:
        state.base = counters
    run_id = state.run_id
    prefix = state.prefix
    append = _writer.metrics.append
    for key, value in values.items():
        append((run_id, prefix + key, float(value), step, timestamp))
    for key, value in counters.items():
        base = state.base.get(key)
        if base is not None:
            megabytes = max(0.0, value - base) / MB
            append((run_id, f"{prefix}{key}_megabytes", megabytes, step, timestamp))


def _record_last(state: _RunState) -> None:
    """A run's end sample, and its start sample too if it never got one."""
    if state.step == 0:
        _record(state, _recent_sample())
    _record(state, _recent_sample())


def run_started(run_id: str, interval_s: float, prefix: str = PREFIX) -> None:
    """Sample ``run_id`` from now on: the thread takes its start sample at once."""
    global _thread, _wake
    state = _RunState(run_id, prefix)
    with _lock:
        _runs[run_id] = state
        if _thread is None:
            _wake = threading.Event()
            thread = threading.Thread(
                target=_loop,
                args=(_wake, interval_s),
                name="autologagent-system-metrics",
                daemon=True,
            )
            _thread = thread
            try:
                thread.start()
            except RuntimeError:  # interpreter shutdown: no thread, sample here
                _thread = None
        threaded = _thread is not None
        if threaded:
            _wake.set()
    if not threaded:
        _record(state, _recent_sample())


def run_ending(run_id: str, wait_s: float = 0.0) -> None:
    """Have ``run_id``'s last sample taken; wait for it at most ``wait_s`` (at exit).

    The thread takes it, as soon as it can: ending a run costs its thread a
    wake-up, and the thread stops ``LINGER_S`` later if no run is left.
    """
    # Bounded: a SIGTERM handler ends runs on the main thread, and must never hang
    # on a lock held by the sampler thread; the last sample is then simply missing.
    if not _lock.acquire(timeout=1.0):
        return
    try:
        state = _runs.pop(run_id, None)
        if state is None:
            return
        threaded = _thread is not None
        if threaded:
            _ending.append(state)
            _wake.set()
    finally:
        _lock.release()
    if not threaded:
        _record_last(state)
    elif wait_s > 0:
        state.done.wait(wait_s)


def _loop(wake: threading.Event, interval_s: float) -> None:
    """Take the samples: runs' start and end samples at once, the others every ``interval_s``.

    Stops ``LINGER_S`` after the last run ended, unless another one started.
    """
    global _thread
    _writer._block_async_signals()
    try:
        probe = _get_probe()
        probe.init_gpus()
        _take(list_children=True)  # the process tree, and a baseline for CPU percentages
        next_due = time.monotonic() + interval_s
        idle_since: float | None = None
        while True:
            now = time.monotonic()
            periodic = now >= next_due
            if periodic:
                next_due = max(next_due + interval_s, now + interval_s / 2)
            with _lock:
                ending = list(_ending)
                _ending.clear()
                starting = [s for s in _runs.values() if s.step == 0]
                running = [s for s in _runs.values() if s.step > 0] if periodic else []
                if _runs or ending:
                    idle_since = None
                elif idle_since is None:
                    idle_since = now
                elif now - idle_since >= LINGER_S:
                    if _thread is threading.current_thread():
                        _thread = None
                    return
            for state in ending:
                _record_last(state)
                state.done.set()
            for states, sample in ((starting, _recent_sample), (running, _periodic_sample)):
                if states:
                    taken = sample()
                    with _lock:
                        for state in states:
                            if _runs.get(state.run_id) is state:
                                _record(state, taken)
            until = next_due if idle_since is None else min(next_due, idle_since + LINGER_S)
            wake.wait(max(0.0, until - time.monotonic()))
            wake.clear()
    except Exception as exc:
        with _lock:
            if _thread is threading.current_thread():
                _thread = None
            for state in _ending:
                state.done.set()
            _ending.clear()
        _errors.report(exc, "sampling system metrics")


def _periodic_sample() -> Sample:
    return _take(list_children=True)


def reset_after_fork() -> None:
    """In a forked child: no thread, no runs, and psutil's Process is the parent's."""
    global _lock, _probe_lock, _thread, _wake, _probe, _last_sample
    _lock = threading.RLock()
    _probe_lock = threading.RLock()
    _runs.clear()
    _ending.clear()
    _thread = None
    _wake = threading.Event()
    _probe = None
    _last_sample = None
