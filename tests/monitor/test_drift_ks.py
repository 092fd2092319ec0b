"""KS: statistic and p-value against scipy.stats.ks_2samp; sketch and grid bounds."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from datasketches import kll_doubles_sketch

from modelwatch_monitor.check.drift import Distribution, ks
from modelwatch_monitor.check.drift._kolmogorov import _pelz_good_cdf, kstwo_sf_large
from modelwatch_monitor.check.drift.ks import ks_pvalue, ks_statistic

CASES = [
    (100, 110, 0.0, False),
    (500, 500, 0.2, False),
    (5000, 5000, 0.05, False),
    (37, 2000, 0.3, True),  # ties
    (8000, 9999, 0.02, False),
    (20_000, 15_000, 0.05, False),  # asymptotic branch
    (12_000, 300, 0.0, True),
    (50_000, 50_000, 0.01, True),
]


@pytest.mark.parametrize(("n1", "n2", "shift", "ties"), CASES)
def test_ks_matches_scipy(n1: int, n2: int, shift: float, ties: bool) -> None:
    rng = np.random.default_rng(n1 + n2)
    a = rng.normal(size=n1)
    b = rng.normal(shift, 1.0, size=n2)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    got = ks(a, b)
    want = st.ks_2samp(a, b)
    assert got.statistic == pytest.approx(want.statistic, abs=1e-12)
    assert got.pvalue == pytest.approx(want.pvalue, abs=1e-9)
    assert got.effect == got.statistic
    assert got.error_bound == 0.0


def test_ks_is_symmetric_and_accepts_distributions() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=3000), rng.standard_t(3, size=2000)
    da, db = Distribution.from_sample(a), Distribution.from_sample(b)
    assert ks_statistic(da, db) == pytest.approx(ks_statistic(db, da), abs=1e-15)
    assert ks(da, db).statistic == pytest.approx(st.ks_2samp(a, b).statistic, abs=1e-12)


def test_ks_drops_nan() -> None:
    a = np.array([0.1, np.nan, 0.5, 0.9, 1.3])
    b = np.array([0.2, 0.4, np.nan, 2.0])
    want = st.ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)])
    assert ks(a, b).statistic == pytest.approx(want.statistic)


def test_grid_reference_is_within_its_bound() -> None:
    """A profile stores 10,001 quantiles; D then errs by at most the stored bound."""
    rng = np.random.default_rng(5)
    ref = rng.normal(size=300_000)
    for shift in (0.0, 0.01, 0.1):
        cur = rng.normal(shift, 1.0, size=200_000)
        grid, bound = Distribution.from_sorted_grid(np.sort(ref), grid_size=10_000)
        assert 0 < bound <= 1.5e-4
        got = ks(grid, cur)
        want = st.ks_2samp(ref, cur)
        assert abs(got.statistic - want.statistic) <= bound + 1e-12
        assert got.error_bound == pytest.approx(bound)


def test_kll_sketches_are_within_the_documented_rank_error() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=400_000), rng.normal(0.03, 1.0, size=300_000)
    sa, sb = kll_doubles_sketch(4000), kll_doubles_sketch(4000)
    sa.update(a)
    sb.update(b)
    da = Distribution.from_kll(sa, mean=float(a.mean()), std=float(a.std()))
    db = Distribution.from_kll(sb, mean=float(b.mean()), std=float(b.std()))
    got = ks(da, db)
    want = st.ks_2samp(a, b)
    # The bound: each sketch's rank error (about 0.0007 at k = 4000).
    assert got.error_bound == pytest.approx(
        2 * kll_doubles_sketch.get_normalized_rank_error(4000, False)
    )
    assert abs(got.statistic - want.statistic) <= got.error_bound


def test_large_n_pvalue_matches_scipy_below_the_miller_band() -> None:
    for n in (100_001.0, 500_000.0, 5e6):
        for nx2 in np.linspace(0.05, 2.19, 25):
            d = float(np.sqrt(nx2 / n))
            assert kstwo_sf_large(n, d) == pytest.approx(st.kstwo.sf(d, n), abs=1e-12)
    assert kstwo_sf_large(500_000.0, 0.5) is None
    assert kstwo_sf_large(5_000.0, 0.01) is None


def test_large_n_pvalue_in_the_miller_band_is_within_the_documented_bound() -> None:
    n = 120_000.0  # scipy's exact sum is slow for larger n
    for nx2 in (2.5, 6.0, 15.0):
        d = float(np.sqrt(nx2 / n))
        want = float(st.kstwo.sf(d, n))
        got = 1.0 - _pelz_good_cdf(n, d)
        assert abs(got - want) <= 6e-8
        if want > 1e-10:
            assert abs(got - want) <= 3e-5 * want
    assert kstwo_sf_large(n, 0.2) == 0.0


def test_pvalue_is_one_for_identical_samples() -> None:
    assert ks_pvalue(0.0, 10, 10) == 1.0
    x = np.arange(10.0)
    assert ks(x, x).pvalue == 1.0
