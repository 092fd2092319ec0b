"""Jensen-Shannon distance (base 2, in [0, 1])."""

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
from modelwatch_monitor.check.drift.psi import quantile_bin_probabilities

N_BINS = 20


def js_distance(p: FloatArray, q: FloatArray) -> float:
    """Jensen-Shannon distance between two probability vectors, base 2.

    Equal to ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
    """
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: FloatArray, b: FloatArray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / b[nz])))

    return float(np.sqrt(max(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0)))


def jensenshannon(
    reference: Distribution | Counts | ArrayLike | Iterable[object],
    current: Distribution | Counts | ArrayLike | Iterable[object],
) -> DriftResult:
    """Jensen-Shannon distance on 20 reference-quantile bins or on the categories.

    No p-value: the verdict compares the distance to its threshold (0.1 by default).
    """
    if isinstance(reference, Counts) or isinstance(current, Counts):
        _, r, c = aligned(as_counts(reference), as_counts(current))  # type: ignore[arg-type]
        value = js_distance(r.astype(np.float64), c.astype(np.float64))
        return DriftResult(value, None, value)
    ref = as_distribution(reference)  # type: ignore[arg-type]
    cur = as_distribution(current)  # type: ignore[arg-type]
    value = js_distance(*quantile_bin_probabilities(ref, cur, N_BINS))
    return DriftResult(value, None, value)
