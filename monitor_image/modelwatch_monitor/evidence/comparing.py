"""Champion against challenger on live rows: paired (shadow) and unpaired (canary).

Each live metric is a mean over rows (:func:`row_values`): accuracy of the 0/1 correctness,
log loss of ``-log p(true class)``, MAE of ``|error|``, MSE and RMSE of ``error^2``. The
comparison is oriented so that a positive **improvement** means the challenger is better
(``challenger - champion`` for accuracy, ``champion - challenger`` for a loss).

- **Paired** (:class:`Paired`, shadow): both versions scored the same rows, so one sequence
  follows the per-row difference. For accuracy the difference is -1, 0 or +1, and only the
  discordant pairs (one version right, the other wrong) move it or widen it, as in
  McNemar's test; it is bounded, so it takes the betting sequence
  (:mod:`~modelwatch_monitor.evidence.betting`). Loss differences take the normal mixture
  (:mod:`~modelwatch_monitor.evidence.mixture`).
- **Unpaired** (:class:`Unpaired`, canary): the versions served different rows. By
  default the difference of means takes the asymptotic normal mixture over the rows of
  both; ``exact=True`` gives each version a betting sequence at ``alpha / 2`` and takes
  the difference of the two (a union bound, nonasymptotic, about four times the rows).

RMSE: the MSE difference's interval is divided by ``rmse_champion + rmse_challenger`` (the
delta method, since ``a - b = (a^2 - b^2) / (a + b)``); unpaired and exact, each version's
MSE interval maps through the square root exactly.

The states are frozen and small: update them with the rows labeled since the last check,
in a fixed order, and carry them to the next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol, Self

import numpy as np
import numpy.typing as npt

from modelwatch_monitor import contract
from modelwatch_monitor.evidence.betting import BettingSequence
from modelwatch_monitor.evidence.deciding import Comparison
from modelwatch_monitor.evidence.intervals import Interval
from modelwatch_monitor.evidence.mixture import MIN_ROWS, TARGET_ROWS, MixtureSequence, radius

#: Probabilities are clipped to ``[EPS, 1]`` before the log (scikit-learn's log_loss does
#: the same), so one confident mistake costs at most ``-log(EPS)``.
EPS = 1e-15
FloatArray = npt.NDArray[np.float64]


class MeanSequence(Protocol):
    """A confidence sequence of a mean."""

    @property
    def n(self) -> int: ...
    def update(self, values: npt.ArrayLike) -> Self: ...
    def interval(self) -> Interval: ...


def _check_metric(metric: str) -> None:
    if metric not in contract.LIVE_METRICS:
        raise ValueError(
            f"The 'metric' parameter must be one of {list(contract.LIVE_METRICS)}. "
            f"Got {metric!r} instead."
        )


def row_values(
    metric: str,
    *,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike | None = None,
    p_true: npt.ArrayLike | None = None,
) -> FloatArray:
    """Return each row's share of ``metric``: shape ``(n_rows,)``.

    ``y_pred`` (the predictions) is needed for accuracy, MAE, MSE and RMSE; ``p_true``
    (the probability given to each row's true class) for log loss.

    >>> row_values("accuracy", y_true=[1, 0, 1], y_pred=[1, 1, 1]).tolist()
    [1.0, 0.0, 1.0]
    >>> row_values("mae", y_true=[1.0, 2.0], y_pred=[0.5, 3.0]).tolist()
    [0.5, 1.0]
    """
    _check_metric(metric)
    truth = np.asarray(y_true)
    if metric == "log_loss":
        if p_true is None:
            raise ValueError("log_loss needs 'p_true', the probability of each true class.")
        return np.asarray(-np.log(np.clip(np.asarray(p_true, dtype=np.float64), EPS, 1.0)))
    if y_pred is None:
        raise ValueError(f"{metric} needs 'y_pred', the predictions.")
    pred = np.asarray(y_pred)
    if metric == "accuracy":
        return np.asarray(truth == pred, dtype=np.float64)
    error = pred.astype(np.float64) - truth.astype(np.float64)
    return np.abs(error) if metric == "mae" else error**2


def _sequence(alpha: float, bounds: tuple[float, float] | None, target_rows: int) -> MeanSequence:
    if bounds is None:
        return MixtureSequence.start(alpha=alpha, target_rows=target_rows)
    return BettingSequence.start(alpha=alpha, low=bounds[0], high=bounds[1])


def _bounds(metric: str, bounds: tuple[float, float] | None) -> tuple[float, float] | None:
    """Known bounds of one row's value: accuracy's 0/1, or the caller's."""
    return (0.0, 1.0) if bounds is None and metric == "accuracy" else bounds


def _headline(metric: str, mean: float) -> float:
    """The metric from the mean of its row values (RMSE is the root of the mean)."""
    return math.sqrt(mean) if metric == "rmse" and mean >= 0 else mean


@dataclass(frozen=True)
class Paired:
    """Both versions on the same rows: one sequence of the per-row improvement.

    Build it with :meth:`start`. ``champion_total`` and ``challenger_total`` sum each
    version's row values, for the metric of each.
    """

    metric: str
    difference: MeanSequence
    champion_total: float = 0.0
    challenger_total: float = 0.0

    @classmethod
    def start(
        cls,
        metric: str,
        *,
        alpha: float,
        bounds: tuple[float, float] | None = None,
        target_rows: int = TARGET_ROWS,
    ) -> Paired:
        """Return the comparison before any row.

        ``bounds`` are known bounds of one row's value (accuracy's are ``(0, 1)``; give
        ``(0, 1)`` for estimated accuracies too); without them the normal mixture is used.
        """
        _check_metric(metric)
        known = _bounds(metric, bounds)
        width = None if known is None else (known[0] - known[1], known[1] - known[0])
        return cls(metric, _sequence(alpha, width, target_rows))

    @property
    def rows(self) -> int:
        """Pairs seen."""
        return self.difference.n

    def update(self, champion: npt.ArrayLike, challenger: npt.ArrayLike) -> Paired:
        """Return the comparison after new pairs: each version's row values, shape ``(n,)``."""
        a = np.asarray(champion, dtype=np.float64).ravel()
        b = np.asarray(challenger, dtype=np.float64).ravel()
        if a.shape != b.shape:
            raise ValueError(
                f"Paired rows need as many champion as challenger values. "
                f"Got {a.size} and {b.size} instead."
            )
        gain = b - a if contract.greater_is_better(self.metric) else a - b
        return replace(
            self,
            difference=self.difference.update(gain),
            champion_total=self.champion_total + float(a.sum()),
            challenger_total=self.challenger_total + float(b.sum()),
        )

    def comparison(self) -> Comparison:
        """The figures now: the metric of each, the improvement and its interval, rows."""
        n = self.rows
        champion = _headline(self.metric, self.champion_total / n) if n else math.nan
        challenger = _headline(self.metric, self.challenger_total / n) if n else math.nan
        gain = self.difference.interval()
        if self.metric == "rmse" and n and champion + challenger > 0:
            scale = champion + challenger
            gain = Interval(champion - challenger, gain.lower / scale, gain.upper / scale)
        return Comparison(self.metric, champion, challenger, gain, n, n, paired=True)


def _pooled_variance(a: MixtureSequence, b: MixtureSequence) -> float:
    """The variance of both versions' rows taken together."""
    n = a.n + b.n
    mean = (a.n * a.mean + b.n * b.mean) / n
    m2 = a.m2 + b.m2 + a.n * (a.mean - mean) ** 2 + b.n * (b.mean - mean) ** 2
    return m2 / (n - 1)


def _two_sample(
    a: MixtureSequence, b: MixtureSequence, *, alpha: float, target_rows: int
) -> Interval:
    """``b - a`` with the normal-mixture boundary on the rows of both.

    The difference of means is a mean over all ``N`` rows of one influence term per row,
    of variance ``N (s_a^2 / n_a + s_b^2 / n_b)``, so the one-sample boundary applies in
    those units (Waudby-Smith et al. 2024 treat A/B tests so). Each version's variance is
    at least the pooled one: a small canary that happens to score well has a small sample
    variance too, and would otherwise be promoted on luck (a Wald interval's fault).
    """
    estimate = b.mean - a.mean
    if min(a.n, b.n) < MIN_ROWS:
        return Interval(estimate, -math.inf, math.inf)
    pooled = _pooled_variance(a, b)
    total = a.n + b.n
    scale = math.sqrt(total * (max(a.std**2, pooled) / a.n + max(b.std**2, pooled) / b.n))
    half = scale * float(radius(total, alpha=alpha, target_rows=target_rows))
    return Interval(estimate, estimate - half, estimate + half)


@dataclass(frozen=True)
class Unpaired:
    """Each version on its own rows.

    By default one asymptotic two-sample sequence (the normal mixture over the rows of
    both, at ``alpha``). With ``exact``, each version has a betting sequence at
    ``alpha / 2`` and the improvement's interval is the difference of the two (a union
    bound: nonasymptotic, and about four times the rows to decide).
    """

    metric: str
    champion: MeanSequence
    challenger: MeanSequence
    alpha: float
    exact: bool = False
    target_rows: int = TARGET_ROWS

    @classmethod
    def start(
        cls,
        metric: str,
        *,
        alpha: float,
        exact: bool = False,
        bounds: tuple[float, float] | None = None,
        target_rows: int = TARGET_ROWS,
    ) -> Unpaired:
        """Return the comparison before any row (``bounds`` as in :meth:`Paired.start`)."""
        _check_metric(metric)
        known = _bounds(metric, bounds)
        if exact and known is None:
            raise ValueError(
                f"An exact unpaired comparison needs bounded values; {metric} has none. "
                f"Give 'bounds' or exact=False."
            )
        arm_alpha, arm_bounds = (alpha / 2, known) if exact else (alpha, None)
        return cls(
            metric,
            _sequence(arm_alpha, arm_bounds, target_rows),
            _sequence(arm_alpha, arm_bounds, target_rows),
            alpha,
            exact,
            target_rows,
        )

    def update(self, champion: npt.ArrayLike, challenger: npt.ArrayLike) -> Unpaired:
        """Return the comparison after new rows of either version (any lengths)."""
        return replace(
            self,
            champion=self.champion.update(champion),
            challenger=self.challenger.update(challenger),
        )

    def _exact(self) -> tuple[float, float, Interval]:
        a, b = self.champion.interval(), self.challenger.interval()
        if self.metric == "rmse":
            a, b = (
                Interval(*(math.sqrt(max(v, 0.0)) for v in (iv.estimate, iv.lower, iv.upper)))
                if iv.estimate == iv.estimate
                else iv
                for iv in (a, b)
            )
        gain = Interval(b.estimate - a.estimate, b.lower - a.upper, b.upper - a.lower)
        return a.estimate, b.estimate, gain

    def _asymptotic(self) -> tuple[float, float, Interval]:
        a, b = self.champion, self.challenger
        assert isinstance(a, MixtureSequence) and isinstance(b, MixtureSequence)
        gain = _two_sample(a, b, alpha=self.alpha, target_rows=self.target_rows)
        old, new = _headline(self.metric, a.mean), _headline(self.metric, b.mean)
        if self.metric == "rmse" and old + new > 0:
            scale = old + new
            gain = Interval(new - old, gain.lower / scale, gain.upper / scale)
        return old, new, gain

    def comparison(self) -> Comparison:
        """The figures now: the metric of each, the improvement and its interval, rows."""
        old, new, gain = self._exact() if self.exact else self._asymptotic()
        if not contract.greater_is_better(self.metric):
            gain = Interval(-gain.estimate, -gain.upper, -gain.lower)
        rows = self.champion.n + self.challenger.n
        return Comparison(self.metric, old, new, gain, rows, self.challenger.n, paired=False)


__all__ = ["EPS", "MeanSequence", "Paired", "Unpaired", "row_values"]
