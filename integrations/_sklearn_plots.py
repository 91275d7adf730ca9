"""A classifier's training plots as PNG artifacts: confusion matrix, ROC and PR curves.

The numbers (the matrix, the curves) are computed in the training process, where
scikit-learn is loaded, and sent as plain lists to the agent's drawing process
(``autologagent._render``), which draws them with Pillow (``_sklearn_drawing``):
the training loop never waits on the drawing. The ``plots`` extra is matplotlib,
which brings Pillow and the font; without it there are no plots and one warning.
"""

from __future__ import annotations

import os
from typing import Any

PREFIX = "training_"
CONFUSION_MATRIX = PREFIX + "confusion_matrix.png"
ROC_CURVE = PREFIX + "roc_curve.png"
PR_CURVE = PREFIX + "precision_recall_curve.png"
_DRAW = "autologagent.integrations._sklearn_plots:draw"
_PREPARE = "autologagent.integrations._sklearn_plots:prepare"
_available: bool | None = None


def _installed() -> bool:
    global _available
    if _available is None:
        import importlib.util

        _available = importlib.util.find_spec("matplotlib") is not None
    return _available


def available() -> bool:
    """Whether matplotlib is installed (one warning, at the first plot, when it is not)."""
    if not _installed():
        from autologagent import _errors

        _errors.warn(
            "matplotlib is not installed: no plots are logged "
            "(pip install 'autologagent[plots]' to get them)",
            key="no-matplotlib",
        )
    return _installed()


def warm_up() -> None:
    """Start the drawing process early, so it is ready when a fit ends (no warning:
    a program may never fit a classifier)."""
    if _installed():
        from autologagent import _render

        _render.prepare(_PREPARE)


def submit(run_id: str, y_true: Any, y_pred: Any, y_proba: Any, classes: Any) -> None:
    """Compute one classifier's plot data now and have it drawn for ``run_id``."""
    if not available():
        return
    import numpy
    from autologagent import _artifacts, _render
    from sklearn import metrics

    y_true = numpy.asarray(y_true)
    labels = list(classes) if classes is not None else sorted(set(y_true.tolist()))
    matrix = metrics.confusion_matrix(y_true, y_pred, labels=labels)
    curves: list[tuple[str, Any, Any, Any, Any]] = []
    if y_proba is not None and getattr(y_proba, "ndim", 0) == 2 and y_proba.shape[1] >= 2:
        columns = [1] if len(labels) == 2 else range(len(labels))
        for column in columns:
            positive = y_true == labels[column]
            if positive.all() or not positive.any():
                continue
            scores = y_proba[:, column]
            fpr, tpr, _ = metrics.roc_curve(positive, scores)
            precision, recall, _ = metrics.precision_recall_curve(positive, scores)
            auc = metrics.auc(fpr, tpr)
            curves.append(
                (
                    f"class {labels[column]} (AUC {auc:.3f})",
                    fpr.tolist(),  # plain lists: the drawing process never imports numpy
                    tpr.tolist(),
                    recall.tolist(),
                    precision.tolist(),
                )
            )
    _render.submit(
        _DRAW,
        {
            "folder": _artifacts.run_artifact_dir(run_id),
            "matrix": matrix.tolist(),
            "labels": [str(label) for label in labels],
            "curves": curves,
        },
    )


# --- in the drawing process -------------------------------------------------------

# x label, y label, title, diagonal, legend location
_ROC = ("False positive rate", "True positive rate", "ROC curve", True, "lower right")
_PR = ("Recall", "Precision", "Precision-recall curve", False, "lower left")


def prepare() -> None:
    """Load what drawing needs (Pillow, the fonts) while the program still imports."""
    from . import _sklearn_drawing

    _sklearn_drawing.load()


def draw(folder: str, matrix: list[list[int]], labels: list[str], curves: list[Any]) -> None:
    """Draw and write the plots into ``folder`` (the run's artifact folder)."""
    from . import _sklearn_drawing as drawing

    os.makedirs(folder, exist_ok=True)
    _write(folder, CONFUSION_MATRIX, drawing.confusion_matrix_png(matrix, labels))
    if not curves:
        return
    _write(folder, ROC_CURVE, drawing.curves_png([(c[1], c[2], c[0]) for c in curves], *_ROC))
    _write(folder, PR_CURVE, drawing.curves_png([(c[3], c[4], c[0]) for c in curves], *_PR))


def _write(folder: str, name: str, data: bytes) -> None:
    partial = os.path.join(folder, f".partial-{os.getpid()}-{name}")
    with open(partial, "wb") as out:
        out.write(data)
    os.replace(partial, os.path.join(folder, name))
