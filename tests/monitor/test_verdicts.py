"""Correction, effect-size floor and dataset verdict; false alarms, power, huge samples."""

from __future__ import annotations

import numpy as np
import pytest

from modelwatch_monitor.check.drift import Distribution, DriftResult, get_test, ks
from modelwatch_monitor.check.verdicts import DriftSettings, adjust_pvalues, decide

KS = get_test("ks")


def _check(
    ref_cols: list[np.ndarray | Distribution],
    cur_cols: list[np.ndarray],
    settings: DriftSettings | None = None,
) -> tuple[bool, set[str]]:
    results = [
        (f"f{i:02d}", "numeric", KS, ks(r, c))
        for i, (r, c) in enumerate(zip(ref_cols, cur_cols, strict=True))
    ]
    verdict = decide(results, settings or DriftSettings())
    return verdict.dataset_drift, {v.name for v in verdict.features if v.drift}


def test_adjust_pvalues_known_values() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> 0.02, 0.03, 0.06, 0.06 (monotone)
    assert adjust_pvalues(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust_pvalues(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    # BH: p * m / rank, then cumulative min from the top
    assert adjust_pvalues(p, "fdr_bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust_pvalues(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])  # old name
    assert adjust_pvalues(p, "none") == pytest.approx(p)
    assert adjust_pvalues([], "holm").shape == (0,)
    with pytest.raises(ValueError, match="'correction' parameter"):
        adjust_pvalues(p, "sidak")  # type: ignore[arg-type]


def test_settings_from_spec_defaults_and_validation() -> None:
    s = DriftSettings.from_spec({})
    assert (s.numeric_test, s.categorical_test, s.correction) == ("ks", "chi2", "holm")
    assert (s.p_value_threshold, s.min_effect_size, s.drift_share_threshold) == (0.05, 0.02, 0.5)
    s = DriftSettings.from_spec({"correction": "fdr_bh", "driftShareThreshold": 0.3})
    assert (s.correction, s.drift_share_threshold) == ("fdr_bh", 0.3)
    assert DriftSettings.from_spec({"correction": "bh"}).correction == "fdr_bh"  # old name
    with pytest.raises(ValueError, match="'pValueThreshold' parameter"):
        DriftSettings(p_value_threshold=1.5)
    with pytest.raises(ValueError, match=r"spec\.drift\.correction: must be one of"):
        DriftSettings.from_spec({"correction": "fdr"})


def test_floor_and_distance_thresholds() -> None:
    psi = get_test("psi")
    results = [
        ("big", "numeric", KS, DriftResult(0.05, 1e-30, 0.05)),
        ("tiny", "numeric", KS, DriftResult(0.01, 1e-30, 0.01)),  # significant but below floor
        ("noise", "numeric", KS, DriftResult(0.05, 0.2, 0.05)),
        ("psi-hi", "numeric", psi, DriftResult(0.25, None, 0.25)),
        ("psi-lo", "numeric", psi, DriftResult(0.15, None, 0.15)),
    ]
    v = decide(results, DriftSettings())
    assert {f.name for f in v.features if f.drift} == {"big", "psi-hi"}
    assert v.n_drifted == 2 and v.n_features == 5 and v.drift_share == pytest.approx(0.4)
    assert not v.dataset_drift
    assert v.features[0].drift  # most drifted first
    v = decide(results, DriftSettings(drift_share_threshold=0.4, statistic_threshold=0.1))
    assert v.dataset_drift and v.n_drifted == 3
    by_name = {f.name: f for f in v.features}
    assert by_name["psi-lo"].adjusted_p_value is None
    assert by_name["big"].adjusted_p_value == pytest.approx(3e-30)


@pytest.mark.slow
def test_false_alarms_on_unchanged_data() -> None:
    """50 features, n = 5,000 per side, one distribution: alarms in at most ~5% of runs."""
    rng = np.random.default_rng(2024)
    runs, features, n = 100, 50, 5000
    alarms = any_flag = 0
    for _ in range(runs):
        ref = rng.normal(size=(features, n))
        cur = rng.normal(size=(features, n))
        alarm, flagged = _check(list(ref), list(cur))
        alarms += alarm
        any_flag += bool(flagged)
    assert alarms / runs <= 0.05
    # Holm keeps even a single flagged feature at the family-wise 5% level.
    assert any_flag / runs <= 0.10


@pytest.mark.slow
def test_power_for_a_small_shift_in_three_features() -> None:
    """A 0.1 sigma mean shift in 3 of 50 features at n = 20,000: flagged in >= 95% of runs."""
    rng = np.random.default_rng(7)
    runs, features, n = 40, 50, 20_000
    hits = false_flags = 0
    for _ in range(runs):
        ref = rng.normal(size=(features, n))
        cur = rng.normal(size=(features, n))
        cur[:3] += 0.1
        _, flagged = _check(list(ref), list(cur))
        hits += {"f00", "f01", "f02"} <= flagged
        false_flags += bool(flagged - {"f00", "f01", "f02"})
    assert hits / runs >= 0.95
    # Runs with a false flag: Holm keeps their rate at <= 5% (expected <= 2 of 40).
    assert false_flags <= 5


@pytest.mark.slow
def test_huge_samples_do_not_flag_irrelevant_shifts() -> None:
    """n = 1,000,000 per side: a 0.005 sigma shift in every feature raises no alarm,
    and a 0.02 sigma shift is significant but stopped by the effect-size floor."""
    rng = np.random.default_rng(99)
    features, n = 10, 1_000_000
    refs, curs, curs_02 = [], [], []
    for _ in range(features):
        ref, _bound = Distribution.from_sorted_grid(np.sort(rng.normal(size=n)), grid_size=10_000)
        base = rng.normal(size=n)
        refs.append(ref)
        curs.append(base + 0.005)
        curs_02.append(base + 0.02)
    alarm, flagged = _check(refs, curs)
    assert not alarm and not flagged
    alarm, flagged = _check(refs, curs_02)
    assert not alarm and not flagged
    no_floor = DriftSettings(min_effect_size=0.0)
    alarm, flagged = _check(refs, curs_02, no_floor)
    assert alarm and len(flagged) == features
