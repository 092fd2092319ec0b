"""Reconcile a ModelMonitor on create, update and resume: its children, the Deployment it
serves, its status, what was in flight, and the manual controls.

:func:`reconcile` runs the monitor's steps in this order (and the module follows it):

1. **children** -- ensure ConfigMap ``<mm>-config`` and CronJob ``<mm>-check``
   (:func:`children.ensure_children` reads, decides with :mod:`guards` and writes each);
2. **gather** -- read the serving Deployment, the monitor that claims it, and whether the
   store's PersistentVolumeClaim exists (:func:`gather`);
3. **decide** -- pure: take the Deployment over or say why not, and whether the store's
   claim is missing (:func:`decide_found`), then the new status (:func:`decide_status`);
4. **act** -- claim the Deployment and post what blocks the monitor *before* the status
   write (the status reports the claim); write the status, conditional on the
   resourceVersion it read; then resume a retrain or rollout in flight, run the manual
   controls and apply ``spec.pinnedVersion`` (each its own gather, decide, act).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Final, NamedTuple

from modelwatch_monitor import contract
from modelwatch_operator import (
    acting,
    builders,
    children,
    events,
    guards,
    kube,
    objects,
    reconcile_jobs,
    reconcile_rollout,
)
from modelwatch_operator import constants as c
from modelwatch_operator import status as st
from modelwatch_operator.acting import Clock, utcnow
from modelwatch_operator.actions import Action, ClaimDeployment, PostEvent, Serving
from modelwatch_operator.monitors import Monitor
from modelwatch_operator.policies import Decision

# Ready reasons of a serving Deployment the monitor cannot use; they outrank the store's.
_DEPLOYMENT_UNUSABLE: Final = frozenset(
    {"DeploymentNotFound", "ContainerNotFound", guards.DEPLOYMENT_CLAIMED}
)
# Ready reasons of a child that cannot be written.
_BLOCKING_REASONS: Final = frozenset({guards.NAME_CONFLICT, guards.IMAGE_NOT_ALLOWED})

# ---------------------------------------------------------------------------
# Gather
# ---------------------------------------------------------------------------


class Gathered(NamedTuple):
    """What the reconcile reads: the serving Deployment (None while a child is blocked:
    nothing else runs then) and whether the store's claim exists (None: none named)."""

    serving: Serving | None
    store_claim_exists: bool | None


def gather(mm: Monitor, *, blocked: Decision | None) -> Gathered:
    """Read the serving Deployment and its claimant, and the store's PersistentVolumeClaim."""
    serving = reconcile_rollout.gather_serving(mm) if blocked is None else None
    claim = _claim_name(mm)
    exists = kube.pvc_exists(mm.namespace, claim) if claim else None
    return Gathered(serving, exists)


def _claim_name(mm: Monitor) -> str | None:
    volume = mm.spec.store.volume
    return volume.claim_name if volume is not None else None


# ---------------------------------------------------------------------------
# Decide (pure)
# ---------------------------------------------------------------------------


class Takeover(NamedTuple):
    """Whether the monitor may serve through its Deployment, why, and the version (and
    sha256) the Deployment's container runs."""

    fire: bool
    reason: str
    message: str
    version: int | None = None
    sha256: str | None = None


def decide_takeover(mm: Monitor, serving: Serving) -> tuple[Takeover | None, list[Action]]:
    """Decide whether to take the serving Deployment over (label it as this monitor's) and
    read its current version; None without ``spec.deployment``."""
    deployment_spec = mm.spec.deployment
    if deployment_spec is None:
        return None, []
    dep_name, namespace = deployment_spec.name, mm.namespace
    dep = serving.view()
    if dep is None or serving.deployment is None:
        return Takeover(
            False,
            "DeploymentNotFound",
            f'spec.deployment.name: deployment "{dep_name}" not found in namespace "{namespace}"',
        ), [
            PostEvent(
                "Warning",
                "DeploymentNotFound",
                f'deployment "{dep_name}" not found in namespace "{namespace}"',
            )
        ]
    container = dep.container(deployment_spec.container)
    if container is None:
        return Takeover(
            False,
            "ContainerNotFound",
            f'spec.deployment.container: deployment "{dep_name}" has no container '
            f'"{deployment_spec.container}"',
        ), []
    claim = guards.deployment_claim(serving.deployment, monitor=mm.name, claimant=serving.claimant)
    if not claim.fire:
        return Takeover(False, claim.reason, claim.message), [
            PostEvent("Warning", claim.reason, claim.message)
        ]
    actions: list[Action] = []
    if claim.reason != guards.CLAIMED_BY_US:
        # Claim the Deployment as read: a claim meanwhile answers 409.
        actions.append(ClaimDeployment(dep_name, dep.metadata.resource_version or None))
    version, sha = container.model_env()
    return Takeover(True, "DeploymentFound", f'serving deployment "{dep_name}"', version, sha), (
        actions
    )


class Found(NamedTuple):
    """What the reconcile found before the status write, and what to do about it first."""

    takeover: Takeover | None
    missing_claim: str | None
    actions: list[Action]


def decide_found(mm: Monitor, gathered: Gathered, *, blocked: Decision | None) -> Found:
    """Decide the takeover and the store's claim; the actions post what blocks the monitor
    and claim the Deployment."""
    actions: list[Action] = []
    if blocked is not None:
        actions.append(PostEvent("Warning", blocked.reason, blocked.message))
    takeover = None
    if gathered.serving is not None:
        takeover, claim_actions = decide_takeover(mm, gathered.serving)
        actions.extend(claim_actions)
    missing_claim = missing_store_claim(mm, gathered.store_claim_exists)
    if missing_claim is not None:
        actions.append(PostEvent("Warning", "StoreClaimNotFound", missing_claim))
    return Found(takeover, missing_claim, actions)


def missing_store_claim(mm: Monitor, exists: bool | None) -> str | None:
    """Why the store's PersistentVolumeClaim is missing, or None when it exists (or none is
    named). Without this, a mistyped claim leaves every check pod Pending, silently."""
    if exists is not False:
        return None
    return (
        f'spec.store.volume.claimName: persistentvolumeclaim "{_claim_name(mm)}" not found in '
        f'namespace "{mm.namespace}"; check and retrain pods cannot start until it exists'
    )


def decide_status(
    mm: Monitor,
    s: st.Status,
    *,
    blocked: Decision | None,
    takeover: Takeover | None,
    missing_claim: str | None,
    now: dt.datetime,
) -> st.Status:
    """Record what the reconcile found: the takeover (and the version it found serving),
    the store's claim, a blocked child, and each condition's first value."""
    gen = mm.generation
    if takeover is not None:
        _record_takeover(s, takeover, generation=gen, now=now)
    ready_reason = st.reason_of(s, c.COND_READY)
    if missing_claim is not None:
        if ready_reason not in _DEPLOYMENT_UNUSABLE:
            st.set_condition(
                s,
                c.COND_READY,
                False,
                "StoreClaimNotFound",
                missing_claim,
                generation=gen,
                now=now,
            )
    elif ready_reason == "StoreClaimNotFound":
        st.set_condition(
            s,
            c.COND_READY,
            None,
            "StoreFound",
            "the store's PersistentVolumeClaim exists; the next check reports",
            generation=gen,
            now=now,
        )
    _record_blocked(s, blocked, generation=gen, now=now)
    _record_strategy(s, mm, generation=gen, now=now)
    for ctype, value, reason, message in (
        (c.COND_RETRAINING, False, "Idle", "no retrain is running"),
        (c.COND_ROLLOUT, None, "NoRollout", "the operator has not rolled out a version yet"),
        (c.COND_DATA_DRIFT, None, "AwaitingFirstCheck", "no check has run yet"),
        (c.COND_DEGRADED, None, "AwaitingFirstCheck", "no check has run yet"),
    ):
        st.ensure_condition(s, ctype, value, reason, message, generation=gen, now=now)
    return st.finalize(s, mm.spec, generation=gen, now=now)


def _record_strategy(s: st.Status, mm: Monitor, *, generation: int, now: dt.datetime) -> None:
    """Evaluating=False ``NoChallenger``. A ``shadow`` or ``canary`` strategy is accepted
    but not acted on by this operator yet: the condition says so, with what happens
    instead (a winning challenger is rolled out as with ``replace``)."""
    strategy = mm.spec.rollout.strategy
    if strategy == contract.STRATEGY_REPLACE:
        message = "spec.rollout.strategy is replace: a challenger that wins is rolled out at once"
    else:
        message = (
            f"spec.rollout.strategy {strategy} is not acted on by this operator version yet: "
            "a challenger that wins on the holdout is rolled out as with replace"
        )
    if st.view(s).challenger is None:
        st.set_condition(
            s,
            c.COND_EVALUATING,
            False,
            contract.EVALUATING_IDLE,
            message,
            generation=generation,
            now=now,
        )


def _record_takeover(
    s: st.Status, takeover: Takeover, *, generation: int, now: dt.datetime
) -> None:
    """Ready=False while the Deployment cannot be used; once it can, Unknown again, and the
    version it serves is the current one when status knows none."""
    if not takeover.fire:
        st.set_condition(
            s,
            c.COND_READY,
            False,
            takeover.reason,
            takeover.message,
            generation=generation,
            now=now,
        )
        return
    if st.reason_of(s, c.COND_READY) in _DEPLOYMENT_UNUSABLE:
        st.set_condition(
            s,
            c.COND_READY,
            None,
            "DeploymentFound",
            takeover.message,
            generation=generation,
            now=now,
        )
    version, sha = takeover.version, takeover.sha256
    if st.view(s).current_version is None and version is not None:
        s["currentVersion"] = version
        if sha:
            s["currentSha256"] = sha
            st.remember_version(s, version=version, sha256=sha, now=now)
        s["latestVersion"] = max(st.view(s).latest_version or 0, version)


def _record_blocked(
    s: st.Status, blocked: Decision | None, *, generation: int, now: dt.datetime
) -> None:
    """Ready=False while a child cannot be written; Unknown again once it can."""
    if blocked is not None:
        st.set_condition(
            s, c.COND_READY, False, blocked.reason, blocked.message, generation=generation, now=now
        )
    elif st.reason_of(s, c.COND_READY) in _BLOCKING_REASONS:
        st.set_condition(
            s,
            c.COND_READY,
            None,
            "ChildrenReady",
            "the ConfigMap and CronJob of this monitor are in place; the next check reports",
            generation=generation,
            now=now,
        )


# ---------------------------------------------------------------------------
# Act
# ---------------------------------------------------------------------------


def reconcile(mm: Monitor, *, now: Clock = utcnow) -> str | None:
    """Ensure children, take over the Deployment, resume in-flight work, apply manual controls.

    Return None when done, or why to try again later (the serving Deployment is missing:
    it may be created after the monitor, as in one ``kubectl apply`` of both).
    """
    blocked = children.ensure_children(mm)
    gathered = gather(mm, blocked=blocked)
    takeover, missing_claim, actions = decide_found(mm, gathered, blocked=blocked)
    acting.perform(mm, actions, now=now)  # before the status write, which reports the claim
    applied_args = builders.check_args(mm.status)

    def decide(fresh: Monitor, s: st.Status) -> st.Status:
        return decide_status(
            fresh, s, blocked=blocked, takeover=takeover, missing_claim=missing_claim, now=now()
        )

    fresh = kube.update_status(mm.namespace, mm.name, decide)
    if fresh is None:
        return None
    if blocked is not None:
        return blocked.message  # nothing else runs until the conflict is resolved
    reconcile_rollout.reapply_cronjob_if_serving_moved(applied_args, fresh)
    _resume_retrain(fresh)
    _resume_rollout(fresh, now=now)
    if c.ANNOTATION_CHECK_NOW in fresh.annotations:
        _check_now(fresh, fresh.annotations[c.ANNOTATION_CHECK_NOW])
    if c.ANNOTATION_RETRAIN_NOW in fresh.annotations:
        reconcile_jobs.start_retrain(mm.namespace, mm.name, manual=True, now=now)
        kube.patch_monitor_annotations(mm.namespace, mm.name, {c.ANNOTATION_RETRAIN_NOW: None})
    reconcile_rollout.apply_pin(mm.namespace, mm.name, now=now)
    if takeover is not None and not takeover.fire:
        return takeover.message
    return missing_claim


def reconcile_invalid(namespace: str, name: str, problem: str, *, now: Clock = utcnow) -> None:
    """A spec the models refuse (the API server's schema let it through): Ready=False
    ``InvalidSpec`` with the fields named, and nothing else runs until it is fixed."""

    def decide(body: objects.Document, s: st.Status) -> st.Status:
        generation = objects.meta(body).generation
        st.set_condition(
            s, c.COND_READY, False, "InvalidSpec", problem, generation=generation, now=now()
        )
        s["phase"] = c.PHASE_FAILED
        s["observedGeneration"] = generation
        return s

    kube.update_raw_status(namespace, name, decide)


def _resume_retrain(mm: Monitor) -> None:
    """Restart safety: a retrain recorded in status whose Job is missing gets (re)created."""
    in_flight = mm.status.retrain
    if in_flight is None or not in_flight.job:
        return
    if not kube.job_exists(mm.namespace, in_flight.job):
        reconcile_jobs.create_retrain_job(mm, in_flight)


def _resume_rollout(mm: Monitor, *, now: Clock) -> None:
    """Restart safety: re-evaluate an in-flight rollout against the Deployment as it is now."""
    if mm.status.rollout is None or mm.spec.deployment is None:
        return
    dep = kube.get_deployment(mm.namespace, mm.spec.deployment.name)
    if dep is not None:
        reconcile_rollout.handle_deployment(dep, now=now)


def _check_now(mm: Monitor, value: str) -> None:
    """Run one check now (``modelwatch.io/check-now``), once per value and generation."""
    suffix = hashlib.sha256(f"{value}/{mm.generation}".encode()).hexdigest()[:6]
    job = builders.build_check_job(mm, name=f"{mm.name}-check-now-{suffix}")
    created = children.create_job(mm, job)
    kube.patch_monitor_annotations(mm.namespace, mm.name, {c.ANNOTATION_CHECK_NOW: None})
    if not created.fire:
        events.warning(mm, created.reason, f"check not started: {created.message}")
        return
    events.normal(mm, "CheckRequested", f"check Job {job['metadata']['name']} created")
