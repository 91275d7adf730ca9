"""Training metrics of a fitted estimator, computed on its training data as MLflow does.

The kind of estimator decides the metrics (names as MLflow's, ``training_``
prefix): classifiers get accuracy, weighted precision / recall / F1, log loss and
ROC AUC (one-vs-one, weighted) when ``predict_proba`` exists, and ``score``;
regressors MSE, RMSE, MAE, R² and ``score``; clusterers ``score`` when defined
and the silhouette, Calinski-Harabasz and Davies-Bouldin indices of the fitted
labels; outlier detectors the fraction flagged. Sample weights are passed to
every metric that takes them. Predictions are made once and shared by the
metrics, and a ``score`` that is sklearn's default (accuracy, R²) is computed
from them instead of predicting again.

Also used by the XGBoost and LightGBM integrations for their scikit-learn
estimators. Every metric is computed on its own: one that fails (a class missing
from the labels, say) is left out, never the rest.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

# Silhouette is quadratic in the sample count: beyond this it is estimated on a
# fixed random sample, as sklearn's own ``sample_size`` argument allows.
SILHOUETTE_SAMPLE = 5_000


class Predictions:
    """What a classifier's metrics and plots need, computed once on the training data."""

    def __init__(self, y_true: Any, y_pred: Any, y_proba: Any, classes: Any) -> None:
        self.y_true = y_true
        self.y_pred = y_pred
        self.y_proba = y_proba
        self.classes = classes


def estimator_kind(estimator: Any) -> str:
    """``classifier``, ``regressor``, ``clusterer``, ``outlier_detector`` or ``other``."""
    from sklearn.base import is_classifier, is_regressor

    try:
        if is_classifier(estimator):
            return "classifier"
        if is_regressor(estimator):
            return "regressor"
        kind = getattr(estimator, "_estimator_type", None)
        if kind is None:
            tags = getattr(estimator, "__sklearn_tags__", None)
            kind = getattr(tags(), "estimator_type", None) if callable(tags) else None
    except Exception:
        return "other"
    if kind == "clusterer":
        return "clusterer"
    if kind == "outlier_detector":
        return "outlier_detector"
    return "other"


def training_metrics(
    estimator: Any,
    X: Any,
    y: Any = None,
    sample_weight: Any = None,
    prefix: str = "training_",
) -> tuple[dict[str, float], Predictions | None]:
    """The metrics of ``estimator`` fitted on ``X`` (and ``y``), and a classifier's predictions."""
    kind = estimator_kind(estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "classifier" and y is not None:
            return _classifier(estimator, X, y, sample_weight, prefix)
        if kind == "regressor" and y is not None:
            return _regressor(estimator, X, y, sample_weight, prefix), None
        if kind == "clusterer":
            return _clusterer(estimator, X, y, sample_weight, prefix), None
        if kind == "outlier_detector":
            return _outlier_detector(estimator, X, prefix), None
        return _score_only(estimator, X, y, sample_weight, prefix), None


def _add(metrics: dict[str, float], name: str, compute: Callable[[], Any]) -> None:
    try:
        value = float(compute())
    except Exception:
        return
    if not math.isnan(value) or name.endswith("score"):
        metrics[name] = value


def _weighted(function: Callable[..., Any], *args: Any, sample_weight: Any, **kw: Any) -> Any:
    if sample_weight is None:
        return function(*args, **kw)
    return function(*args, sample_weight=sample_weight, **kw)


def _overrides(estimator: Any, mixin: type) -> bool:
    """Whether the estimator's ``score`` is its own rather than the mixin's default.

    Found by where it is defined, never by getting it: the agent wraps ``score``,
    and a wrapped method got from a class is a new object each time.
    """
    for klass in type(estimator).__mro__:
        if "score" in vars(klass):
            return klass is not mixin
    return False


def _argmax_predictors() -> tuple[Any, ...]:
    """``predict`` methods that are exactly ``classes_[argmax(predict_proba)]``.

    Looked up among the modules already imported: an estimator from a module the
    program never imported cannot be one of them, so nothing is imported here.
    """
    import sys

    found = []
    for module_name, class_name in (
        ("sklearn.ensemble._forest", "ForestClassifier"),
        ("sklearn.tree._classes", "DecisionTreeClassifier"),
    ):
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if cls is not None:
            found.append(_unwrapped(vars(cls).get("predict")))
    return tuple(found)


def _unwrapped(function: Any) -> Any:
    return getattr(function, "__wrapped__", function)


def _predict_from_proba(estimator: Any, y_proba: Any) -> Any:
    """Trees and forests predict the most probable class: reuse the probabilities
    rather than walk every tree again (half the cost of the metrics for a forest)."""
    if y_proba is None or getattr(y_proba, "ndim", 0) != 2:
        return None
    if getattr(estimator, "n_outputs_", 1) != 1:
        return None
    if _unwrapped(getattr(type(estimator), "predict", None)) not in _argmax_predictors():
        return None
    import numpy

    return estimator.classes_.take(numpy.argmax(y_proba, axis=1), axis=0)


def _classifier(
    estimator: Any, X: Any, y: Any, sample_weight: Any, prefix: str
) -> tuple[dict[str, float], Predictions | None]:
    from sklearn import metrics as m
    from sklearn.base import ClassifierMixin

    metrics: dict[str, float] = {}
    y_proba = None
    if hasattr(estimator, "predict_proba"):
        try:
            y_proba = estimator.predict_proba(X)
        except Exception:
            y_proba = None
    try:
        y_pred = _predict_from_proba(estimator, y_proba)
        if y_pred is None:
            y_pred = estimator.predict(X)
    except Exception:
        return _score_only(estimator, X, y, sample_weight, prefix), None
    sw = sample_weight
    _add(
        metrics,
        prefix + "accuracy_score",
        lambda: _weighted(m.accuracy_score, y, y_pred, sample_weight=sw),
    )
    # One pass for the three weighted scores: what precision_score, recall_score and
    # f1_score each compute (and each validate) on their own.
    try:
        precision, recall, f1, _ = _weighted(
            m.precision_recall_fscore_support, y, y_pred, sample_weight=sw, average="weighted"
        )
        metrics[prefix + "precision_score"] = float(precision)
        metrics[prefix + "recall_score"] = float(recall)
        metrics[prefix + "f1_score"] = float(f1)
    except Exception:
        pass
    classes = getattr(estimator, "classes_", None)
    if y_proba is not None and getattr(y_proba, "ndim", 0) == 2:
        labels = classes if classes is not None else None
        _add(
            metrics,
            prefix + "log_loss",
            lambda: _weighted(m.log_loss, y, y_proba, sample_weight=sw, labels=labels),
        )
        score = y_proba[:, 1] if y_proba.shape[1] == 2 else y_proba
        _add(
            metrics,
            prefix + "roc_auc",
            lambda: _weighted(
                m.roc_auc_score,
                y,
                score,
                sample_weight=sw,
                multi_class="ovo",
                average="weighted",
                **({"labels": labels} if y_proba.shape[1] > 2 and labels is not None else {}),
            ),
        )
    if _overrides(estimator, ClassifierMixin):
        _add(metrics, prefix + "score", lambda: _weighted(estimator.score, X, y, sample_weight=sw))
    elif prefix + "accuracy_score" in metrics:
        metrics[prefix + "score"] = metrics[prefix + "accuracy_score"]
    return metrics, Predictions(y, y_pred, y_proba, classes)


def _regressor(estimator: Any, X: Any, y: Any, sample_weight: Any, prefix: str) -> dict[str, float]:
    from sklearn import metrics as m
    from sklearn.base import RegressorMixin

    metrics: dict[str, float] = {}
    try:
        y_pred = estimator.predict(X)
    except Exception:
        return _score_only(estimator, X, y, sample_weight, prefix)
    sw = sample_weight
    _add(
        metrics,
        prefix + "mean_squared_error",
        lambda: _weighted(m.mean_squared_error, y, y_pred, sample_weight=sw),
    )
    if prefix + "mean_squared_error" in metrics:
        metrics[prefix + "root_mean_squared_error"] = math.sqrt(
            metrics[prefix + "mean_squared_error"]
        )
    _add(
        metrics,
        prefix + "mean_absolute_error",
        lambda: _weighted(m.mean_absolute_error, y, y_pred, sample_weight=sw),
    )
    _add(metrics, prefix + "r2_score", lambda: _weighted(m.r2_score, y, y_pred, sample_weight=sw))
    if _overrides(estimator, RegressorMixin):
        _add(metrics, prefix + "score", lambda: _weighted(estimator.score, X, y, sample_weight=sw))
    elif prefix + "r2_score" in metrics:
        metrics[prefix + "score"] = metrics[prefix + "r2_score"]
    return metrics


def _clusterer(estimator: Any, X: Any, y: Any, sample_weight: Any, prefix: str) -> dict[str, float]:
    from sklearn import metrics as m

    metrics = _score_only(estimator, X, y, sample_weight, prefix)
    labels = getattr(estimator, "labels_", None)
    if labels is None:
        return metrics
    try:
        n_labels = len(set(labels.tolist()))
    except Exception:
        return metrics
    if not 2 <= n_labels < len(labels):
        return metrics  # the indices are defined for 2 to n-1 clusters only
    sample = SILHOUETTE_SAMPLE if len(labels) > SILHOUETTE_SAMPLE else None
    _add(
        metrics,
        prefix + "silhouette_score",
        lambda: m.silhouette_score(X, labels, sample_size=sample, random_state=0),
    )
    _add(metrics, prefix + "calinski_harabasz_score", lambda: m.calinski_harabasz_score(X, labels))
    _add(metrics, prefix + "davies_bouldin_score", lambda: m.davies_bouldin_score(X, labels))
    return metrics


def _outlier_detector(estimator: Any, X: Any, prefix: str) -> dict[str, float]:
    metrics: dict[str, float] = {}
    factors = getattr(estimator, "negative_outlier_factor_", None)
    offset = getattr(estimator, "offset_", None)
    if factors is not None and offset is not None:
        # LocalOutlierFactor: its fit labelled the training data; never refit it.
        _add(metrics, prefix + "outlier_fraction", lambda: (factors < offset).mean())
        return metrics
    _add(metrics, prefix + "outlier_fraction", lambda: (estimator.predict(X) == -1).mean())
    return metrics


def _score_only(
    estimator: Any, X: Any, y: Any, sample_weight: Any, prefix: str
) -> dict[str, float]:
    metrics: dict[str, float] = {}
    if not callable(getattr(estimator, "score", None)):
        return metrics
    if sample_weight is not None:
        _add(metrics, prefix + "score", lambda: estimator.score(X, y, sample_weight=sample_weight))
    if prefix + "score" not in metrics:
        _add(metrics, prefix + "score", lambda: estimator.score(X, y))
    return metrics
