"""scikit-learn plots: drawn by the agent's drawing process, or not at all without matplotlib."""

from __future__ import annotations

from pathlib import Path

import psutil
from conftest import clean_env, list_runs, run_python, write_script
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = (
    "training_confusion_matrix.png",
    "training_roc_curve.png",
    "training_precision_recall_curve.png",
)
TWO_FITS = """
import os, sys
{prelude}
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
X, y = make_classification(n_samples=120, n_features=5, n_classes=3, n_informative=3,
                           random_state=0)
LogisticRegression(max_iter=300).fit(X, y)
LogisticRegression(C=0.5, max_iter=300).fit(X, y)
"""


def _artifact_dir(workdir: Path, run_id: str) -> Path:
    return workdir / "autologruns" / "artifacts" / run_id


def _drawing_processes_left(workdir: Path) -> list[int]:
    """Drawing processes still alive that a program run in ``workdir`` started."""
    return [
        process.pid
        for process in psutil.process_iter(["cmdline", "cwd"])
        if "autologagent._render_worker" in " ".join(process.info["cmdline"] or ())
        and process.info["cwd"] == str(workdir)
    ]


def test_each_classifier_fit_gets_three_pngs_and_the_drawing_process_is_gone(
    workdir: Path,
) -> None:
    script = write_script(
        workdir,
        "train.py",
        TWO_FITS.format(prelude="")
        + """
import time, psutil
deadline = time.monotonic() + 30  # the agent's feeder thread starts the drawing process
while not psutil.Process().children() and time.monotonic() < deadline:
    time.sleep(0.05)
print(len(psutil.Process().children(recursive=True)))
""",
    )
    result = run_python(
        [str(script)], cwd=workdir, env=clean_env(AUTOLOG="1", AUTOLOG_TESTING="1"), check=True
    )
    assert result.stderr == ""
    runs = list_runs(workdir)
    assert len(runs) == 2  # the drawing process made no run of its own
    for run in runs:
        folder = _artifact_dir(workdir, run["run_id"])
        for name in PLOTS:
            assert (folder / name).read_bytes().startswith(PNG_SIGNATURE), name
            with Image.open(folder / name) as image:  # the agent writes the PNG itself
                image.load()  # decodes every row: chunks, CRCs and zlib stream are sound
                assert (image.mode, image.size) == ("RGB", (440, 360))
                colours = image.getcolors(maxcolors=1 << 16)
                assert colours is None or len(colours) > 10  # drawn, not blank
    # While the program ran, the drawing process was its one child; at exit it was
    # waited for (the PNGs above exist), so no process is left behind.
    assert result.stdout.strip() == "1"
    assert _drawing_processes_left(workdir) == []


NO_CLASSIFIER = """
import time, psutil
import sklearn
from sklearn.linear_model import Ridge
deadline = time.monotonic() + 20  # the agent's feeder thread starts the drawing process
drawers = []
while not drawers and time.monotonic() < deadline:
    drawers = [child for child in psutil.Process().children()
               if "autologagent._render_worker" in " ".join(child.cmdline())]
    time.sleep(0.05)
print("drawing process before any fit:", bool(drawers))
Ridge().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
"""


def test_the_drawing_process_starts_with_sklearn_and_is_stopped_if_never_needed(
    workdir: Path,
) -> None:
    """It starts as scikit-learn is imported, so matplotlib loads while the program
    still imports and prepares its data; a program that fits no classifier ends
    without a warning and leaves no drawing process behind."""
    script = write_script(workdir, "train.py", NO_CLASSIFIER)
    result = run_python(
        [str(script)], cwd=workdir, env=clean_env(AUTOLOG="1", AUTOLOG_TESTING="1"), check=True
    )
    assert result.stdout.strip() == "drawing process before any fit: True"
    assert result.stderr == ""
    runs = list_runs(workdir)
    assert [run["status"] for run in runs] == ["FINISHED"]
    files = {path.name for path in _artifact_dir(workdir, runs[0]["run_id"]).rglob("*")}
    assert not files & set(PLOTS)
    assert _drawing_processes_left(workdir) == []


def test_without_matplotlib_no_plots_and_one_warning(workdir: Path) -> None:
    """A program where matplotlib cannot be imported: the runs are whole, minus the plots."""
    script = write_script(
        workdir, "train.py", TWO_FITS.format(prelude='sys.modules["matplotlib"] = None')
    )
    result = run_python([str(script)], cwd=workdir, env=clean_env(AUTOLOG="1"), check=True)
    warnings = [line for line in result.stderr.splitlines() if "autologagent: warning" in line]
    assert len(warnings) == 1
    assert "matplotlib is not installed" in warnings[0]
    runs = list_runs(workdir)
    assert len(runs) == 2
    for run in runs:
        files = {path.name for path in _artifact_dir(workdir, run["run_id"]).rglob("*")}
        assert "model.pkl" in files
        assert not files & set(PLOTS)


STALLED_DRAWING = """
import time
import psutil
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
X, y = make_classification(n_samples=3000, n_features=8, n_classes=4, n_informative=4,
                           random_state=0)
LogisticRegression(max_iter=50).fit(X, y)
deadline = time.monotonic() + 30
drawers = []
while not drawers and time.monotonic() < deadline:  # its feeder thread starts it
    drawers = [child for child in psutil.Process().children()
               if "autologagent._render_worker" in " ".join(child.cmdline())]
    time.sleep(0.05)
drawer = drawers[0]
drawer.suspend()  # the drawing process stops reading its pipe (64 KiB)
for index in range(8):  # each fit's curves: about 200 KB to send
    LogisticRegression(C=1.0 + index, max_iter=50).fit(X, y)
open("fits-done", "w").close()
drawer.resume()
"""


def test_fits_never_wait_for_a_drawing_process_that_lags_behind(workdir: Path) -> None:
    """A loop of fits faster than the drawing must not be paced by it: the jobs
    queue in the training process while the drawing process is stalled, and
    every plot is still drawn before the program exits."""
    script = write_script(workdir, "train.py", STALLED_DRAWING)
    run_python(
        [str(script)],
        cwd=workdir,
        env=clean_env(AUTOLOG="1", AUTOLOG_TESTING="1"),
        check=True,
        timeout=90,  # without the queue the first stalled fit would wait for ever
    )
    assert (workdir / "fits-done").exists()
    runs = list_runs(workdir)
    assert len(runs) == 9
    for run in runs:
        folder = _artifact_dir(workdir, run["run_id"])
        for name in PLOTS:
            assert (folder / name).read_bytes().startswith(PNG_SIGNATURE), name
