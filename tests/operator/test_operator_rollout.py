"""Table tests for the rollout decisions: timeout, and the next step for one in flight."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from modelwatch_monitor import contract
from modelwatch_operator import objects, rollout

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
STARTED = "2026-11-23T12:00:00Z"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("record", "deadline", "margin", "seconds", "fire", "reason"),
    [
        ({"version": 2, "startedAt": STARTED}, 120, 60, 0, False, "WithinDeadline"),
        ({"version": 2, "startedAt": STARTED}, 120, 60, 179, False, "WithinDeadline"),
        ({"version": 2, "startedAt": STARTED}, 120, 60, 180, True, "RolloutTimedOut"),
        ({"version": 2, "startedAt": STARTED}, 30, 60, 90, True, "RolloutTimedOut"),
        ({"version": 2, "startedAt": STARTED}, 30, 0, 30, True, "RolloutTimedOut"),
        ({"version": 2}, 30, 60, 10_000, False, "NoStartTime"),
    ],
)
def test_timed_out(
    record: dict[str, Any], deadline: int, margin: int, seconds: float, fire: bool, reason: str
) -> None:
    decision = rollout.timed_out(
        contract.RolloutInFlight.model_validate(record),
        progress_deadline_seconds=deadline,
        now=at(seconds),
        margin_seconds=margin,
    )
    assert (decision.fire, decision.reason) == (fire, reason), decision.message
    assert decision.message


def deployment(*, uid: str = "d1", version: str = "2", sha: str = "sha2") -> dict[str, Any]:
    env = [{"name": "MODEL_VERSION", "value": version}, {"name": "MODEL_SHA256", "value": sha}]
    return {
        "metadata": {"name": "srv", "uid": uid, "generation": 3},
        "spec": {"template": {"spec": {"containers": [{"name": "server", "env": env}]}}},
    }


SPEC = contract.parse_spec(
    {
        "model": {"name": "iris", "target": "y"},
        "store": {"uri": "/store"},
        "data": {"reference": {"uri": "/store/ref.csv"}},
        "deployment": {"name": "srv", "container": "server", "progressDeadlineSeconds": 30},
    }
)
IN_FLIGHT = {
    "kind": "Promote",
    "version": 2,
    "sha256": "sha2",
    "startedAt": STARTED,
    "deploymentUid": "d1",
    "generation": 3,
}
NOT_ACKED = {k: v for k, v in IN_FLIGHT.items() if k != "generation"}


@pytest.mark.parametrize(
    ("record", "dep", "seconds", "step", "reason"),
    [
        (IN_FLIGHT, deployment(), 10, rollout.FOLLOW, "InFlight"),
        (IN_FLIGHT, None, 10, rollout.WAIT, "DeploymentNotFound"),
        (IN_FLIGHT, None, 90, rollout.FAIL, "DeploymentNotFound"),
        (
            IN_FLIGHT,
            deployment(uid="d2", version="1", sha="sha1"),
            10,
            rollout.REAPPLY,
            "DeploymentRecreated",
        ),
        # Recreated outranks the timeout: the target goes on again, the clock restarts.
        (
            IN_FLIGHT,
            deployment(uid="d2", version="1", sha="sha1"),
            500,
            rollout.REAPPLY,
            "DeploymentRecreated",
        ),
        (NOT_ACKED, deployment(version="1", sha="sha1"), 10, rollout.REAPPLY, "TargetNotApplied"),
        # Never acknowledged: the patch never landed, whatever the time.
        (NOT_ACKED, deployment(version="1", sha="sha1"), 500, rollout.REAPPLY, "TargetNotApplied"),
        # Landed but never acknowledged (a crash in between): patch again and record it,
        # never judged on the Deployment's conditions of the previous rollout.
        (NOT_ACKED, deployment(), 10, rollout.REAPPLY, "NotAcknowledged"),
        (NOT_ACKED, deployment(), 500, rollout.REAPPLY, "NotAcknowledged"),
        # Landed once, then changed outside and past its deadline: give up, do not fight.
        (IN_FLIGHT, deployment(version="1", sha="sha1"), 10, rollout.REAPPLY, "TargetNotApplied"),
        (IN_FLIGHT, deployment(version="1", sha="sha1"), 90, rollout.FAIL, "RolloutTimedOut"),
        (IN_FLIGHT, deployment(sha="other"), 10, rollout.REAPPLY, "TargetNotApplied"),
        (IN_FLIGHT, deployment(), 89, rollout.FOLLOW, "InFlight"),
        (IN_FLIGHT, deployment(), 90, rollout.FAIL, "RolloutTimedOut"),
        # No uid recorded (a rollout from before this field): the env decides.
        (
            {**IN_FLIGHT, "deploymentUid": None},
            deployment(uid="d9"),
            10,
            rollout.FOLLOW,
            "InFlight",
        ),
    ],
)
def test_plan_in_flight(
    record: dict[str, Any], dep: dict[str, Any] | None, seconds: float, step: str, reason: str
) -> None:
    plan = rollout.plan_in_flight(
        contract.RolloutInFlight.model_validate({k: v for k, v in record.items() if v is not None}),
        deployment=objects.deployment(dep) if dep is not None else None,
        spec=SPEC,
        now=at(seconds),
    )
    assert (plan.step, plan.reason) == (step, reason), plan.message
    assert plan.message


def test_record_takes_the_previous_version_it_is_given() -> None:
    status: dict[str, Any] = {"currentVersion": 1, "currentSha256": "sha1"}
    rollout.record(
        status,
        kind="Promote",
        version=2,
        sha256="sha2",
        previous_version=1,
        previous_sha256="sha1",
        deployment=objects.deployment(deployment(version="7")),
        now=T0,
    )
    assert status["rollout"] == {
        "kind": "Promote",
        "version": 2,
        "sha256": "sha2",
        "startedAt": STARTED,
        "deploymentUid": "d1",
        "previousVersion": 1,
        "previousSha256": "sha1",
    }
