"""Population stability index on reference-quantile bins."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike

from modelwatch_monitor.check.drift._base import (
    Counts,
    Distribution,
    DriftResult,
    FloatArray,
    aligned,
    as_counts,
    as_distribution,
)

#: Proportions are floored at this value so that an empty bin gives a finite PSI.
EPSILON = 1e-4
N_BINS = 10


def quantile_bin_probabilities(
    reference: Distribution, current: Distribution, n_bins: int = N_BINS
) -> tuple[FloatArray, FloatArray]:
    """Return the mass of both distributions in the reference's quantile bins.

    The bins are ``(-inf, e_1], (e_1, e_2], ..., (e_{k-1}, inf)`` with ``e_i`` the
    reference quantiles at ``i / n_bins`` (duplicates merged).

    Returns
    -------
    p_ref, p_cur : ndarray of shape (n_edges + 1,)
    """
    edges = np.unique(reference.quantiles(np.arange(1, n_bins) / n_bins))
    fr = np.concatenate(([0.0], reference.at(edges), [1.0]))
    fc = np.concatenate(([0.0], current.at(edges), [1.0]))
    return np.diff(fr), np.diff(fc)


def psi_from_probabilities(p_ref: FloatArray, p_cur: FloatArray) -> float:
    """``sum((p_cur - p_ref) * ln(p_cur / p_ref))`` with proportions floored at EPSILON."""
    a = np.maximum(p_ref, EPSILON)
    b = np.maximum(p_cur, EPSILON)
    return float(np.sum((b - a) * np.log(b / a)))


def psi(
    reference: Distribution | Counts | ArrayLike | Iterable[object],
    current: Distribution | Counts | ArrayLike | Iterable[object],
) -> DriftResult:
    """Population stability index.

    Numeric features use 10 reference-quantile bins; categorical features use the
    union of categories. No p-value: the verdict compares PSI to its threshold
    (0.2 by default; 0.1-0.25 is the usual "moderate shift" band).
    """
    if isinstance(reference, Counts) or isinstance(current, Counts):
        _, r, c = aligned(as_counts(reference), as_counts(current))  # type: ignore[arg-type]
        value = psi_from_probabilities(r / r.sum(), c / c.sum())
        return DriftResult(value, None, value)
    ref = as_distribution(reference)  # type: ignore[arg-type]
    cur = as_distribution(current)  # type: ignore[arg-type]
    value = psi_from_probabilities(*quantile_bin_probabilities(ref, cur))
    return DriftResult(value, None, value)
