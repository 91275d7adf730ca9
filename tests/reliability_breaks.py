# ruff: noqa: E501  (a table of code snippets and test ids, clearer unwrapped)
"""Break each reliability property in a copy of the project; its tests must then fail.

Run once after changing what docs/reliability.md lists:

    .venv/bin/python tests/reliability_breaks.py [WORD ...]

Each case copies the working tree, applies one break (the property taken out),
installs the copy into the interpreter running this script, and runs the tests
that guard the property: the case is CAUGHT when they fail. The real project is
reinstalled at the end, whatever happened. WORDs pick cases by name. Not a test
module: pytest does not collect it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
T = "tests/"

CASES = [
    (
        "liveness off",
        "agent/_liveness.py",
        "    if reason is not None:\n",
        "    if False:\n",
        [
            T
            + "test_reliability_faults.py::test_sigkill_keeps_committed_points_and_the_run_is_shown_dead",
            T
            + "test_reliability_faults.py::test_os_exit_keeps_committed_points_and_the_run_is_shown_dead",
        ],
    ),
    (
        "liveness ignores start time",
        "agent/_liveness.py",
        "        return abs(started - float(start_text)) > _START_TOLERANCE_S\n",
        "        return False\n",
        [
            T
            + "test_reliability_faults.py::test_liveness_tells_a_reused_pid_and_leaves_other_hosts_alone"
        ],
    ),
    (
        "liveness judges other hosts",
        "agent/_liveness.py",
        "    return len(parts) == 4 and parts[0] == _host() and parts[3] == _pid_namespace()\n",
        "    return len(parts) == 4\n",
        [
            T
            + "test_reliability_faults.py::test_liveness_tells_a_reused_pid_and_leaves_other_hosts_alone"
        ],
    ),
    (
        "liveness ignores the pid namespace",
        "agent/_liveness.py",
        "    return len(parts) == 4 and parts[0] == _host() and parts[3] == _pid_namespace()\n",
        "    return len(parts) == 4 and parts[0] == _host()\n",
        [
            T
            + "test_reliability_faults.py::test_liveness_tells_a_reused_pid_and_leaves_other_hosts_alone"
        ],
    ),
    (
        "no heartbeat sent",
        "agent/_writer.py",
        "            _liveness.heartbeat(enqueue, time.time())\n",
        "",
        [
            T
            + "test_reliability_faults.py::test_sigkill_keeps_committed_points_and_the_run_is_shown_dead"
        ],
    ),
    (
        "stale heartbeat ignored",
        "agent/_liveness.py",
        "    if silent_s <= STALE_S:\n",
        "    if True:\n",
        [
            T
            + "test_reliability_faults.py::test_a_run_of_another_host_is_dead_once_its_heartbeat_stops"
        ],
    ),
    (
        "full disk stops at the first series",
        "agent/_writer.py",
        "            batch = _write_each(batch, keep_going=full)\n",
        "            batch = _write_each(batch, keep_going=False)\n",
        [T + "test_reliability_faults.py::test_a_full_disk_is_one_warning_and_keeps_what_fits"],
    ),
    (
        "artifact warning has its own key",
        "agent/_artifacts.py",
        'STORE_WARNING_KEY = "store-write"\n',
        'STORE_WARNING_KEY = "artifact-store"\n',
        [T + "test_reliability_faults.py::test_a_read_only_store_is_one_warning"],
    ),
    (
        "database not created private",
        "agent/_sqlite_store.py",
        "            _create_private(database)\n",
        "",
        [
            T + "test_reliability_security.py::test_default_store_is_readable_by_its_owner_only",
            T
            + "test_reliability_security.py::test_sqlite_uri_in_a_shared_folder_keeps_the_database_private",
        ],
    ),
    (
        "artifact root not private",
        "agent/_artifacts.py",
        "        os.mkdir(path, 0o700)\n",
        "        os.mkdir(path)\n",
        [
            T
            + "test_reliability_security.py::test_sqlite_uri_in_a_shared_folder_keeps_the_database_private"
        ],
    ),
    (
        "CLI unpickles models",
        "agent/_cli_runs.py",
        "            _print_run(run, options.json)\n",
        "            _print_run(run, options.json)\n"
        "            import glob, pickle\n"
        "            for f in glob.glob(store.artifact_dir(run.run_id) + '/*/*.pkl'):\n"
        "                pickle.load(open(f, 'rb'))\n",
        [
            T
            + "test_reliability_security.py::test_listing_and_showing_runs_runs_no_code_from_the_store"
        ],
    ),
    (
        "params not truncated",
        "agent/_fluent.py",
        "MAX_PARAM_LENGTH = 6000",
        "MAX_PARAM_LENGTH = 6_000_000",
        [
            T
            + "test_reliability_load.py::test_a_1mb_param_is_truncated_and_tagged_and_logging_goes_on"
        ],
    ),
    (
        "param values as repr",
        "agent/_fluent.py",
        "    text = str(value)\n",
        "    text = repr(value)\n",
        [T + "test_reliability_load.py::test_param_values_of_any_type_are_stored_as_their_str"],
    ),
    (
        "slashes refused in metric names",
        "agent/_fluent.py",
        '    if type(key) is not str or not key:\n        _check_key(key, "log_metric")\n',
        "    if type(key) is not str or not key or '/' in key:\n        raise ValueError(key)\n",
        [T + "test_reliability_load.py::test_metric_names_with_unicode_and_slashes_are_stored"],
    ),
    (
        "a point lost per chunk",
        "agent/_series.py",
        "        for start in range(0, len(members), CHUNK_POINTS):\n            part = members[start : start + CHUNK_POINTS]\n",
        "        for start in range(0, len(members), CHUNK_POINTS):\n            part = members[start : start + CHUNK_POINTS - 1]\n",
        [
            T + "test_reliability_load.py::test_one_run_with_a_million_points_of_one_metric",
            T
            + "test_reliability_load.py::test_eight_processes_log_100k_points_each_into_one_store",
        ],
    ),
    (
        "patched functions refuse deepcopy",
        "agent/_wrappers.py",
        "    def __deepcopy__(self, memo: dict[int, Any]) -> Any:\n        return self\n",
        "",
        [T + "test_transparency.py::test_sklearn_own_test_suite_has_the_same_outcomes"],
    ),
    (
        "xgboost callback stops training",
        "integrations/xgboost.py",
        "                if epoch % series.every:\n                    return False\n",
        "                if epoch >= 1:\n                    return True\n",
        [T + "test_transparency.py::test_xgboost_shipped_checks_have_the_same_outcomes"],
    ),
    (
        "torch hook nudges the learning rate",
        "integrations/torch.py",
        "        state.ends.append(len(state.losses))\n",
        "        state.ends.append(len(state.losses))\n"
        "        optimizer.param_groups[0]['lr'] *= 1.0000001\n",
        [T + "test_transparency.py::test_torch_public_behaviour_is_unchanged"],
    ),
]


def _install(path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(path)],
        check=True,
        capture_output=True,
    )


def _try(name: str, path: str, old: str, new: str, tests: list[str], scratch: Path) -> bool:
    copy = scratch / "src"
    shutil.rmtree(copy, ignore_errors=True)
    ignore = shutil.ignore_patterns(".venv*", ".git", "__pycache__", "node_modules")
    shutil.copytree(REPO, copy, ignore=ignore)
    target = copy / path
    text = target.read_text()
    if text.count(old) != 1:
        print(f"STALE: {name}: the code to break is no longer in {path}", flush=True)
        return False
    target.write_text(text.replace(old, new))
    _install(copy)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    lines = run.stdout.strip().splitlines()
    last = lines[-1] if lines else run.stderr[-300:]
    caught = run.returncode != 0 and "failed" in last
    print(f"{'CAUGHT' if caught else 'MISSED'}: {name}: {last}", flush=True)
    return caught


def main(words: list[str]) -> int:
    chosen = [case for case in CASES if not words or any(word in case[0] for word in words)]
    with tempfile.TemporaryDirectory() as scratch:
        try:
            results = [_try(*case, Path(scratch)) for case in chosen]
        finally:
            _install(REPO)
    print(f"{sum(results)} of {len(results)} breaks caught; the project is reinstalled")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
