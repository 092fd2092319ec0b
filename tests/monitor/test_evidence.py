"""Confidence sequences and comparisons of ``modelwatch_monitor.evidence``."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from modelwatch_monitor.evidence import betting, comparing, deciding, intervals, mixture
from modelwatch_monitor.evidence.betting import BettingSequence
from modelwatch_monitor.evidence.comparing import Paired, Unpaired, row_values
from modelwatch_monitor.evidence.mixture import MIN_ROWS, MixtureSequence


@pytest.mark.parametrize("module", [betting, comparing, deciding, intervals, mixture])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0


# -- the betting sequence ------------------------------------------------------------


def test_betting_batches_equal_one_update_and_along_ends_at_interval() -> None:
    x = np.random.default_rng(1).uniform(-1, 1, 700)
    start = BettingSequence.start(alpha=0.05, low=-1, high=1)
    whole = start.update(x)
    parts = start.update(x[:10]).update(x[10:300]).update([]).update(x[300:])
    assert whole.n == parts.n == 700
    assert whole.interval() == pytest.approx(parts.interval())
    lower, upper = start.along(x)
    assert (lower[-1], upper[-1]) == pytest.approx(whole.interval()[1:])
    assert whole.mean == pytest.approx(x.mean())


def test_betting_starts_at_the_whole_range_and_narrows() -> None:
    start = BettingSequence.start(alpha=0.05, low=0, high=1)
    assert start.interval()[1:] == (0.0, 1.0) and math.isnan(start.mean)
    x = np.random.default_rng(2).binomial(1, 0.8, 20_000)
    lower, upper = start.along(x)
    width = upper - lower
    assert width[99] > width[999] > width[19_999]
    assert lower[-1] < 0.8 < upper[-1]
    assert width[-1] < 0.03


def test_betting_adapts_to_a_small_variance() -> None:
    """Mostly-zero paired differences give a far narrower sequence than 0/1 values."""
    rng = np.random.default_rng(3)
    diff = rng.choice([-1.0, 0.0, 1.0], p=[0.035, 0.9, 0.065], size=5000)
    coin = rng.binomial(1, 0.5, 5000) * 2.0 - 1
    narrow = BettingSequence.start(alpha=0.05, low=-1, high=1).update(diff).interval()
    wide = BettingSequence.start(alpha=0.05, low=-1, high=1).update(coin).interval()
    assert narrow.width < 0.45 * wide.width


def test_betting_covers_under_peeking() -> None:
    """Checked after every row, the mean leaves the sequence in at most alpha of runs."""
    rng = np.random.default_rng(4)
    misses = 0
    for _ in range(300):
        lower, upper = BettingSequence.start(alpha=0.1, low=0, high=1).along(
            rng.binomial(1, 0.3, 2000)
        )
        misses += bool(np.any((lower > 0.3) | (upper < 0.3)))
    assert misses / 300 <= 0.1


def test_betting_refuses_values_out_of_bounds_and_bad_parameters() -> None:
    seq = BettingSequence.start(alpha=0.05, low=0, high=1)
    with pytest.raises(ValueError, match=r"Every value must lie in \[0, 1\]"):
        seq.update([0.5, 1.5])
    with pytest.raises(ValueError, match="'alpha' parameter must be in"):
        BettingSequence.start(alpha=1.0, low=0, high=1)
    with pytest.raises(ValueError, match="low < high"):
        BettingSequence.start(alpha=0.05, low=1, high=1)


# -- the normal mixture --------------------------------------------------------------


def test_mixture_merges_batches_like_one() -> None:
    x = np.random.default_rng(5).lognormal(size=3000)
    start = MixtureSequence.start(alpha=0.05)
    whole = start.update(x)
    parts = start.update(x[:7]).update(x[7:1000]).update(x[1000:])
    assert parts.n == 3000
    assert parts.mean == pytest.approx(x.mean())
    assert parts.std == pytest.approx(x.std(ddof=1))
    assert parts.interval() == pytest.approx(whole.interval())


def test_mixture_is_the_whole_line_below_min_rows() -> None:
    seq = MixtureSequence.start(alpha=0.05).update(np.ones(MIN_ROWS - 1))
    assert seq.interval()[1:] == (-math.inf, math.inf)
    seq = seq.update(np.zeros(1))
    assert math.isfinite(seq.interval().lower)
    with pytest.raises(ValueError, match="must be finite"):
        seq.update([math.inf])


def test_mixture_is_wider_than_a_fixed_time_interval_and_covers() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(2.0, 3.0, 1000)
    iv = MixtureSequence.start(alpha=0.05).update(x).interval()
    fixed = 1.96 * x.std(ddof=1) / math.sqrt(1000)
    assert iv.width / 2 > 1.2 * fixed
    assert iv.lower < 2.0 < iv.upper


# -- per-row values and comparisons --------------------------------------------------


def test_row_values() -> None:
    assert row_values("accuracy", y_true=["a", "b"], y_pred=["a", "a"]).tolist() == [1.0, 0.0]
    assert row_values("log_loss", y_true=[1, 0], p_true=[1.0, 0.0]).tolist() == pytest.approx(
        [0.0, -math.log(comparing.EPS)]
    )
    assert row_values("mse", y_true=[1.0], y_pred=[3.0]).tolist() == [4.0]
    assert row_values("rmse", y_true=[1.0], y_pred=[3.0]).tolist() == [4.0]
    with pytest.raises(ValueError, match=r"The 'metric' parameter must be one of \["):
        row_values("roc_auc", y_true=[1], y_pred=[1])
    with pytest.raises(ValueError, match="needs 'p_true'"):
        row_values("log_loss", y_true=[1])


def _pairs(n: int, seed: int, *, both: float, only_new: float, only_old: float) -> tuple:
    """Champion and challenger correctness on the same ``n`` rows."""
    u = np.random.default_rng(seed).uniform(size=n)
    old = (u < both) | ((u >= both + only_new) & (u < both + only_new + only_old))
    new = u < both + only_new
    return old.astype(float), new.astype(float)


def test_paired_accuracy_moves_only_with_discordant_pairs() -> None:
    old, new = _pairs(4000, 7, both=0.765, only_new=0.065, only_old=0.035)
    cmp = Paired.start("accuracy", alpha=0.05).update(old, new).comparison()
    assert cmp.paired and cmp.rows == cmp.challenger_rows == 4000
    assert cmp.champion == pytest.approx(old.mean())
    assert cmp.challenger == pytest.approx(new.mean())
    assert cmp.improvement.estimate == pytest.approx(new.mean() - old.mean())
    # Concordant rows added change the estimate's scale but carry no discordance.
    same = Paired.start("accuracy", alpha=0.05).update(old, old).comparison()
    assert same.improvement.estimate == 0 and same.improvement.width < 0.02


def test_paired_is_far_tighter_than_unpaired_on_the_same_rows() -> None:
    old, new = _pairs(6000, 8, both=0.765, only_new=0.065, only_old=0.035)
    paired = Paired.start("accuracy", alpha=0.05).update(old, new).comparison()
    unpaired = Unpaired.start("accuracy", alpha=0.05).update(old, new).comparison()
    assert not unpaired.paired and unpaired.rows == 12_000
    assert paired.improvement.estimate == pytest.approx(unpaired.improvement.estimate)
    assert paired.improvement.width < 0.7 * unpaired.improvement.width


@pytest.mark.parametrize("kind", [Paired, Unpaired])
def test_a_loss_is_oriented_so_positive_is_better(kind: type[Paired] | type[Unpaired]) -> None:
    rng = np.random.default_rng(9)
    y = rng.normal(size=5000)
    old = row_values("mae", y_true=y, y_pred=y + rng.normal(scale=1.0, size=5000))
    new = row_values("mae", y_true=y, y_pred=y + rng.normal(scale=0.5, size=5000))
    cmp = kind.start("mae", alpha=0.05).update(old, new).comparison()
    assert cmp.champion > cmp.challenger
    assert cmp.improvement.lower > 0


def test_rmse_is_on_the_root_scale() -> None:
    rng = np.random.default_rng(10)
    y = rng.normal(size=4000)
    old = row_values("rmse", y_true=y, y_pred=y + rng.normal(scale=1.0, size=4000))
    new = row_values("rmse", y_true=y, y_pred=y + rng.normal(scale=0.8, size=4000))
    for kind in (Paired, Unpaired):
        cmp = kind.start("rmse", alpha=0.05).update(old, new).comparison()
        assert cmp.champion == pytest.approx(math.sqrt(old.mean()))
        assert cmp.challenger == pytest.approx(math.sqrt(new.mean()))
        gain = cmp.improvement
        assert gain.estimate == pytest.approx(cmp.champion - cmp.challenger)
        assert gain.lower < 0.2 < gain.upper and gain.lower > 0


def test_exact_unpaired_is_valid_but_wider() -> None:
    old, new = _pairs(6000, 11, both=0.765, only_new=0.065, only_old=0.035)
    fast = Unpaired.start("accuracy", alpha=0.05).update(old, new).comparison()
    exact = Unpaired.start("accuracy", alpha=0.05, exact=True).update(old, new).comparison()
    assert exact.improvement.estimate == pytest.approx(fast.improvement.estimate)
    assert exact.improvement.lower < fast.improvement.lower
    assert exact.improvement.upper > fast.improvement.upper
    assert exact.improvement.width < 2.5 * fast.improvement.width
    with pytest.raises(ValueError, match="needs bounded values; mae has none"):
        Unpaired.start("mae", alpha=0.05, exact=True)


def test_unpaired_needs_min_rows_of_each_version() -> None:
    cmp = Unpaired.start("accuracy", alpha=0.05).update(np.ones(1000), np.ones(MIN_ROWS - 1))
    assert cmp.comparison().improvement[1:] == (-math.inf, math.inf)


def test_paired_losses_stay_valid_under_peeking() -> None:
    """Heavy-tailed log losses of two equal models, looked at after every 100 rows."""
    rng = np.random.default_rng(12)

    def losses(n: int) -> np.ndarray:
        return rng.exponential(0.4, n) + rng.exponential(3.0, n) * (rng.uniform(size=n) < 0.02)

    wrong = 0
    for _ in range(200):
        cmp = Paired.start("log_loss", alpha=0.05)
        for _ in range(30):
            cmp = cmp.update(losses(100), losses(100))
            gain = cmp.comparison().improvement
            if gain.lower > 0 or gain.upper < 0:
                wrong += 1
                break
    assert wrong / 200 <= 0.05


def test_a_paired_update_needs_pairs() -> None:
    with pytest.raises(ValueError, match="as many champion as challenger values"):
        Paired.start("accuracy", alpha=0.05).update([1, 0], [1])


def test_before_any_row() -> None:
    cmp = Paired.start("log_loss", alpha=0.05).comparison()
    assert cmp.rows == 0 and math.isnan(cmp.champion)
    assert cmp.improvement[1:] == (-math.inf, math.inf)
    cmp = Unpaired.start("accuracy", alpha=0.05, exact=True).comparison()
    assert cmp.rows == 0 and cmp.improvement[1:] == (-1.0, 1.0)
    cmp = Unpaired.start("accuracy", alpha=0.05).comparison()
    assert cmp.rows == 0 and cmp.improvement[1:] == (-math.inf, math.inf)
