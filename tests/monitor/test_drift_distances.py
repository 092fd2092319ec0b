"""PSI, Jensen-Shannon and Wasserstein, and the registry."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon as scipy_js

from modelwatch_monitor.check.drift import (
    Counts,
    Distribution,
    available,
    get_test,
    jensenshannon,
    psi,
    wasserstein,
)
from modelwatch_monitor.check.drift.psi import quantile_bin_probabilities


def test_wasserstein_matches_scipy_normalised_by_reference_std() -> None:
    rng = np.random.default_rng(0)
    for shift in (0.0, 0.3):
        a, b = rng.normal(size=3000), rng.normal(shift, 2.0, size=2000)
        want = st.wasserstein_distance(a, b) / a.std()
        assert wasserstein(a, b).statistic == pytest.approx(want, rel=1e-10)


def test_wasserstein_of_a_mean_shift_is_the_shift_in_stds() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0, 3, size=200_000)
    assert wasserstein(a, a + 0.3).statistic == pytest.approx(0.3 / a.std(), rel=1e-9)


def test_psi_on_reference_deciles() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=100_000)
    same = psi(a, rng.normal(size=100_000)).statistic
    shifted = psi(a, rng.normal(0.5, 1.0, size=100_000)).statistic
    assert same < 0.01
    assert 0.2 < shifted < 0.35
    pr, pc = quantile_bin_probabilities(Distribution.from_sample(a), Distribution.from_sample(a))
    assert pr == pytest.approx(np.full(10, 0.1), abs=1e-4)
    assert pc == pytest.approx(pr)


def test_psi_categorical_known_value() -> None:
    ref, cur = Counts({"a": 50, "b": 50}), Counts({"a": 80, "b": 20})
    want = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi(ref, cur).statistic == pytest.approx(want)
    assert psi(ref, cur).pvalue is None


def test_jensenshannon_matches_scipy() -> None:
    ref, cur = Counts({"a": 5, "b": 3, "c": 2}), Counts({"a": 1, "b": 3, "d": 6})
    want = scipy_js([5, 3, 2, 0], [1, 3, 0, 6], base=2)
    assert jensenshannon(ref, cur).statistic == pytest.approx(want)
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=50_000), rng.normal(0.2, 1.0, size=50_000)
    pr, pc = quantile_bin_probabilities(
        Distribution.from_sample(a), Distribution.from_sample(b), 20
    )
    assert jensenshannon(a, b).statistic == pytest.approx(scipy_js(pr, pc, base=2))


def test_registry() -> None:
    assert available("numeric") == ["jensenshannon", "ks", "psi", "wasserstein"]
    assert available("categorical") == ["chi2", "jensenshannon", "psi"]
    assert get_test("ks").has_pvalue and not get_test("psi").has_pvalue
    with pytest.raises(ValueError, match="must be one of"):
        get_test("anderson")
    with pytest.raises(ValueError, match="does not accept categorical"):
        get_test("ks", "categorical")
