"""Holdout scores: one function for champion and challenger, so their scores compare."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelwatch_monitor import contract

if TYPE_CHECKING:
    import pandas as pd

    from modelwatch_monitor.store.estimators import Estimator, Labels, Probabilities


def score(model: Estimator, X: pd.DataFrame, y: pd.Series, metric: str) -> float:
    """Score ``model`` on a holdout with one of :data:`modelwatch_monitor.contract.METRICS`.

    Champion and challenger go through this same function, so their scores compare.

    Parameters
    ----------
    model : Estimator
        A :class:`~modelwatch_monitor.train.fitted.FittedModel`, or anything with its
        ``predict`` / ``predict_proba`` / ``classes_``.
    X : pandas.DataFrame of shape (n_rows, n_columns)
        Raw holdout features; the model types them with its own schema.
    y : pandas.Series of shape (n_rows,)
    metric : str

    Returns
    -------
    float

    Raises
    ------
    ValueError
        The metric is undefined on this holdout (e.g. a single class for ROC AUC).
    """
    import numpy as np
    from sklearn import metrics as skm

    y_true = np.asarray(y)
    if contract.METRICS[metric][0] == "regression":
        pred = np.asarray(model.predict(X), dtype=np.float64)
        if metric == "r2":
            return float(skm.r2_score(y_true, pred))
        if metric == "rmse":
            return float(np.sqrt(skm.mean_squared_error(y_true, pred)))
        if metric == "mse":
            return float(skm.mean_squared_error(y_true, pred))
        if metric == "mae":
            return float(skm.mean_absolute_error(y_true, pred))
        return float(skm.mean_absolute_percentage_error(y_true, pred))

    classes = np.asarray(model.classes_)
    if metric in ("accuracy", "f1", "macro_f1", "micro_f1"):
        pred = np.asarray(model.predict(X))
        if metric == "accuracy":
            return float(skm.accuracy_score(y_true, pred))
        if metric == "f1":
            positive = _positive_class(y_true, classes)
            return float(skm.f1_score(y_true == positive, pred == positive))
        average = "macro" if metric == "macro_f1" else "micro"
        return float(skm.f1_score(y_true, pred, average=average))
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    if metric == "log_loss":
        return float(skm.log_loss(y_true, proba, labels=list(classes)))
    present = np.unique(y_true)
    if len(present) < 2:
        raise ValueError(f"{metric} is undefined: the holdout holds one class only")
    if metric == "roc_auc" and len(present) == 2:
        positive = _positive_class(y_true, classes)
        return float(skm.roc_auc_score(y_true == positive, _column(proba, classes, positive)))
    # One-vs-rest, macro-averaged over the classes present in the holdout.
    aucs = [skm.roc_auc_score(y_true == c, _column(proba, classes, c)) for c in present]
    return float(np.mean(aucs))


def _positive_class(y_true: Labels, classes: Labels) -> object:
    import numpy as np

    # scikit-learn's convention: the greater of the two labels is the positive one.
    present = np.unique(y_true)
    if len(present) == 2 or len(classes) == 0:
        return present[-1]
    return np.unique(classes)[-1]


def _column(proba: Probabilities, classes: Labels, label: object) -> Probabilities:
    import numpy as np

    idx = np.flatnonzero(classes == label)
    if idx.size == 0:  # the model never saw this class: it scores 0 for it
        return np.zeros(proba.shape[0])
    return proba[:, idx[0]]
