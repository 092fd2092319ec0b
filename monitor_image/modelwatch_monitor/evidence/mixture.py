"""An asymptotic confidence sequence for a mean of unbounded values: the normal mixture.

Waudby-Smith, I., Arnold, D., Wu, J. J., Ramdas, A. and Howard, S. R. (2024),
"Time-uniform central limit theory and asymptotic confidence sequences", *Annals of
Statistics* (arXiv:2103.06476), the Gaussian-mixture asymptotic confidence sequence of its
Section 2: the sample mean ``mu_t`` and standard
deviation ``s_t`` of ``t`` values give::

    C_t = mu_t +- s_t sqrt(2 (t rho^2 + 1) / (t^2 rho^2) log(sqrt(t rho^2 + 1) / alpha))

the two-sided normal-mixture boundary of Howard, Ramdas, McAuliffe and Sekhon (2021),
"Time-uniform, nonparametric, nonasymptotic confidence sequences", *Annals of Statistics*
49(2), with the variance estimated. It holds uniformly over time as ``t`` grows
(asymptotically, like a CLT interval, but for every look at once). ``rho`` is tuned so the
sequence is tightest near ``target_rows``, as both papers tune it.

Loss metrics (log loss, absolute and squared errors) have no known bound, so they use this
one; bounded values use :mod:`~modelwatch_monitor.evidence.betting`, which needs no
asymptotics. Below :data:`MIN_ROWS` values the interval is the whole line.

>>> import numpy as np
>>> seq = MixtureSequence.start(alpha=0.05).update(np.random.default_rng(0).normal(1, 1, 4000))
>>> iv = seq.interval()
>>> iv.lower < 1 < iv.upper, round(iv.upper - iv.lower, 2)
(True, 0.1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from modelwatch_monitor.evidence.intervals import Interval

#: Values before the interval is finite: the variance estimate needs a few.
MIN_ROWS = 30
#: The row count the sequence is tuned to be tightest at, by default.
TARGET_ROWS = 1000


def radius(
    n: int | npt.NDArray[np.float64], *, alpha: float, target_rows: int
) -> npt.NDArray[np.float64]:
    """The half-width, in standard deviations, after ``n`` values."""
    log_a = -2 * math.log(alpha)
    rho2 = (log_a + math.log(log_a + 1)) / target_rows
    t = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.sqrt(2 * (t * rho2 + 1) / (t**2 * rho2) * np.log(np.sqrt(t * rho2 + 1) / alpha))
    return np.where(t >= MIN_ROWS, r, np.inf)


@dataclass(frozen=True)
class MixtureSequence:
    """The asymptotic normal-mixture confidence sequence of a mean.

    Parameters
    ----------
    alpha : float
        The error probability over all looks.
    target_rows : int
        Where the sequence is tightest.
    n, mean, m2 : int, float, float
        Count, mean and sum of squared deviations of the values seen (Chan et al.'s
        parallel update merges each batch).
    """

    alpha: float
    target_rows: int = TARGET_ROWS
    n: int = 0
    mean: float = math.nan
    m2: float = 0.0

    @classmethod
    def start(cls, *, alpha: float, target_rows: int = TARGET_ROWS) -> MixtureSequence:
        """Return the sequence before any value."""
        if not 0 < alpha < 1:
            raise ValueError(f"The 'alpha' parameter must be in (0, 1). Got {alpha!r} instead.")
        if target_rows < 1:
            raise ValueError(
                f"The 'target_rows' parameter must be >= 1. Got {target_rows!r} instead."
            )
        return cls(alpha=alpha, target_rows=target_rows)

    def update(self, values: npt.ArrayLike) -> MixtureSequence:
        """Return the sequence after ``values`` (1-D)."""
        x = np.asarray(values, dtype=np.float64).ravel()
        if not x.size:
            return self
        if not np.all(np.isfinite(x)):
            raise ValueError("Every value must be finite. Got a nan or an infinity instead.")
        k, m = x.size, float(x.mean())
        m2 = float(((x - m) ** 2).sum())
        if not self.n:
            return replace(self, n=k, mean=m, m2=m2)
        n = self.n + k
        delta = m - self.mean
        return replace(
            self,
            n=n,
            mean=self.mean + delta * k / n,
            m2=self.m2 + m2 + delta**2 * self.n * k / n,
        )

    @property
    def std(self) -> float:
        """The sample standard deviation (nan below two values)."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else math.nan

    def interval(self) -> Interval:
        """The mean and the sequence's bounds now."""
        if self.n < MIN_ROWS:
            return Interval(self.mean, -math.inf, math.inf)
        half = self.std * float(radius(self.n, alpha=self.alpha, target_rows=self.target_rows))
        return Interval(self.mean, self.mean - half, self.mean + half)


__all__ = ["MIN_ROWS", "TARGET_ROWS", "MixtureSequence", "radius"]
