"""Chi-squared against scipy.stats.chi2_contingency, with unseen categories."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st

from modelwatch_monitor.check.drift import Counts, chi2


def _table(ref: Counts, cur: Counts) -> np.ndarray:
    cats = sorted(set(ref.counts) | set(cur.counts))
    return np.array([[ref.counts.get(c, 0) for c in cats], [cur.counts.get(c, 0) for c in cats]])


@pytest.mark.parametrize("seed", range(6))
def test_chi2_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    cats = [f"c{i}" for i in range(k)]
    p = rng.dirichlet(np.ones(k))
    q = 0.8 * p + 0.2 * rng.dirichlet(np.ones(k))
    ref = Counts.from_values(rng.choice(cats, size=int(rng.integers(50, 5000)), p=p))
    cur = Counts.from_values(rng.choice(cats, size=int(rng.integers(50, 5000)), p=q))
    got = chi2(ref, cur)
    want = st.chi2_contingency(_table(ref, cur))
    assert got.statistic == pytest.approx(want.statistic, rel=1e-12)
    assert got.pvalue == pytest.approx(want.pvalue, rel=1e-9, abs=1e-12)


def test_unseen_categories_do_not_crash_and_are_counted() -> None:
    ref = Counts({"a": 500, "b": 300, "c": 200})
    cur = Counts({"a": 480, "b": 310, "c": 150, "zzz": 60})
    got = chi2(ref, cur)
    want = st.chi2_contingency(_table(ref, cur))
    assert got.statistic == pytest.approx(want.statistic)
    assert got.pvalue == pytest.approx(want.pvalue)
    # total variation distance: half the L1 distance of the frequencies
    assert got.effect == pytest.approx(0.07, abs=1e-12)


def test_two_categories_use_yates_like_scipy() -> None:
    ref, cur = Counts({"x": 20, "y": 10}), Counts({"x": 7, "y": 21})
    want = st.chi2_contingency([[20, 10], [7, 21]])
    assert chi2(ref, cur).pvalue == pytest.approx(want.pvalue)


def test_single_category_is_no_drift() -> None:
    got = chi2(["a"] * 10, ["a"] * 30)
    assert (got.statistic, got.pvalue, got.effect) == (0.0, 1.0, 0.0)


def test_raw_values_and_nulls() -> None:
    got = chi2(["a", "b", None, "a"], ["b", "b", float("nan"), "a"])
    assert got.pvalue is not None and 0.0 <= got.pvalue <= 1.0
