"""Table tests for the pure policies: retrain, promotion, pinning and rollout arithmetic."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from modelwatch_monitor import contract
from modelwatch_operator import objects, policies
from modelwatch_operator.policies import format_time

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
SPEC_DOC: dict[str, Any] = {
    "model": {"name": "m", "target": "y"},
    "data": {"reference": {"uri": "/store/ref.csv"}},
    "store": {"uri": "/store"},
}
SHA = "ab" * 32


def typed_spec(doc: dict[str, Any]) -> contract.Spec:
    """The typed spec of ``doc`` (the spec parts a policy reads) over a minimal monitor."""
    return contract.Spec.model_validate({**SPEC_DOC, **doc})


def typed_status(doc: dict[str, Any]) -> contract.MonitorStatus:
    return contract.MonitorStatus.model_validate(doc)


def ago(**delta: float) -> str:
    return format_time(NOW - dt.timedelta(**delta))


def spec(**retrain: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "enabled": True,
        "triggers": {"onDrift": True, "onDegradation": True, "violations": 1, "window": 1},
        "cooldown": "1h",
        "maxPerDay": 3,
        "minImprovement": 0.01,
    }
    for key, value in retrain.items():
        if key == "triggers":
            base["triggers"] = {**base["triggers"], **value}
        else:
            base[key] = value
    return {"retrain": base, "deployment": {"name": "srv"}}


DRIFT = {"drift": True, "degraded": False}
DEGRADED = {"drift": False, "degraded": True}
CLEAN = {"drift": False, "degraded": False}
ESTIMATED = {"drift": False, "degraded": False, "estimatedDegraded": True}


def triggered(base: dict[str, Any], *, enabled: bool = True) -> dict[str, Any]:
    """``base`` with ``spec.performance.estimate.trigger`` on."""
    return {**base, "performance": {"estimate": {"enabled": enabled, "trigger": True}}}


@pytest.mark.parametrize(
    ("spec_", "status", "manual", "fire", "reason"),
    [
        (spec(enabled=False), {"history": [DRIFT]}, False, False, "RetrainDisabled"),
        (
            spec(),
            {"history": [DRIFT], "retrain": {"job": "j", "version": 2}},
            False,
            False,
            "RetrainInProgress",
        ),
        (
            spec(),
            {"history": [DRIFT], "retrain": {"job": "j", "version": 2}},
            True,
            False,
            "RetrainInProgress",
        ),
        # A version reserved but no Job yet is not a retrain in flight.
        (spec(), {"history": [DRIFT], "retrain": {"version": 2}}, False, True, "DataDrift"),
        (
            spec(),
            {"history": [DRIFT], "rollout": {"version": 2}},
            False,
            False,
            "RolloutInProgress",
        ),
        (spec(), {"history": [CLEAN]}, True, True, "ManualRequest"),
        (spec(), {"history": []}, False, False, "BelowThreshold"),
        (spec(), {"history": [CLEAN]}, False, False, "BelowThreshold"),
        (spec(), {"history": [DRIFT]}, False, True, "DataDrift"),
        (spec(), {"history": [DEGRADED]}, False, True, "PerformanceDegraded"),
        (spec(triggers={"onDrift": False}), {"history": [DRIFT]}, False, False, "BelowThreshold"),
        (
            spec(triggers={"onDegradation": False}),
            {"history": [DEGRADED]},
            False,
            False,
            "BelowThreshold",
        ),
        # M-of-N: 2 of the last 3.
        (
            spec(triggers={"violations": 2, "window": 3}),
            {"history": [DRIFT, CLEAN, CLEAN]},
            False,
            False,
            "BelowThreshold",
        ),
        (
            spec(triggers={"violations": 2, "window": 3}),
            {"history": [DRIFT, CLEAN, DRIFT]},
            False,
            True,
            "DataDrift",
        ),
        (
            spec(triggers={"violations": 2, "window": 3}),
            {"history": [DRIFT, DRIFT, CLEAN, CLEAN, DRIFT]},
            False,
            False,
            "BelowThreshold",
        ),
        (
            spec(triggers={"violations": 2, "window": 2}),
            {"history": [DRIFT, CLEAN]},
            False,
            False,
            "BelowThreshold",
        ),
        # Cooldown and the daily budget.
        (
            spec(),
            {"history": [DRIFT], "retrains": [{"startedAt": ago(minutes=30)}]},
            False,
            False,
            "CooldownActive",
        ),
        (
            spec(),
            {"history": [DRIFT], "retrains": [{"startedAt": ago(minutes=30)}]},
            True,
            True,
            "ManualRequest",
        ),
        (
            spec(),
            {"history": [DRIFT], "retrains": [{"startedAt": ago(hours=2)}]},
            False,
            True,
            "DataDrift",
        ),
        (
            spec(cooldown="10m", maxPerDay=2),
            {
                "history": [DRIFT],
                "retrains": [{"startedAt": ago(hours=5)}, {"startedAt": ago(hours=3)}],
            },
            False,
            False,
            "RetrainBudgetExhausted",
        ),
        (
            spec(cooldown="10m", maxPerDay=2),
            {
                "history": [DRIFT],
                "retrains": [{"startedAt": ago(hours=30)}, {"startedAt": ago(hours=3)}],
            },
            False,
            True,
            "DataDrift",
        ),
        (spec(maxPerDay=0), {"history": [DRIFT]}, False, False, "RetrainBudgetExhausted"),
        # An estimated degradation counts only with spec.performance.estimate.trigger.
        (spec(), {"history": [ESTIMATED]}, False, False, "BelowThreshold"),
        (triggered(spec()), {"history": [ESTIMATED]}, False, True, "EstimatedPerformanceDegraded"),
        (
            triggered(spec(), enabled=False),
            {"history": [ESTIMATED]},
            False,
            False,
            "BelowThreshold",
        ),
        (
            triggered(spec(triggers={"onDegradation": False})),
            {"history": [ESTIMATED]},
            False,
            False,
            "BelowThreshold",
        ),
        (
            triggered(spec(triggers={"violations": 2, "window": 2})),
            {"history": [ESTIMATED, DEGRADED]},
            False,
            True,
            "PerformanceDegraded",
        ),
        (
            triggered(spec(triggers={"violations": 2, "window": 3})),
            {"history": [ESTIMATED, CLEAN, CLEAN]},
            False,
            False,
            "BelowThreshold",
        ),
    ],
)
def test_should_retrain(
    spec_: dict[str, Any], status: dict[str, Any], manual: bool, fire: bool, reason: str
) -> None:
    typed = typed_spec(spec_)
    decision = policies.should_retrain(
        retrain=typed.retrain,
        estimate=typed.performance.estimate,
        status=typed_status(status),
        now=NOW,
        manual=manual,
    )
    assert (decision.fire, decision.reason) == (fire, reason), decision.message
    assert decision.message


@pytest.mark.parametrize(
    ("estimated", "violates"),
    [
        ({"degraded": True, "overridden": False}, True),
        ({"degraded": True, "overridden": True}, False),  # labels cover the window
        ({"degraded": False, "overridden": False}, False),
        ({"degraded": None, "undefinedReason": "NoBaseline"}, False),
        (None, False),
    ],
)
def test_classify_check_estimate(estimated: dict[str, Any] | None, violates: bool) -> None:
    result = contract.CheckOk.model_validate(
        {
            "reportId": "r1",
            "datasetDrift": False,
            "driftShare": 0.0,
            "nDrifted": 0,
            "nFeatures": 2,
            "metric": None,
            "estimatedMetric": None if estimated is None else {"name": "f1", **estimated},
        }
    )
    assert policies.classify_check(result).estimated_degraded is violates


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, 1),
        ({"currentVersion": 1}, 2),
        ({"currentVersion": 1, "latestVersion": 4}, 5),
        ({"versions": [{"version": 9}], "currentVersion": 2}, 10),
    ],
)
def test_allocate_version(status: dict[str, Any], expected: int) -> None:
    assert policies.allocate_version(typed_status(status)) == expected


def retrain_doc(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schema": 1,
        "kind": "retrain",
        "ok": True,
        "version": 2,
        "sha256": SHA,
        "metric": "accuracy",
        "challenger": {"score": 0.9},
        "champion": {"version": 1, "score": 0.7},
        "promote": True,
        "reason": contract.PROMOTE_CHALLENGER_BETTER,
    }
    base.update(kw)
    return base


def retrain_result(**kw: Any) -> contract.RetrainOk | contract.RetrainFailed:
    result = contract.read_result(retrain_doc(**kw))
    assert isinstance(result, contract.RetrainOk | contract.RetrainFailed)
    return result


IN_FLIGHT = {"retrain": {"version": 2, "job": "mm-retrain-2"}}


@pytest.mark.parametrize(
    ("spec_", "result", "fire", "reason"),
    [
        # The Job's own words (contract.decide_promotion) become the decision's reason.
        (spec(), retrain_result(), True, "ChallengerBetter"),
        (spec(), retrain_result(champion=None, reason="FirstVersion"), True, "FirstVersion"),
        (spec(), retrain_result(reason="ChampionUnusable"), True, "ChampionUnusable"),
        (
            spec(),
            retrain_result(ok=False, reason="NotEnoughLabels", message="12 rows"),
            False,
            "NotEnoughLabels",
        ),
        (spec(), retrain_result(version=3), False, "VersionMismatch"),
        (
            spec(),
            retrain_result(promote=False, reason="BelowMinImprovement"),
            False,
            "BelowMinImprovement",
        ),
        (
            spec(),
            retrain_result(promote=False, reason="ChallengerScoreUndefined"),
            False,
            "ChallengerScoreUndefined",
        ),
        # The operator records the Job's decision (contract.decide_promotion, with the same
        # spec); it does not recompute it with a table of its own.
        (spec(minImprovement=0.5), retrain_result(), True, "ChallengerBetter"),
        (
            spec(),
            retrain_result(
                metric="log_loss",
                challenger={"score": 0.2},
                champion={"version": 1, "score": 0.3},
                promote=False,
                reason="BelowMinImprovement",
            ),
            False,
            "BelowMinImprovement",
        ),
        ({**spec(), "pinnedVersion": 1}, retrain_result(), False, "Pinned"),
        ({"retrain": {}}, retrain_result(), False, "NoDeployment"),
    ],
)
def test_should_promote(
    spec_: dict[str, Any],
    result: contract.RetrainOk | contract.RetrainFailed,
    fire: bool,
    reason: str,
) -> None:
    decision = policies.should_promote(
        spec=typed_spec(spec_), status=typed_status(IN_FLIGHT), result=result
    )
    assert (decision.fire, decision.reason) == (fire, reason), decision.message


def test_should_promote_records_the_jobs_message() -> None:
    result = retrain_result(message="challenger v2 accuracy 0.9000 vs champion v1 0.7000")
    decision = policies.should_promote(
        spec=typed_spec(spec()), status=typed_status(IN_FLIGHT), result=result
    )
    assert decision == (True, contract.PROMOTE_CHALLENGER_BETTER, result.message)


def test_a_retrain_result_without_a_sha256_never_reaches_promotion() -> None:
    """The contract refuses it (the operator records ``InvalidResult``)."""
    with pytest.raises(contract.ContractError, match="sha256"):
        contract.read_result(retrain_doc(sha256=""))


VERSIONS = {
    "currentVersion": 2,
    "currentSha256": "s2",
    "versions": [{"version": 1, "sha256": "s1"}, {"version": 2, "sha256": "s2"}],
}


@pytest.mark.parametrize(
    ("spec_", "status", "fire", "reason"),
    [
        ({}, VERSIONS, False, "NotPinned"),
        ({"pinnedVersion": 2}, VERSIONS, False, "AlreadyServing"),
        ({"pinnedVersion": 1}, VERSIONS, True, "Pinned"),
        (
            {"pinnedVersion": 1},
            {**VERSIONS, "pin": {"version": 1, "generation": 3}},
            False,
            "AlreadyAttempted",
        ),
        (
            {"pinnedVersion": 1},
            {**VERSIONS, "pin": {"version": 1, "generation": 2}},
            True,
            "Pinned",
        ),
        ({"pinnedVersion": 1}, {**VERSIONS, "rollout": {"version": 3}}, False, "RolloutInProgress"),
        ({"pinnedVersion": 7}, VERSIONS, False, "UnknownVersion"),
    ],
)
def test_should_pin(spec_: dict[str, Any], status: dict[str, Any], fire: bool, reason: str) -> None:
    decision = policies.should_pin(
        spec=typed_spec(spec_), status=typed_status(status), generation=3
    )
    assert (decision.fire, decision.reason) == (fire, reason)


def deployment(
    *,
    generation: int = 5,
    observed: int = 5,
    replicas: int = 2,
    updated: int = 2,
    total: int = 2,
    available: int = 2,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "replicas": total,
            "availableReplicas": available,
            "conditions": conditions or [],
        },
    }


DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "srv-abc" has timed out progressing.',
    "lastUpdateTime": format_time(NOW),
}


@pytest.mark.parametrize(
    ("dep", "generation", "started", "state", "reason"),
    [
        (deployment(observed=4), 5, None, "Progressing", "WaitingForController"),
        (deployment(generation=6), 5, None, "Progressing", "WaitingForController"),
        (deployment(updated=1), 5, None, "Progressing", "UpdatingReplicas"),
        (deployment(total=3), 5, None, "Progressing", "TerminatingOldReplicas"),
        (deployment(available=1), 5, None, "Progressing", "WaitingForAvailability"),
        (deployment(), 5, None, "Complete", "RolloutComplete"),
        (
            deployment(replicas=0, updated=0, total=0, available=0),
            5,
            None,
            "Complete",
            "RolloutComplete",
        ),
        (
            deployment(updated=1, conditions=[DEADLINE]),
            5,
            None,
            "Failed",
            "ProgressDeadlineExceeded",
        ),
        (
            deployment(updated=1, conditions=[DEADLINE]),
            5,
            NOW - dt.timedelta(seconds=30),
            "Failed",
            "ProgressDeadlineExceeded",
        ),
        # A stale verdict from before this rollout (e.g. the rollback after a failure).
        (deployment(updated=1, conditions=[DEADLINE]), 5, NOW, "Progressing", "UpdatingReplicas"),
    ],
)
def test_rollout_state(
    dep: dict[str, Any], generation: int, started: dt.datetime | None, state: str, reason: str
) -> None:
    result = policies.rollout_state(objects.deployment(dep), generation=generation, started=started)
    assert (result.state, result.reason) == (state, reason)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("7d", 604800)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert policies.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1w", "-1h", "1.5h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="The duration must be"):
        policies.parse_duration(text)


def lost(version: int, hours_ago: float, generation: int = 1) -> dict[str, Any]:
    return {
        "version": version,
        "outcome": "Kept",
        "reason": contract.PROMOTE_BELOW_MIN_IMPROVEMENT,
        "startedAt": ago(hours=hours_ago + 0.1),
        "finishedAt": ago(hours=hours_ago),
        "generation": generation,
    }


WON = {
    "version": 2,
    "outcome": "Promoted",
    "reason": contract.PROMOTE_CHALLENGER_BETTER,
    "finishedAt": ago(hours=9),
}
THREE_LOST = [WON, lost(3, 6), lost(4, 4), lost(5, 2)]


@pytest.mark.parametrize(
    ("spec_", "status", "manual", "generation", "fire", "reason"),
    [
        # Three losses in a row open the circuit (the default maxConsecutiveLosses is 3).
        (spec(), {"history": [DRIFT], "retrains": THREE_LOST}, False, 1, False, "CircuitOpen"),
        # ... which a manual request bypasses,
        (spec(), {"history": [DRIFT], "retrains": THREE_LOST}, True, 1, True, "ManualRequest"),
        # ... a new spec generation closes,
        (spec(), {"history": [DRIFT], "retrains": THREE_LOST}, False, 2, True, "DataDrift"),
        # ... and a healthy check after the last loss closes (then the M-of-N rule decides).
        (
            spec(triggers={"violations": 1, "window": 2}),
            {"history": [{**CLEAN, "time": ago(hours=1)}, DRIFT], "retrains": THREE_LOST},
            False,
            1,
            True,
            "DataDrift",
        ),
        # A healthy check between losses restarts the count (one loss since).
        (
            spec(triggers={"violations": 1, "window": 2}),
            {"history": [{**CLEAN, "time": ago(hours=3)}, DRIFT], "retrains": THREE_LOST},
            False,
            1,
            True,
            "DataDrift",
        ),
        # A healthy check before the losses does not.
        (
            spec(triggers={"violations": 1, "window": 2}),
            {"history": [{**CLEAN, "time": ago(hours=7)}, DRIFT], "retrains": THREE_LOST},
            False,
            1,
            False,
            "CircuitOpen",
        ),
        # Two losses stay below three; a promotion or a failure ends a streak.
        (spec(), {"history": [DRIFT], "retrains": THREE_LOST[:-1]}, False, 1, True, "DataDrift"),
        (
            spec(),
            {
                "history": [DRIFT],
                "retrains": [
                    lost(3, 8),
                    lost(4, 6),
                    {**WON, "finishedAt": ago(hours=5)},
                    lost(6, 4),
                ],
            },
            False,
            1,
            True,
            "DataDrift",
        ),
        # A challenger without a finite score lost too.
        (
            spec(),
            {
                "history": [DRIFT],
                "retrains": [
                    *THREE_LOST[:-1],
                    {**lost(5, 2), "reason": contract.PROMOTE_SCORE_UNDEFINED},
                ],
            },
            False,
            1,
            False,
            "CircuitOpen",
        ),
        # A custom limit, and 0 disables the breaker.
        (
            spec(maxConsecutiveLosses=1),
            {"history": [DRIFT], "retrains": [lost(3, 2)]},
            False,
            1,
            False,
            "CircuitOpen",
        ),
        (
            spec(maxConsecutiveLosses=0),
            {"history": [DRIFT], "retrains": THREE_LOST},
            False,
            1,
            True,
            "DataDrift",
        ),
        # A retrain in flight still outranks the breaker.
        (
            spec(),
            {"history": [DRIFT], "retrains": THREE_LOST, "retrain": {"job": "j", "version": 6}},
            False,
            1,
            False,
            "RetrainInProgress",
        ),
    ],
)
def test_should_retrain_circuit_breaker(
    spec_: dict[str, Any],
    status: dict[str, Any],
    manual: bool,
    generation: int,
    fire: bool,
    reason: str,
) -> None:
    spec_["retrain"]["maxPerDay"] = 10  # the daily budget is not what these rows test
    typed = typed_spec(spec_)
    decision = policies.should_retrain(
        retrain=typed.retrain,
        estimate=typed.performance.estimate,
        status=typed_status(status),
        now=NOW,
        manual=manual,
        generation=generation,
    )
    assert (decision.fire, decision.reason) == (fire, reason), decision.message


def test_circuit_open_message_says_what_it_waits_for() -> None:
    decision = policies.circuit_breaker(
        retrain=typed_spec(spec()).retrain,
        status=typed_status({"retrains": THREE_LOST}),
        generation=1,
    )
    assert decision.fire and decision.reason == "CircuitOpen"
    assert "versions 3, 4, 5" in decision.message
    for waits_for in ("spec changes", "check comes back healthy", "modelwatch.io/retrain-now"):
        assert waits_for in decision.message


@pytest.mark.parametrize(
    ("history", "onset"),
    [
        ([], None),
        ([{"time": "t1", "drift": True}], None),
        ([{"time": "t1"}, {"time": "t2", "drift": True}], "t1"),
        ([{"time": "t1"}, {"time": "t2", "degraded": True}, {"time": "t3", "drift": True}], "t1"),
        ([{"time": "t1", "drift": True}, {"time": "t2"}, {"time": "t3", "drift": True}], "t2"),
        ([{"time": "t1"}, {"time": "t2", "estimatedDegraded": True}], "t1"),
        ([{"time": "t1"}, {"time": "t2"}], "t2"),
    ],
)
def test_drift_onset(history: list[dict[str, Any]], onset: str | None) -> None:
    assert policies.drift_onset(typed_status({"history": history}).history) == onset


def test_a_deadline_cannot_pass_before_the_deadline_has_passed() -> None:
    """The controller may mark a rollout timed out at once when the previous Progressing
    condition is older than a short progressDeadlineSeconds: not a failure yet."""
    started = dt.datetime(2026, 11, 29, 14, 44, 30, tzinfo=dt.UTC)
    dep = {
        "metadata": {"generation": 3},
        "spec": {"replicas": 1, "progressDeadlineSeconds": 30},
        "status": {
            "observedGeneration": 3,
            "updatedReplicas": 0,
            "conditions": [
                {
                    "type": "Progressing",
                    "reason": "ProgressDeadlineExceeded",
                    "lastUpdateTime": "2026-11-29T14:44:31Z",
                    "message": 'ReplicaSet "server-5dc5756d6f" has timed out progressing.',
                }
            ],
        },
    }
    early = policies.rollout_state(
        objects.deployment(dep),
        generation=3,
        started=started,
        now=started + dt.timedelta(seconds=5),
    )
    assert early.state == policies.PROGRESSING
    late = policies.rollout_state(
        objects.deployment(dep),
        generation=3,
        started=started,
        now=started + dt.timedelta(seconds=31),
    )
    assert late.state == policies.FAILED and late.reason == "ProgressDeadlineExceeded"
