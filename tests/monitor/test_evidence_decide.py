"""``evidence.decide``: one table row per branch, and the words it uses."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from modelwatch_monitor import contract
from modelwatch_monitor.evidence import (
    NO_COMPARISON,
    Bounds,
    Comparison,
    Evidence,
    Interval,
    VersionTraffic,
    decide,
)


def labeled(lower: float, upper: float, rows: int = 2000) -> Comparison:
    mid = (lower + upper) / 2
    return Comparison("accuracy", 0.80, 0.80 + mid, Interval(mid, lower, upper), rows, rows, True)


BOUNDS = Bounds(
    min_improvement=0.01,
    max_degradation=0.02,
    max_error_rate_increase=0.01,
    max_p99_latency_increase=0.5,
    min_gate_requests=100,
    max_duration_seconds=3600,
)
CALM = VersionTraffic(requests=1000, errors=1, p99_seconds=0.020)
BASE = Evidence(
    labeled=NO_COMPARISON,
    champion_traffic=CALM,
    challenger_traffic=CALM,
    rows=5000,
    elapsed_seconds=600,
    champion_version=2,
    challenger_version=3,
)

CASES = {
    # name: (evidence, bounds, action, reason)
    "no labels yet": (BASE, BOUNDS, "Continue", "AwaitingLabels"),
    "better beyond the minimum": (
        replace(BASE, labeled=labeled(0.015, 0.045)),
        BOUNDS,
        "Promote",
        "LiveChallengerBetter",
    ),
    "better, but not surely by the minimum": (
        replace(BASE, labeled=labeled(0.005, 0.045)),
        BOUNDS,
        "Continue",
        "Undecided",
    ),
    "worse beyond the degradation bound": (
        replace(BASE, labeled=labeled(-0.08, -0.03)),
        BOUNDS,
        "Abort",
        "LiveChallengerWorse",
    ),
    "worse, but not surely beyond the bound": (
        replace(BASE, labeled=labeled(-0.08, -0.01)),
        BOUNDS,
        "Continue",
        "Undecided",
    ),
    "interval holds both": (
        replace(BASE, labeled=labeled(-0.03, 0.03)),
        BOUNDS,
        "Continue",
        "Undecided",
    ),
    "estimate worse before labels": (
        replace(BASE, estimated=labeled(-0.09, -0.04)),
        BOUNDS,
        "Abort",
        "EstimatedChallengerWorse",
    ),
    "estimate better before labels never promotes": (
        replace(BASE, estimated=labeled(0.05, 0.09)),
        BOUNDS,
        "Continue",
        "AwaitingLabels",
    ),
    "estimate worse once labels are in does not decide": (
        replace(BASE, labeled=labeled(-0.03, 0.03), estimated=labeled(-0.09, -0.04)),
        BOUNDS,
        "Continue",
        "Undecided",
    ),
    "error rate above the champion's": (
        replace(BASE, challenger_traffic=VersionTraffic(1000, 30, 0.020)),
        BOUNDS,
        "Abort",
        "ErrorRateAboveChampion",
    ),
    "error rate within the bound": (
        replace(BASE, challenger_traffic=VersionTraffic(1000, 10, 0.020)),
        BOUNDS,
        "Continue",
        "AwaitingLabels",
    ),
    "errors on too few requests are no gate yet": (
        replace(BASE, challenger_traffic=VersionTraffic(50, 25, 0.020)),
        BOUNDS,
        "Continue",
        "AwaitingLabels",
    ),
    "p99 latency above the champion's": (
        replace(BASE, challenger_traffic=VersionTraffic(1000, 1, 0.031)),
        BOUNDS,
        "Abort",
        "LatencyAboveChampion",
    ),
    "p99 latency within the bound": (
        replace(BASE, challenger_traffic=VersionTraffic(1000, 1, 0.029)),
        BOUNDS,
        "Continue",
        "AwaitingLabels",
    ),
    "no latency figures, no latency gate": (
        replace(BASE, challenger_traffic=VersionTraffic(1000, 1, None)),
        BOUNDS,
        "Continue",
        "AwaitingLabels",
    ),
    "a gate wins over a labeled win": (
        replace(
            BASE,
            labeled=labeled(0.015, 0.045),
            challenger_traffic=VersionTraffic(1000, 1, 0.100),
        ),
        BOUNDS,
        "Abort",
        "LatencyAboveChampion",
    ),
    "maxDuration undecided aborts": (
        replace(BASE, labeled=labeled(-0.03, 0.03), elapsed_seconds=3600),
        BOUNDS,
        "Abort",
        "EvaluationTimedOut",
    ),
    "maxDuration without labels aborts": (
        replace(BASE, elapsed_seconds=7200),
        BOUNDS,
        "Abort",
        "EvaluationTimedOut",
    ),
    "maxDuration undecided promotes with onTimeout promote": (
        replace(BASE, labeled=labeled(-0.03, 0.03), elapsed_seconds=3600),
        replace(BOUNDS, on_timeout="promote"),
        "Promote",
        "TimedOutPromoted",
    ),
    "maxDuration with a labeled win promotes on the evidence": (
        replace(BASE, labeled=labeled(0.015, 0.045), elapsed_seconds=3600),
        BOUNDS,
        "Promote",
        "LiveChallengerBetter",
    ),
    "maxDuration with a labeled loss aborts on the evidence, onTimeout promote or not": (
        replace(BASE, labeled=labeled(-0.08, -0.03), elapsed_seconds=3600),
        replace(BOUNDS, on_timeout="promote"),
        "Abort",
        "LiveChallengerWorse",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_decide(name: str) -> None:
    evidence, bounds, action, reason = CASES[name]
    decision = decide(evidence, bounds)
    assert (decision.action, decision.reason) == (action, reason), decision.message
    assert decision.reason in contract.EVALUATION_REASONS
    assert decision.action in contract.EVALUATION_ACTIONS
    assert decision.rows == evidence.rows
    assert decision.labeled_rows == evidence.labeled.rows


def test_every_reason_is_reached_by_a_case() -> None:
    reached = {case[3] for case in CASES.values()}
    assert reached == contract.EVALUATION_REASONS


def test_the_vocabulary_lists_every_evaluation_word() -> None:
    words = {
        getattr(contract, n)
        for n in dir(contract)
        if n.startswith("EVALUATION_") and isinstance(getattr(contract, n), str)
    }
    assert words == contract.EVALUATION_REASONS
    assert set(contract.EVALUATION_ACTIONS) == {
        contract.ACTION_PROMOTE,
        contract.ACTION_ABORT,
        contract.ACTION_CONTINUE,
    }


def test_messages_carry_the_figures() -> None:
    won = decide(replace(BASE, labeled=labeled(0.015, 0.045)), BOUNDS)
    assert won.message == (
        "v3 beats v2 on live labels: accuracy 0.8300 vs 0.8000, improvement "
        "+0.0300 [+0.0150, +0.0450] at 95% over 2,000 paired rows; the minimum is +0.0100"
    )
    assert won.source == "labels"
    assert won.comparison.improvement == Interval(0.03, 0.015, 0.045)
    lost = decide(replace(BASE, challenger_traffic=VersionTraffic(1000, 30, 0.020)), BOUNDS)
    assert lost.message == (
        "v3 fails 3.00% of 1,000 requests against 0.10% for v2: more than 1.00% above"
    )
    assert lost.source == "traffic"
    est = decide(replace(BASE, estimated=labeled(-0.09, -0.04)), BOUNDS)
    assert est.source == "estimate" and est.comparison.improvement.upper == -0.04
    assert est.message.startswith("before any label, v3 is estimated worse than v2")
    waiting = decide(replace(BASE, challenger_version=None), BOUNDS)
    assert waiting.message == "the challenger scored 5,000 rows; no label has arrived yet"


def test_an_unknown_interval_never_decides() -> None:
    unknown = Comparison(
        "log_loss", 0.4, 0.3, Interval(0.1, -math.inf, math.inf), 10, 10, paired=True
    )
    decision = decide(replace(BASE, labeled=unknown), BOUNDS)
    assert (decision.action, decision.reason) == ("Continue", "Undecided")
    assert "[-inf, +inf]" in decision.message


def test_promotion_waits_for_min_labeled_rows() -> None:
    """A winning interval on fewer labeled rows than ``minLabeledRows`` goes on."""
    won = Comparison("accuracy", 0.80, 0.90, Interval(0.10, 0.05, 0.15), 150, 150, True)
    early = decide(Evidence(labeled=won, elapsed_seconds=60), Bounds(min_labeled_rows=200))
    assert (early.action, early.reason) == ("Continue", contract.EVALUATION_UNDECIDED)
    later = Comparison("accuracy", 0.80, 0.90, Interval(0.10, 0.05, 0.15), 200, 200, True)
    done = decide(Evidence(labeled=later, elapsed_seconds=60), Bounds(min_labeled_rows=200))
    assert done.action == "Promote"
