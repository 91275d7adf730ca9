"""A classifier's training plots as PNG artifacts: confusion matrix, ROC and PR curves.

Drawn on the background worker with matplotlib's object API (a ``Figure`` and
the Agg canvas), never ``pyplot``: no global figure state is touched, so a user
plotting in their own thread is unaffected, and no display is needed. matplotlib
is an optional extra; without it there are no plots and one warning.
"""

from __future__ import annotations

import io
from typing import Any

from autologagent import _artifacts, _background, _errors

PREFIX = "training_"
_DPI = 80
_warming = False


def warm_up() -> None:
    """Import matplotlib on the background worker now, while a fit runs.

    The import costs about half a second of Python; a fit spends most of its
    time in compiled code that releases the GIL, so done now it is nearly free,
    and the plots drawn when the fit returns start at once.
    """
    global _warming
    if _warming:
        return
    _warming = True

    def load() -> None:
        try:
            from matplotlib.backends import backend_agg  # noqa: F401
            from matplotlib.figure import Figure  # noqa: F401
        except ImportError:
            pass

    _background.submit(load, "loading matplotlib")


def submit(run_id: str, y_true: Any, y_pred: Any, y_proba: Any, classes: Any) -> None:
    """Queue the plots of one classifier's training predictions for ``run_id``."""
    import numpy

    y_true = numpy.array(y_true, copy=True)  # the caller's array may change after fit
    _background.submit(
        lambda: _draw_all(run_id, y_true, y_pred, y_proba, classes),
        "drawing the training plots",
    )


def _matplotlib() -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        _errors.warn(
            "matplotlib is not installed: no plots are logged "
            "(pip install 'autologagent[plots]' to get them)",
            key="no-matplotlib",
        )
        return None
    return Figure, FigureCanvasAgg


def _figure(figure_class: Any) -> Any:
    figure = figure_class(figsize=(5.5, 4.5))
    figure.subplots_adjust(left=0.14, right=0.95, bottom=0.12, top=0.92)
    return figure


def _png(figure: Any, canvas_class: Any) -> bytes:
    canvas_class(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _draw_all(run_id: str, y_true: Any, y_pred: Any, y_proba: Any, classes: Any) -> None:
    tools = _matplotlib()
    if tools is None:
        return
    figure_class, canvas_class = tools
    from sklearn import metrics

    labels = list(classes) if classes is not None else sorted(set(y_true.tolist()))
    matrix = metrics.confusion_matrix(y_true, y_pred, labels=labels)
    _artifacts.write_bytes(
        run_id,
        PREFIX + "confusion_matrix.png",
        _png(_confusion_matrix(_figure(figure_class), matrix, labels), canvas_class),
    )
    if y_proba is None or getattr(y_proba, "ndim", 0) != 2 or y_proba.shape[1] < 2:
        return
    curves = _curves(y_true, y_proba, labels)
    if not curves:
        return
    roc = _figure(figure_class)
    _plot_curves(
        roc,
        [(fpr, tpr, label) for label, (fpr, tpr, _p, _r) in curves.items()],
        "False positive rate",
        "True positive rate",
        "ROC curve",
        diagonal=True,
    )
    _artifacts.write_bytes(run_id, PREFIX + "roc_curve.png", _png(roc, canvas_class))
    pr = _figure(figure_class)
    _plot_curves(
        pr,
        [(r, p, label) for label, (_f, _t, p, r) in curves.items()],
        "Recall",
        "Precision",
        "Precision-recall curve",
        diagonal=False,
    )
    _artifacts.write_bytes(run_id, PREFIX + "precision_recall_curve.png", _png(pr, canvas_class))


def _curves(y_true: Any, y_proba: Any, labels: list[Any]) -> dict[str, tuple[Any, ...]]:
    """label -> (fpr, tpr, precision, recall): the positive class if binary, else one-vs-rest."""
    from sklearn import metrics

    columns = [1] if len(labels) == 2 else range(len(labels))
    curves: dict[str, tuple[Any, ...]] = {}
    for column in columns:
        positive = y_true == labels[column]
        if positive.all() or not positive.any():
            continue
        scores = y_proba[:, column]
        fpr, tpr, _ = metrics.roc_curve(positive, scores)
        precision, recall, _ = metrics.precision_recall_curve(positive, scores)
        auc = metrics.auc(fpr, tpr)
        curves[f"class {labels[column]} (AUC {auc:.3f})"] = (fpr, tpr, precision, recall)
    return curves


def _confusion_matrix(figure: Any, matrix: Any, labels: list[Any]) -> Any:
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(labels))
    axes.set_xticks(ticks, [str(label) for label in labels])
    axes.set_yticks(ticks, [str(label) for label in labels])
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
    return figure


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
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title + " (training data)")
    axes.legend(loc="lower right" if diagonal else "lower left", fontsize="small")
