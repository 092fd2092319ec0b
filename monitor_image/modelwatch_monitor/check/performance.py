"""Model performance on labelled predictions, compared with a baseline.

Labels arrive later than predictions; they are joined to the predictions by id, and
only predictions that have a label count. Metrics:

- classification: ``accuracy``, ``precision``, ``recall``, ``f1`` (binary for two
  classes, else macro), ``roc_auc`` and ``log_loss`` (these two need probability
  columns ``proba_<class>``, or one ``proba`` column for the positive class);
- regression: ``rmse``, ``mae``, ``r2``.

A metric that cannot be computed on this window (one class only, no probabilities,
too few labelled rows) is *undefined* with a reason; it never raises.

The baseline, in order: ``spec.performance.baseline``; the metric recorded in the
reference profile (when the reference carries target and prediction, and
``proba_<class>`` columns for ``roc_auc`` and ``log_loss``); the
``metrics.challenger.<metric>`` in the ``metadata.json`` of the version that served
the window (else the latest version). Each result names where its baseline came from
(``baselineSource``: :data:`BASELINE_SOURCES`). A metric without a baseline is not
judged: ``degraded`` is None and ``undefinedReason`` is :data:`REASON_NO_BASELINE`.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelwatch_monitor import contract
from modelwatch_monitor.check.documents import MetricEntry

CLASSIFICATION_METRICS: Final = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS: Final = ("rmse", "mae", "r2")
LOWER_IS_BETTER: Final = frozenset(m for m, (_, greater) in contract.METRICS.items() if not greater)
DEFAULT_METRIC: Final = {"classification": "accuracy", "regression": "rmse"}
DEFAULT_MAX_DEGRADATION: Final = 0.1
DEFAULT_MIN_LABELED_ROWS: Final = 50
REASON_NO_BASELINE: Final = "NoBaseline"
BASELINE_SOURCES: Final = ("spec", "reference", "holdout")


@dataclass(frozen=True)
class MetricValue:
    """One metric: a value, or None with the reason it is undefined."""

    name: str
    value: float | None
    undefined_reason: str | None = None


def _labels_as_str(a: ArrayLike) -> NDArray[np.object_]:
    return np.asarray([str(v) for v in np.asarray(a, dtype=object)], dtype=object)


def compute_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    task: str,
    *,
    proba: Mapping[str, ArrayLike] | None = None,
) -> dict[str, MetricValue]:
    """Compute every metric of ``task``.

    Parameters
    ----------
    y_true, y_pred : array_like of shape (n,)
    task : {"classification", "regression"}
    proba : mapping of class label (as str) to array_like of shape (n,), optional
        Predicted class probabilities, for ``roc_auc`` and ``log_loss``.

    Returns
    -------
    dict of metric name to MetricValue
    """
    from sklearn import metrics as skm

    out: dict[str, MetricValue] = {}
    n = len(np.asarray(y_true))
    if task == "regression":
        ft = np.asarray(y_true, dtype=np.float64)
        fp = np.asarray(y_pred, dtype=np.float64)
        if n == 0:
            return {m: MetricValue(m, None, "no labelled rows") for m in REGRESSION_METRICS}
        out["rmse"] = MetricValue("rmse", float(np.sqrt(np.mean((ft - fp) ** 2))))
        out["mae"] = MetricValue("mae", float(np.mean(np.abs(ft - fp))))
        if n < 2 or float(np.var(ft)) == 0.0:
            out["r2"] = MetricValue("r2", None, "the labels are constant in this window")
        else:
            out["r2"] = MetricValue("r2", float(skm.r2_score(ft, fp)))
        return out
    if task != "classification":
        raise ValueError(
            f"The 'task' parameter must be 'classification' or 'regression'. Got {task!r} instead."
        )
    if n == 0:
        return {m: MetricValue(m, None, "no labelled rows") for m in CLASSIFICATION_METRICS}
    yt, yp = _labels_as_str(y_true), _labels_as_str(y_pred)
    out["accuracy"] = MetricValue("accuracy", float(np.mean(yt == yp)))
    present = sorted(set(yt.tolist()))
    classes = sorted(set(present) | set(yp.tolist()) | set((proba or {}).keys()))
    if len(present) < 2:
        reason = (
            f"the labels in this window have only one class ({present[0]!r}); "
            "the metric is undefined"
        )
        for m in ("precision", "recall", "f1", "roc_auc", "log_loss"):
            out[m] = MetricValue(m, None, reason)
        return out
    binary = len(classes) == 2
    kwargs: dict[str, str | list[str]] = (
        {"average": "binary", "pos_label": classes[1]}
        if binary
        else {"average": "macro", "labels": present}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["precision"] = MetricValue(
            "precision", float(skm.precision_score(yt, yp, zero_division=0, **kwargs))
        )
        out["recall"] = MetricValue(
            "recall", float(skm.recall_score(yt, yp, zero_division=0, **kwargs))
        )
        out["f1"] = MetricValue("f1", float(skm.f1_score(yt, yp, zero_division=0, **kwargs)))
    if not proba:
        reason = "the predictions carry no probability columns (proba_<class>)"
        out["roc_auc"] = MetricValue("roc_auc", None, reason)
        out["log_loss"] = MetricValue("log_loss", None, reason)
        return out
    if binary and len(proba) == 1:
        (only,) = proba.values()
        p1 = np.asarray(only, dtype=np.float64)
        cols = [classes[0], classes[1]]
        p = np.column_stack([1 - p1, p1])
    else:
        missing = [c for c in classes if c not in proba]
        if missing:
            reason = f"no probability column for class {missing[0]!r}"
            out["roc_auc"] = MetricValue("roc_auc", None, reason)
            out["log_loss"] = MetricValue("log_loss", None, reason)
            return out
        cols = classes
        p = np.column_stack([np.asarray(proba[c], dtype=np.float64) for c in cols])
    p = np.clip(p, 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    out["log_loss"] = MetricValue("log_loss", float(skm.log_loss(yt, p, labels=cols)))
    if binary:
        auc = skm.roc_auc_score(yt == cols[1], p[:, 1])
    else:
        idx = [cols.index(c) for c in present]
        sub = p[:, idx] / p[:, idx].sum(axis=1, keepdims=True)
        auc = skm.roc_auc_score(yt, sub, multi_class="ovr", labels=present)
    out["roc_auc"] = MetricValue("roc_auc", float(auc))
    return out


def reference_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    task: str,
    *,
    proba: Mapping[str, ArrayLike] | None = None,
) -> dict[str, float]:
    """The defined metrics of the reference data, for the profile.

    With ``proba`` (class label to probability column) the profile also records
    ``roc_auc`` and ``log_loss``; rows with a null probability are left out of those.
    """
    mask = _not_null(y_true) & _not_null(y_pred)
    if proba and task == "classification":
        for col in proba.values():
            mask &= ~np.isnan(np.asarray(col, dtype=np.float64))
    yt = np.asarray(y_true, dtype=object)[mask]
    yp = np.asarray(y_pred, dtype=object)[mask]
    kept = {c: np.asarray(v, dtype=np.float64)[mask] for c, v in (proba or {}).items()} or None
    computed = compute_metrics(yt, yp, task, proba=kept if task == "classification" else None)
    return {k: v.value for k, v in computed.items() if v.value is not None}


def _not_null(a: ArrayLike) -> NDArray[np.bool_]:
    arr = np.asarray(a, dtype=object)
    return np.array(
        [not (v is None or (isinstance(v, float) and math.isnan(v))) for v in arr], dtype=bool
    )


def relative_change(value: float, baseline: float) -> float | None:
    """``(value - baseline) / |baseline|``; None when the baseline is 0."""
    if baseline == 0:
        return None
    return (value - baseline) / abs(baseline)


def is_degraded(metric: str, change: float | None, max_degradation: float) -> bool:
    """Whether a relative change is worse than ``max_degradation`` for this metric."""
    if change is None:
        return False
    return change > max_degradation if metric in LOWER_IS_BETTER else change < -max_degradation


def version_metric(
    store: str, model: str, metric: str, *, version: int | None = None
) -> float | None:
    """``metrics.challenger.<metric>`` from a version's ``metadata.json``.

    ``version`` is the one that served the window (the ``model_version`` column of
    the prediction logs); without it, or when that version has no metadata, the
    highest version that has.
    """
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(contract.versions_dir(store, model))
        if not fs.isdir(path):
            return None
        versions = sorted(
            (
                int(p.rstrip("/").rsplit("/", 1)[-1])
                for p in fs.ls(path, detail=False)
                if p.rstrip("/").rsplit("/", 1)[-1].isdigit()
            ),
            reverse=True,
        )
        if version is not None and version in versions:
            versions = [version]
        for v in versions:
            meta = f"{path}/{v}/{contract.METADATA_FILE}"
            if fs.exists(meta):
                with fs.open(meta, "r") as fh:
                    doc = json.load(fh)
                value = doc.get("metrics", {}).get("challenger", {}).get(metric)
                return None if value is None else float(value)
    except (OSError, ValueError, json.JSONDecodeError, AttributeError):
        return None
    return None


def evaluate(
    metrics: Mapping[str, MetricValue],
    metric: str,
    *,
    baseline: float | None,
    max_degradation: float = DEFAULT_MAX_DEGRADATION,
    labeled_rows: int,
    min_labeled_rows: int = DEFAULT_MIN_LABELED_ROWS,
    baseline_source: str | None = None,
) -> MetricEntry:
    """The ``metric`` entry of the check result: value, baseline, change, degraded.

    ``degraded`` is None when the value is undefined, or defined without a baseline
    (``undefinedReason`` is then :data:`REASON_NO_BASELINE`): nothing to judge against.

    Returns
    -------
    dict with keys name, value, baseline, baselineSource, relativeChange, degraded,
    undefinedReason
    """
    if metric not in metrics:
        raise ValueError(
            f"The 'metric' parameter must be one of {sorted(metrics)}. Got {metric!r} instead."
        )
    mv = metrics[metric]
    reason = mv.undefined_reason
    value = mv.value
    if labeled_rows < min_labeled_rows:
        value, reason = (
            None,
            (f"only {labeled_rows} labelled rows in this window; need at least {min_labeled_rows}"),
        )
    change = (
        relative_change(value, baseline) if value is not None and baseline is not None else None
    )
    if value is not None and baseline is None:
        reason = REASON_NO_BASELINE
    return {
        "name": metric,
        "value": value,
        "baseline": baseline,
        "baselineSource": baseline_source if baseline is not None else None,
        "relativeChange": change,
        "degraded": None
        if value is None or baseline is None
        else is_degraded(metric, change, max_degradation),
        "undefinedReason": reason,
    }
