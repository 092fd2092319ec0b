"""The shapes every drift test shares: distributions in, one named result out.

A numeric feature is summarised as a :class:`Distribution`, a right-continuous step
CDF on a sorted support. Built from a sample it is the exact empirical CDF; built from
a reference profile it is a quantile grid with exact CDF values at the grid points;
built from a KLL sketch it carries the sketch's rank error. Every numeric test works
on two distributions, so the same code runs on raw samples, on a profile and on a
stream.

A categorical feature is summarised as :class:`Counts`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from datasketches import kll_doubles_sketch

FeatureType = Literal["numeric", "categorical"]

FloatArray = NDArray[np.float64]


class DriftResult(NamedTuple):
    """The result of one two-sample drift test.

    Attributes
    ----------
    statistic : float
        The test statistic (KS ``D``, PSI, chi-squared, JS distance, normalised W1).
    pvalue : float or None
        The p-value, or None for distance-only tests.
    effect : float
        The effect size that the effect-size floor applies to. For KS this is ``D``
        (the largest difference between the two CDFs); for chi-squared the total
        variation distance between the category frequencies; for distance tests the
        statistic itself.
    error_bound : float
        An upper bound on ``|statistic - exact statistic|`` when the inputs are
        sketches or quantile grids; 0.0 when both inputs are exact samples.
    """

    statistic: float
    pvalue: float | None
    effect: float
    error_bound: float = 0.0


@dataclass(frozen=True)
class Distribution:
    """A one-dimensional distribution as a right-continuous step CDF.

    Attributes
    ----------
    support : ndarray of shape (k,)
        Sorted unique values.
    cdf : ndarray of shape (k,) or None
        ``F(support[i])``, non-decreasing, ``cdf[-1] == 1``. None stands for the
        empirical CDF of a sample without ties, ``(i + 1) / k``, which is never
        materialised for large samples (use :meth:`cdf_values`).
    n : int
        The number of observations behind the distribution (for p-values).
    mean, std : float
        The sample mean and standard deviation (ddof=0).
    rank_error : float
        An upper bound on ``|F(x) - F_exact(x)|`` for every ``x``; 0.0 for an exact
        empirical CDF.
    """

    support: FloatArray
    cdf: FloatArray | None
    n: int
    mean: float
    std: float
    rank_error: float = 0.0

    @classmethod
    def from_sample(cls, values: ArrayLike, *, presorted: bool = False) -> Distribution:
        """Build the exact empirical CDF of a sample; NaNs are dropped.

        Parameters
        ----------
        values : array_like of shape (n,)
        presorted : bool
            Set when ``values`` is already sorted ascending without NaN; the array
            is then kept, not copied.
        """
        x = np.asarray(values, dtype=np.float64)
        if not presorted:
            x = np.sort(x[~np.isnan(x)]) if np.isnan(x).any() else np.sort(x)
        n = int(x.shape[0])
        if n == 0:
            raise ValueError("a distribution needs at least one non-null value")
        mean, std = _mean_std(x)
        last = np.flatnonzero(x[1:] != x[:-1])
        if last.shape[0] == n - 1:  # no ties: the sample is its own support
            return cls(support=x, cdf=None, n=n, mean=mean, std=std)
        ends = np.append(last, n - 1)
        return cls(support=x[ends], cdf=(ends + 1) / n, n=n, mean=mean, std=std)

    def cdf_values(self) -> FloatArray:
        """Return ``F(support)`` as an array of shape (k,)."""
        if self.cdf is not None:
            return self.cdf
        k = self.support.shape[0]
        out: FloatArray = np.arange(1, k + 1, dtype=np.float64) / k
        return out

    def _cdf_at_index(self, i: NDArray[np.intp]) -> FloatArray:
        """``F`` just left of ``support[i]``, i.e. ``cdf[i - 1]`` with ``cdf[-1] := 0``."""
        if self.cdf is None:
            out: FloatArray = np.asarray(i, dtype=np.float64) / self.support.shape[0]
            return out
        return np.asarray(np.where(i > 0, self.cdf[np.maximum(i - 1, 0)], 0.0), dtype=np.float64)

    @classmethod
    def from_sorted_grid(
        cls,
        sorted_values: FloatArray,
        *,
        grid_size: int,
    ) -> tuple[Distribution, float]:
        """Summarise a sorted sample by at most ``grid_size + 1`` quantile points.

        The CDF values at the grid points are exact; between two grid points the
        true CDF is unknown, so KS statistics computed against this distribution are
        within the returned bound (the largest CDF mass strictly between two grid
        points) of the exact value.

        Parameters
        ----------
        sorted_values : ndarray of shape (n,)
            Sorted, without NaN.
        grid_size : int
            The number of quantile steps ``G``; the grid is ``j / G`` for ``j = 0..G``.

        Returns
        -------
        distribution : Distribution
        ks_error_bound : float
        """
        dist = cls.from_sample(sorted_values, presorted=True).compact(grid_size)
        return dist, dist.rank_error

    def compact(self, grid_size: int) -> Distribution:
        """Keep at most ``grid_size + 1`` support points: the quantiles ``j / G``.

        The CDF at the kept points stays exact; :attr:`rank_error` grows by the
        largest mass strictly between two kept points (about ``1 / G``).
        """
        k = self.support.shape[0]
        if k <= grid_size + 1:
            return self
        cdf = self.cdf_values()
        targets = np.linspace(0.0, 1.0, grid_size + 1)
        idx = np.searchsorted(cdf, targets - 1e-12, side="left")
        idx = np.unique(np.clip(np.concatenate(([0], idx, [k - 1])), 0, k - 1))
        kept = cdf[idx]
        left = np.where(idx > 0, cdf[np.maximum(idx - 1, 0)], 0.0)
        gaps = left[1:] - kept[:-1]
        bound = float(gaps.max()) if gaps.size else 0.0
        return Distribution(
            support=self.support[idx].copy(),
            cdf=kept.copy(),
            n=self.n,
            mean=self.mean,
            std=self.std,
            rank_error=self.rank_error + bound,
        )

    @classmethod
    def from_kll(
        cls, sketch: kll_doubles_sketch, *, mean: float, std: float, grid_size: int = 4096
    ) -> Distribution:
        """Summarise a ``datasketches`` KLL sketch on a quantile grid.

        The rank error is the sketch's documented single-rank normalised error
        (``get_normalized_rank_error(False)``, about 99% confidence).
        """
        ranks = np.linspace(0.0, 1.0, grid_size + 1)
        quantiles = np.asarray(sketch.get_quantiles(ranks.tolist(), True), dtype=np.float64)
        ends = [sketch.get_min_value(), sketch.get_max_value()]  # kept exactly by KLL
        support = np.unique(np.concatenate((quantiles, ends)))
        cdf = np.asarray(sketch.get_cdf(support.tolist(), True), dtype=np.float64)[:-1]
        cdf[-1] = 1.0
        return cls(
            support=support,
            cdf=cdf,
            n=int(sketch.n),
            mean=mean,
            std=std,
            rank_error=float(sketch.normalized_rank_error(False)),
        )

    def at(self, x: ArrayLike) -> FloatArray:
        """Return ``F(x)`` (right-continuous) for every ``x``."""
        i = np.searchsorted(self.support, np.asarray(x, dtype=np.float64), side="right")
        return self._cdf_at_index(i)

    def before(self, x: ArrayLike) -> FloatArray:
        """Return the left limit ``F(x-)`` for every ``x``."""
        i = np.searchsorted(self.support, np.asarray(x, dtype=np.float64), side="left")
        return self._cdf_at_index(i)

    def quantiles(self, q: ArrayLike) -> FloatArray:
        """Return the lower quantiles ``min{x : F(x) >= q}``."""
        cdf = self.cdf_values()
        i = np.searchsorted(cdf, np.asarray(q, dtype=np.float64) - 1e-12, side="left")
        i = np.clip(i, 0, self.support.shape[0] - 1)
        return np.asarray(self.support[i], dtype=np.float64)

    @property
    def min(self) -> float:
        return float(self.support[0])

    @property
    def max(self) -> float:
        return float(self.support[-1])


@dataclass(frozen=True)
class Counts:
    """Category counts of one categorical feature.

    Attributes
    ----------
    counts : mapping of str to int
        Non-null observations per category.
    """

    counts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_values(cls, values: Iterable[object]) -> Counts:
        """Count the non-null values of a sample (as strings)."""
        out: dict[str, int] = {}
        for v in values:
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            key = str(v)
            out[key] = out.get(key, 0) + 1
        return cls(out)

    @property
    def n(self) -> int:
        return int(sum(self.counts.values()))


def _mean_std(x: FloatArray) -> tuple[float, float]:
    """Mean and standard deviation (ddof=0) in two passes without temporaries."""
    n = x.shape[0]
    mean = float(x.sum()) / n
    var = float(np.square(x).sum()) / n - mean * mean  # no BLAS: its threads stall
    if var <= 1e-8 * mean * mean:  # cancellation: recompute the slow, exact way
        return mean, float(x.std())
    return mean, float(np.sqrt(var))


def aligned(ref: Counts, cur: Counts) -> tuple[list[str], NDArray[np.int64], NDArray[np.int64]]:
    """Return the union of categories and both count vectors, shape (k,) each."""
    cats = sorted(set(ref.counts) | set(cur.counts))
    r = np.array([ref.counts.get(c, 0) for c in cats], dtype=np.int64)
    c = np.array([cur.counts.get(c, 0) for c in cats], dtype=np.int64)
    return cats, r, c


def as_distribution(x: Distribution | ArrayLike) -> Distribution:
    """Accept a :class:`Distribution` or a raw numeric sample."""
    return x if isinstance(x, Distribution) else Distribution.from_sample(x)


def as_counts(x: Counts | Iterable[object]) -> Counts:
    """Accept :class:`Counts` or a raw categorical sample."""
    return x if isinstance(x, Counts) else Counts.from_values(x)


Summary = Distribution | Counts

#: A test's function: each takes the summaries (or raw values) of its feature types.
TestFunction = Callable[..., DriftResult]


@dataclass(frozen=True)
class DriftTest:
    """The descriptor of one registered drift test (Evidently's stattest shape).

    Attributes
    ----------
    name : str
        The registry name used in ``spec.drift.numericTest`` / ``categoricalTest``.
    feature_types : tuple of str
        The feature types the test accepts.
    func : callable
        ``func(reference, current) -> DriftResult``.
    has_pvalue : bool
        Whether the verdict uses the (corrected) p-value.
    effect : str
        What :attr:`DriftResult.effect` measures, for the report.
    default_threshold : float or None
        For distance tests, the statistic at or above which a feature drifts.
    """

    name: str
    feature_types: tuple[FeatureType, ...]
    func: TestFunction
    has_pvalue: bool
    effect: str
    default_threshold: float | None = None

    def __call__(self, reference: Summary, current: Summary) -> DriftResult:
        return self.func(reference, current)
