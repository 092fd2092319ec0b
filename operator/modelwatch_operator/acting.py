"""Perform the actions a decision returned, after status recorded the intent.

A failure here leaves the intent in status: the periodic resync sees a rollout whose
Deployment does not carry its target and patches again (:func:`rollout.plan_in_flight`).
One action comes before the status write instead: the claim on the serving Deployment
(:class:`~modelwatch_operator.actions.ClaimDeployment`), since status reports its outcome.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from modelwatch_operator import builders, events, kube, metrics, objects, rollout
from modelwatch_operator import status as st
from modelwatch_operator.actions import (
    Action,
    ClaimDeployment,
    Count,
    PatchDeployment,
    PostEvent,
    ShowCheck,
    ShowServingVersion,
)
from modelwatch_operator.monitors import Monitor

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """The clock of the operator: now, in UTC (tests pass their own :data:`Clock`)."""
    return dt.datetime.now(dt.UTC)


def perform(mm: Monitor, actions: Sequence[Action], *, now: Clock = utcnow) -> None:
    """Perform ``actions`` in order: Deployment claims and patches first, then Events (an
    Event says what happened only once it has), then metrics."""
    for action in actions:
        if isinstance(action, ClaimDeployment):
            claim_deployment(mm, action)
        elif isinstance(action, PatchDeployment):
            patch_deployment(mm, action, now=now)
    for action in actions:
        if isinstance(action, PostEvent):
            events.post(mm, type=action.type, reason=action.reason, message=action.message)
    show(mm.namespace, mm.name, actions)


def show(namespace: str, monitor: str, actions: Sequence[Action]) -> None:
    """Move the metrics the actions name (after the write: a decision may run twice)."""
    for action in actions:
        if isinstance(action, Count):
            metrics.count(namespace, monitor, action.counter, action.label)
        elif isinstance(action, ShowCheck):
            metrics.show_check(namespace, monitor, action.result)
        elif isinstance(action, ShowServingVersion):
            metrics.CURRENT_VERSION.labels(namespace, monitor).set(action.version)


def claim_deployment(mm: Monitor, action: ClaimDeployment) -> None:
    """Label the serving Deployment as this monitor's, conditional on the resourceVersion the
    claim was decided on (a claim meanwhile answers 409: the handler fails and retries)."""
    patch = builders.build_takeover_patch(mm)
    if action.resource_version:
        patch["metadata"]["resourceVersion"] = action.resource_version
    kube.patch_deployment(mm.namespace, action.name, patch)


def patch_deployment(mm: Monitor, action: PatchDeployment, *, now: Clock = utcnow) -> bool:
    """Patch the serving Deployment to the recorded target, then acknowledge it in status.

    Return False when the Deployment or its container is missing (the resync waits for it,
    and fails the rollout once it timed out).
    """
    namespace, name = mm.namespace, mm.name
    dep = kube.get_deployment(namespace, action.name)
    container = objects.deployment(dep).container(action.container) if dep is not None else None
    if container is None:
        return False
    try:
        patched = kube.patch_deployment(
            namespace,
            action.name,
            builders.build_rollout_patch(
                mm, container=container.name, version=action.version, sha256=action.sha256
            ),
        )
    except kube.ApiException as exc:
        if exc.status == 404:
            return False  # deleted meanwhile
        raise

    def ack(_: Monitor, s: st.Status) -> st.Status | None:
        current = st.view(s).rollout
        if current is None or current.version != action.version or current.kind != action.kind:
            return None  # another rollout meanwhile
        s["rollout"] = rollout.acknowledge(current, objects.deployment(patched), now=now())
        return s

    kube.update_status(namespace, name, ack)
    return True
