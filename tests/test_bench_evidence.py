"""The live decision stays valid when looked at after every check (a small simulation).

The figures of record come from ``python -m bench evidence`` (1,000 runs a scenario); this
runs a few hundred with a fixed seed and asserts the guarantee, not a timing.
"""

from __future__ import annotations

import pytest
from bench import bench_evidence as be


@pytest.mark.parametrize(
    "scenario",
    [
        be.Scenario(paired=True, delta=0.0),
        be.Scenario(paired=False, delta=0.0),
        be.Scenario(paired=False, delta=0.0, weight=0.1),
    ],
    ids=["paired", "unpaired", "unpaired-10%"],
)
def test_no_true_difference_is_rarely_promoted_despite_peeking(scenario: be.Scenario) -> None:
    figures = be.simulate(scenario, runs=300, seed=7, periods=60, period_rows=100)
    assert figures["promoted"] <= be.ALPHA
    assert figures["promoted"] + figures["aborted"] <= be.ALPHA
    # The same looks with a fixed-sample z-test: peeking breaks it, so the check has teeth.
    assert figures["naive_promoted"] > be.ALPHA


def test_a_true_gain_is_promoted_and_a_loss_aborted() -> None:
    better = be.simulate(be.Scenario(paired=True, delta=0.03), runs=50, seed=8)
    assert better["promoted"] == 1.0
    worse = be.simulate(be.Scenario(paired=True, delta=-0.05), runs=50, seed=9)
    assert worse["aborted"] == 1.0
    assert worse["rows_to_abort"]["median"] < better["rows_to_promote"]["median"]
