"""Rollout decisions: what to record, whether a rollout timed out, what to do with one in
flight. Pure functions over the typed status and Deployment; no API calls, no clock (``now``
is an argument).

A rollout is recorded in ``status.rollout`` *before* the Deployment is patched (record, then
act), with the version it replaces taken from status, never from the live Deployment: a
crash between the two leaves a rollout that the resync finishes by patching again, never a
"previous" version that is in fact the new one.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, NamedTuple

from modelwatch_monitor import contract
from modelwatch_operator import objects
from modelwatch_operator.policies import Decision, format_time, parse_time

DEFAULT_PROGRESS_DEADLINE_SECONDS: Final = 120
TIMEOUT_MARGIN_SECONDS: Final = 60

# What to do with a rollout in flight (see :func:`plan_in_flight`).
FOLLOW: Final = "Follow"
REAPPLY: Final = "Reapply"
WAIT: Final = "Wait"
FAIL: Final = "Fail"


class InFlightPlan(NamedTuple):
    """The next step for a rollout in flight, and why."""

    step: str
    reason: str
    message: str


def progress_deadline_seconds(spec: contract.Spec) -> int:
    """Return ``spec.deployment.progressDeadlineSeconds`` (its default without a Deployment)."""
    deployment = spec.deployment
    if deployment is None:
        return DEFAULT_PROGRESS_DEADLINE_SECONDS
    return deployment.progress_deadline_seconds


def record(
    status_doc: dict[str, object],
    *,
    kind: str,
    version: int,
    sha256: str,
    previous_version: int | None,
    previous_sha256: str | None,
    deployment: objects.Deployment,
    now: dt.datetime,
) -> dict[str, object]:
    """Record the rollout of ``version`` in ``status_doc`` and return it.

    ``generation`` is left out: it is the Deployment's generation *after* the patch, and is
    acknowledged once the patch landed. ``deploymentUid`` tells a recreated Deployment.
    """
    rollout: dict[str, object] = {
        "kind": kind,
        "version": int(version),
        "sha256": sha256,
        "startedAt": format_time(now),
    }
    if deployment.metadata.uid:
        rollout["deploymentUid"] = deployment.metadata.uid
    if previous_version is not None:
        rollout["previousVersion"] = int(previous_version)
    if previous_sha256:
        rollout["previousSha256"] = str(previous_sha256)
    status_doc["rollout"] = rollout
    return rollout


def acknowledge(
    rollout: contract.RolloutInFlight, patched: objects.Deployment, *, now: dt.datetime
) -> dict[str, object]:
    """Return the document of ``rollout`` with the patched Deployment's generation and uid.

    The clock restarts when the patch is the first one to land on this Deployment (never
    acknowledged before, or a recreated Deployment): the deadline counts from there.

    >>> r = contract.RolloutInFlight(version=2, started_at="2026-11-23T12:00:00Z")
    >>> d = objects.deployment({"metadata": {"uid": "u2", "generation": 4}})
    >>> t = dt.datetime(2026, 11, 23, 12, 5, tzinfo=dt.UTC)
    >>> a = acknowledge(r, d, now=t)
    >>> a["generation"], a["deploymentUid"], a["startedAt"]
    (4, 'u2', '2026-11-23T12:05:00Z')
    >>> again = contract.RolloutInFlight.model_validate(a)
    >>> d5 = objects.deployment({"metadata": {"uid": "u2", "generation": 5}})
    >>> acknowledge(again, d5, now=t)["startedAt"]
    '2026-11-23T12:05:00Z'
    """
    uid = patched.metadata.uid
    new: dict[str, object] = dict(rollout.to_doc())
    if not rollout.generation or (uid and rollout.deployment_uid != uid):
        new["startedAt"] = format_time(now)
    new["generation"] = patched.metadata.generation
    if uid:
        new["deploymentUid"] = uid
    return new


def carries_target(
    deployment: objects.Deployment, *, container: str | None, version: int, sha256: str
) -> bool:
    """True when the Deployment's pod template carries ``version`` (and ``sha256``, if any).

    >>> env = [{"name": "MODEL_VERSION", "value": "2"}, {"name": "MODEL_SHA256", "value": "ab"}]
    >>> dep = objects.deployment(
    ...     {"spec": {"template": {"spec": {"containers": [{"name": "s", "env": env}]}}}})
    >>> carries_target(dep, container="s", version=2, sha256="ab")
    True
    >>> carries_target(dep, container="s", version=3, sha256="cd")
    False
    """
    found = deployment.container(container)
    if found is None:
        return False
    live_version, live_sha = found.model_env()
    return live_version == int(version) and (not sha256 or live_sha == sha256)


def timed_out(
    rollout: contract.RolloutInFlight,
    *,
    progress_deadline_seconds: int,
    now: dt.datetime,
    margin_seconds: int = TIMEOUT_MARGIN_SECONDS,
) -> Decision:
    """Decide whether a rollout ran past its deadline without completing or failing.

    The Deployment controller reports ``ProgressDeadlineExceeded`` when pods stop making
    progress for ``progressDeadlineSeconds``; this is the backstop for when that verdict never
    arrives (the Deployment was deleted, its controller is down, or pods keep restarting
    just often enough to count as progress). Like Argo Rollouts' abort on
    ``progressDeadlineAbort``, the rollout is then given up and rolled back.

    Worked example: started 12:00:00, ``progressDeadlineSeconds`` 120, margin 60. At
    12:02:59 it is within its deadline (1 s left); from 12:03:00 on it has timed out.

    >>> r = contract.RolloutInFlight(version=2, started_at="2026-11-23T12:00:00Z")
    >>> at = lambda s: dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=s)
    >>> timed_out(r, progress_deadline_seconds=120, now=at(179)).reason
    'WithinDeadline'
    >>> timed_out(r, progress_deadline_seconds=120, now=at(180)).reason
    'RolloutTimedOut'
    """
    started = parse_time(rollout.started_at)
    version = rollout.version
    if started is None:
        return Decision(False, "NoStartTime", f"the rollout of version {version} has no start time")
    limit = int(progress_deadline_seconds) + int(margin_seconds)
    elapsed = (now - started).total_seconds()
    if elapsed < limit:
        return Decision(
            False,
            "WithinDeadline",
            f"the rollout of version {version} has {int(limit - elapsed)}s left",
        )
    return Decision(
        True,
        "RolloutTimedOut",
        f"the rollout of version {version} neither completed nor failed within "
        f"progressDeadlineSeconds {int(progress_deadline_seconds)}s + {int(margin_seconds)}s "
        f"(started {rollout.started_at})",
    )


def plan_in_flight(
    rollout: contract.RolloutInFlight,
    *,
    deployment: objects.Deployment | None,
    spec: contract.Spec,
    now: dt.datetime,
) -> InFlightPlan:
    """Decide the next step for the rollout in flight, from the Deployment as it is now.

    First match wins: the Deployment is missing (wait for it, or fail once timed out); it
    was recreated (another uid: apply the target again); its template does not carry the
    target (the patch never landed: apply it again); the patch landed but its generation
    was never recorded (apply it again, which records it); the rollout timed out (fail it);
    else follow the Deployment's own rollout status.
    """
    version = rollout.version
    name = spec.deployment.name if spec.deployment is not None else None
    deadline = progress_deadline_seconds(spec)
    timeout = timed_out(rollout, progress_deadline_seconds=deadline, now=now)
    if deployment is None:
        message = f'deployment "{name}" not found during the rollout of version {version}'
        if timeout.fire:
            return InFlightPlan(FAIL, "DeploymentNotFound", f"{message}; {timeout.message}")
        return InFlightPlan(WAIT, "DeploymentNotFound", message)
    uid = deployment.metadata.uid
    recorded = rollout.deployment_uid
    if recorded and uid and recorded != uid:
        return InFlightPlan(
            REAPPLY,
            "DeploymentRecreated",
            f'deployment "{name}" was recreated; applying version {version} again',
        )
    container = spec.deployment.container if spec.deployment is not None else None
    sha = rollout.sha256 or ""
    if not carries_target(deployment, container=container, version=version, sha256=sha):
        if timeout.fire and rollout.generation:
            return InFlightPlan(FAIL, timeout.reason, timeout.message)
        return InFlightPlan(
            REAPPLY,
            "TargetNotApplied",
            f'deployment "{name}" does not carry version {version}; applying it again',
        )
    if not rollout.generation:
        # The patch landed but was never acknowledged (a crash in between): patch again
        # (the same template, so no new rollout) and record the generation.
        return InFlightPlan(
            REAPPLY,
            "NotAcknowledged",
            f'deployment "{name}" carries version {version}; recording its generation',
        )
    if timeout.fire:
        return InFlightPlan(FAIL, timeout.reason, timeout.message)
    return InFlightPlan(FOLLOW, "InFlight", f"following the rollout of version {version}")
