"""A classifier's training plots as PNG artifacts: confusion matrix, ROC and PR curves.

The numbers (the matrix, the curves) are computed in the training process, where
scikit-learn is loaded; the drawing happens in the agent's drawing process
(``autologagent._render``), which imports only numpy and matplotlib, so the
training loop never waits on matplotlib. Drawn with matplotlib's object API (a
``Figure`` on the Agg canvas), never ``pyplot``. matplotlib is an optional
extra; without it there are no plots and one warning.
"""

from __future__ import annotations

import io
import os
from typing import Any

PREFIX = "training_"
CONFUSION_MATRIX = PREFIX + "confusion_matrix.png"
ROC_CURVE = PREFIX + "roc_curve.png"
PR_CURVE = PREFIX + "precision_recall_curve.png"
_DRAW = "autologagent.integrations._sklearn_plots:draw"
_DPI = 80
_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
_available: bool | None = None


def available() -> bool:
    """Whether matplotlib is installed (one warning the first time it is not)."""
    global _available
    if _available is None:
        import importlib.util

        _available = importlib.util.find_spec("matplotlib") is not None
        if not _available:
            from autologagent import _errors

            _errors.warn(
                "matplotlib is not installed: no plots are logged "
                "(pip install 'autologagent[plots]' to get them)",
                key="no-matplotlib",
            )
    return _available


def warm_up() -> None:
    """Start the drawing process while the fit runs, so it is ready when the fit ends."""
    if available():
        from autologagent import _render

        _render.warm_up()


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
            curves.append((f"class {labels[column]} (AUC {auc:.3f})", fpr, tpr, recall, precision))
    _render.submit(
        _DRAW,
        {
            "folder": _artifacts.run_artifact_dir(run_id),
            "matrix": matrix,
            "labels": [str(label) for label in labels],
            "curves": curves,
        },
    )


# --- in the drawing process -------------------------------------------------------


def draw(folder: str, matrix: Any, labels: list[str], curves: list[tuple[Any, ...]]) -> None:
    """Draw and write the plots into ``folder`` (the run's artifact folder)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    os.makedirs(folder, exist_ok=True)
    figure = _figure(Figure)
    _confusion_matrix(figure, matrix, labels)
    _write(folder, CONFUSION_MATRIX, _png(figure, FigureCanvasAgg))
    if not curves:
        return
    roc = _figure(Figure)
    _plot_curves(
        roc,
        [(c[1], c[2], c[0]) for c in curves],
        "False positive rate",
        "True positive rate",
        "ROC curve",
        diagonal=True,
    )
    _write(folder, ROC_CURVE, _png(roc, FigureCanvasAgg))
    pr = _figure(Figure)
    _plot_curves(
        pr,
        [(c[3], c[4], c[0]) for c in curves],
        "Recall",
        "Precision",
        "Precision-recall curve",
        diagonal=False,
    )
    _write(folder, PR_CURVE, _png(pr, FigureCanvasAgg))


def _write(folder: str, name: str, data: bytes) -> None:
    partial = os.path.join(folder, f".partial-{os.getpid()}-{name}")
    with open(partial, "wb") as out:
        out.write(data)
    os.replace(partial, os.path.join(folder, name))


def _figure(figure_class: Any) -> Any:
    figure = figure_class(figsize=(5.5, 4.5))
    figure.subplots_adjust(left=0.14, right=0.95, bottom=0.12, top=0.92)
    return figure


def _png(figure: Any, canvas_class: Any) -> bytes:
    canvas_class(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _confusion_matrix(figure: Any, matrix: Any, labels: list[str]) -> None:
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(labels))
    axes.set_xticks(ticks, labels)
    axes.set_yticks(ticks, labels)
    axes.set_xlabel("Predicted label")
    axes.set_ylabel("True label")
    axes.set_title("Confusion matrix (training data)")
    threshold = matrix.max() / 2 if matrix.size else 0
    if len(labels) <= 20:
        for row in ticks:
            for column in ticks:
                value = matrix[row, column]
                axes.text(
                    column,
                    row,
                    str(value),
                    ha="center",
                    va="center",
                    color="white" if value > threshold else "black",
                )


def _plot_curves(
    figure: Any,
    curves: list[tuple[Any, Any, str]],
    x_label: str,
    y_label: str,
    title: str,
    diagonal: bool,
) -> None:
    axes = figure.add_subplot()
    for x, y, label in curves:
        axes.plot(x, y, label=label)
    if diagonal:
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xticks(_TICKS)  # fixed ticks: no tick search, and fewer labels to draw
    axes.set_yticks(_TICKS)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title + " (training data)")
    axes.legend(loc="lower right" if diagonal else "lower left", fontsize="small")
