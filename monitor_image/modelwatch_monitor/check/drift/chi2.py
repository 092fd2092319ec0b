"""Pearson's chi-squared test of homogeneity for categorical features."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from modelwatch_monitor.check.drift._base import Counts, DriftResult, aligned, as_counts


def chi2(reference: Counts | Iterable[object], current: Counts | Iterable[object]) -> DriftResult:
    """Chi-squared test on the 2 x k table of category counts.

    Categories seen on one side only are columns with a zero on the other side;
    the test handles them (the expected count is positive because the column sum
    is). Matches ``scipy.stats.chi2_contingency`` including Yates' correction when
    there is one degree of freedom.

    Parameters
    ----------
    reference, current : Counts or iterable of values

    Returns
    -------
    DriftResult
        ``statistic`` is chi-squared, ``effect`` the total variation distance
        ``0.5 * sum |p_ref - p_cur|`` between the category frequencies.
    """
    from scipy.special import chdtrc

    _, r, c = aligned(as_counts(reference), as_counts(current))
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    nr, nc = int(r.sum()), int(c.sum())
    if nr == 0 or nc == 0:
        raise ValueError("chi2 needs at least one non-null value on each side")
    tvd = 0.5 * float(np.abs(r / nr - c / nc).sum())
    k = r.shape[0]
    if k < 2:
        return DriftResult(0.0, 1.0, tvd)
    observed = np.vstack([r, c]).astype(np.float64)
    total = observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / total
    dof = k - 1
    if dof == 1:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(((observed - expected) ** 2 / expected).sum())
    return DriftResult(stat, float(chdtrc(dof, stat)), tvd)
