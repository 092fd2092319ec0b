"""Wasserstein-1 distance normalised by the reference standard deviation."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from modelwatch_monitor.check.drift._base import Distribution, DriftResult, as_distribution


def wasserstein_distance(reference: Distribution, current: Distribution) -> float:
    """``W1 = integral |F_ref(x) - F_cur(x)| dx`` between two step CDFs.

    Equal to ``scipy.stats.wasserstein_distance`` on raw samples.
    """
    u = np.union1d(reference.support, current.support)
    if u.shape[0] < 2:
        return 0.0
    diff = np.abs(reference.at(u[:-1]) - current.at(u[:-1]))
    return float(np.sum(diff * np.diff(u)))


def wasserstein(
    reference: Distribution | ArrayLike, current: Distribution | ArrayLike
) -> DriftResult:
    """Normalised Wasserstein distance ``W1 / std(reference)``.

    A value of 0.1 means the current data is, on average, moved by a tenth of a
    reference standard deviation (Evidently's default threshold). When the
    reference is constant the raw W1 is returned.
    """
    ref = as_distribution(reference)
    cur = as_distribution(current)
    w = wasserstein_distance(ref, cur)
    value = w / ref.std if ref.std > 0 else w
    return DriftResult(value, None, value)
