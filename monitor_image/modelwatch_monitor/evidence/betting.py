"""A confidence sequence for the mean of bounded values: predictable plug-in empirical Bernstein.

Waudby-Smith, I. and Ramdas, A. (2024), "Estimating means of bounded random variables by
betting", *Journal of the Royal Statistical Society Series B* 86(1), 1-27
(arXiv:2010.09686), Section 3, the predictable plug-in empirical-Bernstein (PrPl-EB)
confidence sequence. For values ``X_i`` in ``[0, 1]`` with conditional mean ``mu``::

    mu_t      = (1/2 + sum_{i<=t} X_i) / (t + 1)
    s2_t      = (1/4 + sum_{i<=t} (X_i - mu_i)^2) / (t + 1)
    lambda_t  = min(sqrt(2 log(2/alpha) / (s2_{t-1} t log(1 + t))), 1/2)
    v_t       = 4 (X_t - mu_{t-1})^2,   psi(l) = (-log(1 - l) - l) / 4
    C_t       = sum lambda_i X_i / sum lambda_i
                +- (log(2/alpha) + sum v_i psi(lambda_i)) / sum lambda_i

``P(exists t: mu not in C_t) <= alpha``: the sequence may be looked at after every row,
or every check, and stopped whenever it decides (Ville's inequality on a nonnegative
supermartingale), with no asymptotics. Its width adapts to the variance: paired rows
that mostly agree (a difference of 0) give a narrow sequence.

The state is a handful of sums, updated with each batch of new rows in arrival order;
carry it from check to check (a batch's rows in any fixed order).

>>> import numpy as np
>>> seq = BettingSequence.start(alpha=0.05, low=0.0, high=1.0)
>>> seq = seq.update(np.r_[np.ones(900), np.zeros(100)])
>>> seq.n, round(seq.mean, 3), seq.interval().lower > 0.85
(1000, 0.9, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from modelwatch_monitor.evidence.intervals import Interval

#: The largest bet (``c`` in the paper; 1/2 or 3/4 are its suggestions).
MAX_BET = 0.5


@dataclass(frozen=True)
class BettingSequence:
    """The PrPl-EB confidence sequence for the mean of values in ``[low, high]``.

    Parameters
    ----------
    alpha : float
        The error probability over all looks.
    low, high : float
        Known bounds of every value; values are rescaled to ``[0, 1]`` inside.
    n : int
        Values seen.
    total : float
        Sum of the rescaled values.
    squares : float
        ``sum (x_i - mu_i)^2``, rescaled.
    bets, weighted, penalty : float
        ``sum lambda_i``, ``sum lambda_i x_i``, ``sum v_i psi(lambda_i)``.
    """

    alpha: float
    low: float
    high: float
    n: int = 0
    total: float = 0.0
    squares: float = 0.0
    bets: float = 0.0
    weighted: float = 0.0
    penalty: float = 0.0

    @classmethod
    def start(cls, *, alpha: float, low: float, high: float) -> BettingSequence:
        """Return the sequence before any value."""
        if not 0 < alpha < 1:
            raise ValueError(f"The 'alpha' parameter must be in (0, 1). Got {alpha!r} instead.")
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(
                f"The 'low' and 'high' parameters must be finite with low < high. "
                f"Got {low!r}, {high!r} instead."
            )
        return cls(alpha=alpha, low=low, high=high)

    @property
    def mean(self) -> float:
        """The plain mean of the values seen (nan before any)."""
        if not self.n:
            return math.nan
        return self.low + (self.high - self.low) * self.total / self.n

    def _scaled(self, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        x = np.asarray(values, dtype=np.float64).ravel()
        if x.size and not (np.all(x >= self.low) and np.all(x <= self.high)):
            raise ValueError(
                f"Every value must lie in [{self.low}, {self.high}]. "
                f"Got values from {x.min()!r} to {x.max()!r} instead."
            )
        return np.clip((x - self.low) / (self.high - self.low), 0.0, 1.0)

    def _sums(self, x: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[np.float64]]:
        """The running sums after each of ``x`` (rescaled), from this state."""
        t = self.n + np.arange(1, x.size + 1, dtype=np.float64)
        total = self.total + np.cumsum(x)
        mu = (0.5 + total) / (t + 1)
        mu_before = np.concatenate([[(0.5 + self.total) / (self.n + 1)], mu[:-1]])
        squares = self.squares + np.cumsum((x - mu) ** 2)
        s2 = (0.25 + squares) / (t + 1)
        s2_before = np.concatenate([[(0.25 + self.squares) / (self.n + 1)], s2[:-1]])
        log_term = math.log(2 / self.alpha)
        lam = np.minimum(np.sqrt(2 * log_term / (s2_before * t * np.log1p(t))), MAX_BET)
        psi = (-np.log1p(-lam) - lam) / 4
        return {
            "total": total,
            "squares": squares,
            "bets": self.bets + np.cumsum(lam),
            "weighted": self.weighted + np.cumsum(lam * x),
            "penalty": self.penalty + np.cumsum(4 * (x - mu_before) ** 2 * psi),
        }

    def update(self, values: npt.ArrayLike) -> BettingSequence:
        """Return the sequence after ``values`` (1-D, in arrival order)."""
        x = self._scaled(values)
        if not x.size:
            return self
        sums = self._sums(x)
        return replace(self, n=self.n + x.size, **{k: float(v[-1]) for k, v in sums.items()})

    def _bounds(
        self, bets: npt.ArrayLike, weighted: npt.ArrayLike, penalty: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        bets_ = np.asarray(bets, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            centre = np.asarray(weighted) / bets_
            radius = (math.log(2 / self.alpha) + np.asarray(penalty)) / bets_
        lower = np.where(bets_ > 0, np.clip(centre - radius, 0.0, 1.0), 0.0)
        upper = np.where(bets_ > 0, np.clip(centre + radius, 0.0, 1.0), 1.0)
        span = self.high - self.low
        return self.low + span * lower, self.low + span * upper

    def interval(self) -> Interval:
        """The mean and the sequence's bounds now (the whole range before any value)."""
        lower, upper = self._bounds([self.bets], [self.weighted], [self.penalty])
        return Interval(self.mean, float(lower[0]), float(upper[0]))

    def along(
        self, values: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The bounds after each of ``values``, from this state: arrays ``(lower, upper)``."""
        x = self._scaled(values)
        sums = self._sums(x)
        return self._bounds(sums["bets"], sums["weighted"], sums["penalty"])


__all__ = ["MAX_BET", "BettingSequence"]
