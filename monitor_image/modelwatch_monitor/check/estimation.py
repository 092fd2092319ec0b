"""Estimated performance before labels arrive: confidence-based estimation (CBPE).

A classifier that logs its class probabilities (``proba_<class>`` columns) says how sure
it is of each prediction. Once those probabilities are *calibrated* -- mapped to the
frequency with which such a prediction is right, learned where labels exist (the
reference) -- the expected confusion matrix of a window follows from the probabilities
alone::

    binary, calibrated P(y = positive) = p_i, predicted class known:
        E[TP] = sum(p_i, predicted positive)      E[FP] = sum(1 - p_i, predicted positive)
        E[FN] = sum(p_i, predicted negative)      E[TN] = sum(1 - p_i, predicted negative)

and so do accuracy, precision, recall and f1 (ratios of expected counts), the ROC AUC
(each row counted as a positive with weight ``p_i`` and a negative with weight
``1 - p_i``, ranked by the raw score) and the log loss (the expected loss of each row).
This is sound under covariate shift (``P(x)`` moves, ``P(y | x)`` does not); under a
concept shift the estimate is wrong by design, and the realized metric takes over once
labels cover the window.

Each estimate comes with a band: the range in which the realized metric of a window of
this size falls with probability ``level`` if the model is calibrated. Labels drawn
from the calibrated probabilities are independent Bernoulli variables (one class
against the rest), so the band is normal with the exact variance for the sums
(accuracy, precision, log loss), the delta method for the ratios (recall, f1) and
Hanley-McNeil's for the ROC AUC; multiclass macro averages take the classes as
independent. It narrows as ``1 / sqrt(rows)``.

The calibration is a per-class isotonic regression (scikit-learn), fitted on the
reference rows that carry both the target and the probability columns, and stored in
the reference profile as its breakpoints (``performance.calibration``), so checks
apply it with :func:`numpy.interp` and never unpickle anything.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelwatch_monitor import contract
from modelwatch_monitor.check.documents import (
    CalibrationDoc,
    EstimateEntry,
    MetricEntry,
    ReferencePerformance,
)
from modelwatch_monitor.check.performance import LOWER_IS_BETTER, is_degraded, relative_change
from modelwatch_monitor.store.dataio import Source

ESTIMABLE_METRICS: Final = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
DEFAULT_LEVEL: Final = 0.95
MIN_CALIBRATION_ROWS: Final = 100
_EPS: Final = 1e-15

REASON_NO_CALIBRATION: Final = "NoCalibration"
REASON_NO_PROBABILITIES: Final = "NoProbabilities"
REASON_NOT_ESTIMABLE: Final = "NotEstimable"
REASON_NO_BASELINE: Final = "NoBaseline"

Floats = NDArray[np.float64]
log = logging.getLogger(__name__)


class Estimate(NamedTuple):
    """One estimated metric: the expected value and its band at ``level``."""

    name: str
    value: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Calibration:
    """Per-class isotonic maps from a raw probability to a calibrated one.

    ``classes`` are the class labels as text, sorted. A binary model has one map, for
    ``classes[1]`` (the positive class); a multiclass model one per class, and the
    calibrated rows are renormalised to sum to one.
    """

    classes: tuple[str, ...]
    maps: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]
    rows: int

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def apply(self, proba: Floats) -> Floats:
        """Calibrate a probability matrix of shape (n, k), columns in ``classes`` order."""
        if self.binary:
            x, y = self.maps[0]
            p1 = np.interp(proba[:, 1], x, y)
            return np.column_stack([1.0 - p1, p1])
        out = np.column_stack([np.interp(proba[:, j], x, y) for j, (x, y) in enumerate(self.maps)])
        total = out.sum(axis=1, keepdims=True)
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), 1.0 / len(self.maps))

    def to_dict(self) -> CalibrationDoc:
        return {
            "method": "isotonic",
            "classes": list(self.classes),
            "rows": self.rows,
            "maps": [{"x": list(x), "y": list(y)} for x, y in self.maps],
        }

    @classmethod
    def from_dict(cls, d: CalibrationDoc) -> Calibration:
        """Read the profile's ``performance.calibration``; raise ValueError if malformed."""
        try:
            classes = tuple(str(c) for c in d["classes"])
            maps = tuple(
                (tuple(float(v) for v in m["x"]), tuple(float(v) for v in m["y"]))
                for m in d["maps"]
            )
            rows = int(d.get("rows", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the profile's performance.calibration is malformed: {exc}") from exc
        want = 1 if len(classes) == 2 else len(classes)
        if len(classes) < 2 or len(maps) != want or any(len(x) != len(y) for x, y in maps):
            raise ValueError(
                "the profile's performance.calibration is malformed: "
                f"{len(classes)} classes and {len(maps)} maps"
            )
        return cls(classes, maps, rows)


def proba_matrix(proba: Mapping[str, ArrayLike], classes: Sequence[str]) -> Floats:
    """Stack probability columns into shape (n, k) in ``classes`` order, rows summing to 1.

    A binary model may log only the positive class (``classes[1]``), or a single column.
    Raise ValueError naming the first class without a column.
    """
    if len(classes) == 2 and len(proba) == 1:
        (only,) = proba.values()
        key = next(iter(proba))
        p1 = np.asarray(only, dtype=np.float64)
        if key == classes[0]:
            p1 = 1.0 - p1
        p = np.column_stack([1.0 - p1, p1])
    else:
        missing = [c for c in classes if c not in proba]
        if missing:
            raise ValueError(
                f"no probability column for class {missing[0]!r} (expected proba_{missing[0]})"
            )
        p = np.column_stack([np.asarray(proba[c], dtype=np.float64) for c in classes])
    p = np.clip(np.nan_to_num(p, nan=0.0), 0.0, 1.0)
    total = p.sum(axis=1, keepdims=True)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])


def _classes(y_true: Sequence[str], proba: Mapping[str, ArrayLike]) -> list[str]:
    return sorted(set(y_true) | set(proba))


def fit_calibration(
    y_true: ArrayLike,
    proba: Mapping[str, ArrayLike],
    *,
    min_rows: int = MIN_CALIBRATION_ROWS,
) -> Calibration:
    """Fit isotonic maps from raw to calibrated probabilities on labelled rows.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        The labels (compared as text with the ``proba_<class>`` suffixes).
    proba : mapping of class label (as str) to array_like of shape (n,)

    Raises
    ------
    ValueError
        Fewer than ``min_rows`` rows, fewer than two classes, or a class without column.
    """
    from sklearn.isotonic import IsotonicRegression

    yt = np.asarray([str(v) for v in np.asarray(y_true, dtype=object)], dtype=object)
    if len(yt) < min_rows:
        raise ValueError(
            f"calibration needs at least {min_rows} labelled rows with probabilities; got {len(yt)}"
        )
    classes = _classes(yt.tolist(), proba)
    if len(classes) < 2:
        raise ValueError(f"calibration needs two classes or more; got {classes}")
    p = proba_matrix(proba, classes)
    targets = [1] if len(classes) == 2 else list(range(len(classes)))
    maps = []
    for j in targets:
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(p[:, j], (yt == classes[j]).astype(np.float64))
        xs = np.asarray(iso.X_thresholds_, dtype=np.float64)
        ys = np.asarray(iso.y_thresholds_, dtype=np.float64)
        maps.append((tuple(xs.round(8).tolist()), tuple(ys.round(8).tolist())))
    return Calibration(tuple(classes), tuple(maps), len(yt))


# ---------------------------------------------------------------------------
# Estimation
# ---------------------------------------------------------------------------


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def _band(name: str, value: float, sd: float, z: float, hi: float = 1.0) -> Estimate:
    lo_b, hi_b = value - z * sd, value + z * sd
    return Estimate(name, value, max(lo_b, 0.0), min(hi_b, hi))


def _weighted_auc(score: Floats, p: Floats) -> float:
    """Expected ROC AUC: each row a positive with weight ``p`` and a negative with ``1 - p``.

    Pairs of a row with itself are left out; ties count one half.
    """
    uniq, inv = np.unique(score, return_inverse=True)
    pos = np.bincount(inv, weights=p, minlength=len(uniq))
    neg = np.bincount(inv, weights=1.0 - p, minlength=len(uniq))
    below = np.cumsum(neg) - neg
    self_pairs = float(np.sum(p * (1.0 - p)))
    num = float(np.sum(pos * (below + 0.5 * neg))) - 0.5 * self_pairs
    den = float(pos.sum() * neg.sum()) - self_pairs
    return num / den if den > 0 else math.nan


def _hanley_mcneil_sd(auc: float, n_pos: float, n_neg: float) -> float:
    """Standard error of an AUC on ``n_pos`` positives and ``n_neg`` negatives."""
    if n_pos < 1 or n_neg < 1 or not math.isfinite(auc):
        return math.inf
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    return math.sqrt(max(var, 0.0))


def _log_loss(calibrated: Floats, raw: Floats, z: float) -> Estimate:
    loss = -np.log(np.clip(raw, _EPS, 1.0))
    per_row = np.sum(calibrated * loss, axis=1)
    var_row = np.sum(calibrated * loss**2, axis=1) - per_row**2
    n = len(per_row)
    value = float(per_row.mean())
    sd = math.sqrt(max(float(var_row.sum()), 0.0)) / n
    return _band("log_loss", value, sd, z, hi=math.inf)


def _one_vs_rest(
    p: Floats, predicted: NDArray[np.bool_], score: Floats
) -> dict[str, tuple[float, float]]:
    """Expected precision, recall, f1 and ROC AUC of one class against the rest, each with
    the standard deviation of its realized value.

    ``p`` is the calibrated probability of the class, ``predicted`` whether the row was
    predicted as the class, ``score`` the raw probability that ranks the rows. With
    ``A = TP`` and ``B = FN`` (independent sums of Bernoulli variables) and ``m`` the rows
    predicted as the class: precision ``A / m``, recall ``A / (A + B)``, f1
    ``2A / (m + A + B)``; the ratios by the delta method.
    """
    n = len(p)
    q = p * (1.0 - p)
    m = float(predicted.sum())
    a, b = float(p[predicted].sum()), float(p[~predicted].sum())
    var_a, var_b = float(q[predicted].sum()), float(q[~predicted].sum())
    out: dict[str, tuple[float, float]] = {}
    out["precision"] = (a / m, math.sqrt(var_a) / m) if m else (0.0, 0.0)
    d = a + b
    out["recall"] = (
        (a / d, math.sqrt(b * b * var_a + a * a * var_b) / d**2) if d > 0 else (0.0, 0.0)
    )
    d = m + a + b
    if d > 0:
        ga, gb = 2 * (m + b) / d**2, -2 * a / d**2
        out["f1"] = (2 * a / d, math.sqrt(ga * ga * var_a + gb * gb * var_b))
    else:
        out["f1"] = (0.0, 0.0)
    auc = _weighted_auc(score, p)
    out["roc_auc"] = (auc, _hanley_mcneil_sd(auc, d := float(p.sum()), n - d))
    return out


def _classification(
    calibrated: Floats, raw: Floats, predicted: NDArray[np.intp], z: float
) -> list[Estimate]:
    n, k = calibrated.shape
    correct = calibrated[np.arange(n), predicted]
    out = [
        _band(
            "accuracy",
            float(correct.mean()),
            math.sqrt(float(np.sum(correct * (1 - correct)))) / n,
            z,
        )
    ]
    if k == 2:
        per_class = [_one_vs_rest(calibrated[:, 1], predicted == 1, raw[:, 1])]
    else:
        # Macro averages; the classes taken as independent for the band.
        per_class = [_one_vs_rest(calibrated[:, c], predicted == c, raw[:, c]) for c in range(k)]
    for name in ("precision", "recall", "f1", "roc_auc"):
        values = [pc[name][0] for pc in per_class]
        sds = [pc[name][1] for pc in per_class]
        value = float(np.mean(values))
        sd = math.sqrt(sum(s * s for s in sds)) / len(sds)
        out.append(_band(name, value, sd, z))
    out.append(_log_loss(calibrated, raw, z))
    return out


def estimate_metrics(
    calibration: Calibration,
    proba: Mapping[str, ArrayLike],
    y_pred: ArrayLike | None = None,
    *,
    level: float = DEFAULT_LEVEL,
) -> dict[str, Estimate]:
    """Estimate every classification metric of a window from its probabilities alone.

    Parameters
    ----------
    calibration : Calibration
        Fitted on labelled reference rows (:func:`fit_calibration`).
    proba : mapping of class label (as str) to array_like of shape (n,)
        The window's raw ``proba_<class>`` columns.
    y_pred : array_like of shape (n,), optional
        The predicted classes; default the most probable class of each row.
    level : float
        The coverage of the band, in (0, 1).

    Returns
    -------
    dict of metric name to Estimate, for ``ESTIMABLE_METRICS``

    Raises
    ------
    ValueError
        No rows, or a class of the calibration without a probability column.
    """
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    classes = list(calibration.classes)
    raw = proba_matrix(proba, classes)
    n = raw.shape[0]
    if n == 0:
        raise ValueError("the window has no rows with probabilities")
    if y_pred is None:
        predicted = raw.argmax(axis=1)
    else:
        given = np.asarray(y_pred)
        predicted = np.full(n, -1, dtype=np.intp)
        integer = given.dtype.kind in "iub" and all(c.lstrip("-").isdigit() for c in classes)
        # Labels compare as text, like the metrics; integers without the conversion.
        keys = given if integer else given.astype(str)
        for i, c in enumerate(classes):
            predicted[keys == (int(c) if integer else c)] = i
        unknown = predicted < 0
        predicted[unknown] = raw[unknown].argmax(axis=1)
    calibrated = calibration.apply(raw)
    z = _z(level)
    return {e.name: e for e in _classification(calibrated, raw, predicted, z)}


# ---------------------------------------------------------------------------
# The check result entry
# ---------------------------------------------------------------------------


def evaluate_estimate(
    estimate: Estimate | None,
    metric: str,
    *,
    baseline: float | None,
    baseline_source: str | None,
    max_degradation: float,
    rows: int,
    level: float = DEFAULT_LEVEL,
    realized: MetricEntry | None = None,
    undefined_reason: str | None = None,
) -> EstimateEntry:
    """The ``estimatedMetric`` entry of the check result.

    ``degraded`` is True when the whole band lies beyond ``max_degradation`` from the
    baseline (the band's better end is still too bad), None without a baseline or an
    estimate. ``overridden`` is True when labels cover the window (the realized metric
    is defined): the realized metric then decides, and the estimate is shown only.

    Returns
    -------
    dict with keys name, estimated (always True), value, lower, upper, level, baseline,
    baselineSource, relativeChange, degraded, overridden, rows, undefinedReason
    """
    overridden = bool(realized and realized.get("value") is not None)
    entry: EstimateEntry = {
        "name": metric,
        "estimated": True,
        "value": None,
        "lower": None,
        "upper": None,
        "level": level,
        "baseline": baseline,
        "baselineSource": baseline_source,
        "relativeChange": None,
        "degraded": None,
        "overridden": overridden,
        "rows": rows,
        "undefinedReason": undefined_reason,
    }
    if estimate is None:
        return entry
    entry["value"], entry["lower"], entry["upper"] = estimate.value, estimate.lower, estimate.upper
    if baseline is None:
        entry["undefinedReason"] = REASON_NO_BASELINE
        return entry
    entry["relativeChange"] = relative_change(estimate.value, baseline)
    best = estimate.lower if metric in LOWER_IS_BETTER else estimate.upper
    best_change = relative_change(best, baseline)
    entry["degraded"] = (
        None if best_change is None else is_degraded(metric, best_change, max_degradation)
    )
    return entry


@dataclass(frozen=True)
class EstimateTerms:
    """What the ``estimatedMetric`` entry of a window holds besides the estimate.

    The metric, the baseline it is judged against, the allowed degradation, the band's
    level and the realized metric of the window (labels, when they cover it); both
    estimators (this module's and :mod:`modelwatch_monitor.check.loss_estimation`) make
    their entries with :meth:`entry`.
    """

    metric: str
    baseline: float | None
    baseline_source: str | None
    max_degradation: float
    realized: MetricEntry | None = None
    level: float = DEFAULT_LEVEL

    def entry(self, estimate: Estimate | None, rows: int, reason: str | None) -> EstimateEntry:
        """The entry (see :func:`evaluate_estimate`) of ``estimate`` over ``rows`` rows;
        ``reason`` says why there is no estimate."""
        return evaluate_estimate(
            estimate,
            self.metric,
            baseline=self.baseline,
            baseline_source=self.baseline_source,
            max_degradation=self.max_degradation,
            rows=rows,
            level=self.level,
            realized=self.realized,
            undefined_reason=reason,
        )


def reference_calibration(
    y_true: ArrayLike, proba: Mapping[str, ArrayLike]
) -> CalibrationDoc | None:
    """The profile's ``performance.calibration`` from labelled rows with probabilities.

    Rows whose label or any probability is null are left out. Returns None (and logs
    why) when the rows cannot calibrate: too few, one class only.
    """
    yt = np.asarray(y_true, dtype=object)
    mask = np.array([v is not None and not (isinstance(v, float) and math.isnan(v)) for v in yt])
    cols = {c: np.asarray(v, dtype=np.float64) for c, v in proba.items()}
    for col in cols.values():
        mask &= ~np.isnan(col)
    try:
        return fit_calibration(yt[mask], {c: v[mask] for c, v in cols.items()}).to_dict()
    except ValueError as exc:
        log.info("no calibration for estimated performance: %s", exc)
        return None


def estimate_window(
    source: Source,
    performance: ReferencePerformance | None,
    terms: EstimateTerms,
    *,
    prediction_column: str | None,
) -> EstimateEntry:
    """The ``estimatedMetric`` entry of one window of logged predictions.

    ``performance`` is the reference profile's ``performance`` section (its
    ``calibration``); the window's ``proba_<class>`` columns and predicted classes come
    from ``source``. An estimate that cannot be made says why in ``undefinedReason``.
    """
    metric, level, entry = terms.metric, terms.level, terms.entry
    if metric not in ESTIMABLE_METRICS:
        return entry(None, 0, f"{REASON_NOT_ESTIMABLE}: {metric} is not estimated without labels")
    doc = (performance or {}).get("calibration")
    if not doc:
        return entry(
            None,
            0,
            f"{REASON_NO_CALIBRATION}: the reference needs the target and the model's "
            "proba_<class> columns to calibrate the estimate",
        )
    calibration = Calibration.from_dict(doc)
    prefix = contract.LOG_PROBA_PREFIX
    proba_cols = [c for c in source.columns if c.startswith(prefix)]
    if not proba_cols:
        return entry(
            None,
            0,
            f"{REASON_NO_PROBABILITIES}: the current data has no proba_<class> columns",
        )
    pred = [prediction_column] if prediction_column in source.columns else []
    table = source.table([*pred, *proba_cols])
    proba = {c[len(prefix) :]: table.column(c).to_numpy(zero_copy_only=False) for c in proba_cols}
    y_pred = table.column(0).to_numpy(zero_copy_only=False) if pred else None
    rows = table.num_rows
    keep = np.ones(rows, dtype=bool)
    for col in proba.values():
        keep &= ~np.isnan(np.asarray(col, dtype=np.float64))
    if not keep.any():
        return entry(None, 0, f"{REASON_NO_PROBABILITIES}: every probability is null")
    proba = {c: np.asarray(v, dtype=np.float64)[keep] for c, v in proba.items()}
    try:
        found = estimate_metrics(
            calibration,
            proba,
            None if y_pred is None else np.asarray(y_pred, dtype=object)[keep],
            level=level,
        )
    except ValueError as exc:
        return entry(None, int(keep.sum()), f"{REASON_NO_PROBABILITIES}: {exc}")
    return entry(found[metric], int(keep.sum()), None)
