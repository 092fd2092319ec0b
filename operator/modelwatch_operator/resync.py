"""The periodic resync of one ModelMonitor: gather, decide, record, act.

kopf never retries a failed ``on.event`` handler, so a Job or Deployment event that hit one
transient API error would be lost. Every ModelMonitor therefore has a timer that re-derives
what is in flight from the cluster:

* finished Jobs of this monitor that were not read (read through the same fold as the event
  handler, so each result still lands once: :func:`job_results.check_already_read`);
* a reserved version (``status.retrain``) without its Job: create it (a rejected Job ends
  the retrain as failed, with the API's reason);
* a rollout in flight: follow it on the live Deployment, apply its target again when the
  Deployment was recreated or never got the patch, and give it up once it timed out.

:func:`plan` is pure; :func:`resync_monitor` gathers, plans, and performs each step on its
own, so one failing step does not hold up the others, and reports the errors (the timer
retries with a backoff; every step is idempotent).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import NamedTuple

from modelwatch_monitor import contract
from modelwatch_operator import (
    acting,
    job_results,
    kube,
    metrics,
    objects,
    reconcile_jobs,
    reconcile_rollout,
)
from modelwatch_operator import constants as c
from modelwatch_operator import rollout as rollouts
from modelwatch_operator import status as st
from modelwatch_operator.acting import Clock, utcnow
from modelwatch_operator.actions import (
    Action,
    CreateRetrainJob,
    FailRollout,
    FollowRollout,
    PatchDeployment,
    ReadJob,
    ReapplyRollout,
    Serving,
    Step,
)
from modelwatch_operator.monitors import Monitor
from modelwatch_operator.objects import Document

log = logging.getLogger(__name__)


class Gathered(NamedTuple):
    """What the resync reads from the cluster: the monitor, its Jobs, its Deployment, and
    the monitor that Deployment's label names when another (its claim, for a rollback)."""

    monitor: Monitor
    jobs: Sequence[Document]
    deployment: Document | None
    claimant: Monitor | None = None


def gather(namespace: str, name: str) -> Gathered | None:
    """Read the monitor, its Jobs (by label) and the serving Deployment; None when gone."""
    mm = kube.get_typed_monitor(namespace, name)
    if mm is None:
        return None
    jobs = kube.list_monitor_jobs(namespace, name)
    serving = reconcile_rollout.gather_serving(mm)
    return Gathered(mm, jobs, serving.deployment, serving.claimant)


def _finished_order(job: objects.Job) -> tuple[int, str, str]:
    at = job.finished_at()
    return (0 if at is not None else 1, at.isoformat() if at else "", job.metadata.name)


def plan(gathered: Gathered, *, now: dt.datetime) -> list[Step]:
    """Return the steps that bring the monitor in line with the cluster, in order.

    Unread check results first (oldest first, as they finished), then the retrain in flight
    (its result, or its missing Job), then the rollout in flight.
    """
    mm, jobs, deployment, _ = gathered
    status = mm.status
    steps: list[Step] = []
    in_flight = status.retrain
    retrain_job = in_flight.job if in_flight is not None else None
    names = set()
    views = {id(doc): objects.job(doc) for doc in jobs}
    for doc in sorted(jobs, key=lambda d: _finished_order(views[id(d)])):
        job = views[id(doc)]
        names.add(job.metadata.name)
        finished, _, _ = job.finished()
        if not finished:
            continue
        kind = job.metadata.labels.get(c.LABEL_JOB_KIND)
        if kind == c.JOB_KIND_CHECK:
            if not job_results.check_already_read(status, job.metadata.name, job.finished_at()):
                steps.append(ReadJob(doc))
        elif kind == c.JOB_KIND_RETRAIN and retrain_job == job.metadata.name:
            steps.append(ReadJob(doc))
    if in_flight is not None and in_flight.job and in_flight.job not in names:
        steps.append(CreateRetrainJob(in_flight.job, in_flight.version))
    current = status.rollout
    if current is not None:
        version, kind = current.version, current.kind
        view = objects.deployment(deployment) if deployment is not None else None
        step = rollouts.plan_in_flight(current, deployment=view, spec=mm.spec, now=now)
        labels = view.metadata.labels if view is not None else {}
        if step.step == rollouts.FOLLOW and labels.get(c.LABEL_MONITOR) != mm.name:
            # Not labelled (recreated from a manifest): its events do not reach the
            # operator until the rollout patch labels it again.
            steps.append(ReapplyRollout(version, kind, "DeploymentNotLabelled", step.message))
        elif step.step == rollouts.FOLLOW and deployment is not None:
            steps.append(FollowRollout(deployment))
        elif step.step == rollouts.REAPPLY:
            steps.append(ReapplyRollout(version, kind, step.reason, step.message))
        elif step.step == rollouts.FAIL:
            serving = Serving(deployment, gathered.claimant)
            steps.append(FailRollout(version, kind, step.reason, step.message, serving))
    return steps


def resync_monitor(namespace: str, name: str, *, now: Clock = utcnow) -> list[str]:
    """Gather, plan and perform; return the errors of the steps that failed (none: [])."""
    gathered = gather(namespace, name)
    if gathered is None:
        return []
    errors: list[str] = []
    for step in plan(gathered, now=now()):
        try:
            _perform(gathered, step, now=now)
        except Exception as exc:  # each step on its own: the next resync retries it
            log.warning("resync of %s/%s: %s failed: %s", namespace, name, step, exc)
            metrics.RECONCILE_ERRORS.labels("resync").inc()
            errors.append(f"{type(step).__name__}: {exc}")
    return errors


def _same_rollout(
    status: contract.MonitorStatus, version: int, kind: str
) -> contract.RolloutInFlight | None:
    current = status.rollout
    if current is None or current.version != version or current.kind != kind:
        return None
    return current


def _perform(gathered: Gathered, step: Step, *, now: Clock) -> None:
    namespace, name = gathered.monitor.namespace, gathered.monitor.name
    if isinstance(step, ReadJob):
        reconcile_jobs.handle_job(step.job, now=now)
    elif isinstance(step, CreateRetrainJob):
        fresh = kube.get_typed_monitor(namespace, name)
        in_flight = fresh.status.retrain if fresh is not None else None
        if fresh is not None and in_flight is not None and in_flight.job == step.job:
            reconcile_jobs.create_retrain_job(fresh, in_flight, now=now)
    elif isinstance(step, FollowRollout):
        reconcile_rollout.handle_deployment(step.deployment, now=now)
    elif isinstance(step, ReapplyRollout):
        fresh = kube.get_typed_monitor(namespace, name)
        if fresh is None or fresh.spec.deployment is None:
            return
        current = _same_rollout(fresh.status, step.version, step.kind)
        if current is None:
            return
        log.info("resync of %s/%s: %s: %s", namespace, name, step.reason, step.message)
        acting.patch_deployment(
            fresh,
            PatchDeployment(
                name=fresh.spec.deployment.name,
                container=fresh.spec.deployment.container,
                version=step.version,
                sha256=current.sha256 or "",
                kind=step.kind,
            ),
            now=now,
        )
    elif isinstance(step, FailRollout):
        _fail_rollout(namespace, name, step, now=now)


def _fail_rollout(namespace: str, name: str, step: FailRollout, *, now: Clock) -> None:
    actions: list[Action] = []

    def give_up(mm: Monitor, s: st.Status) -> st.Status | None:
        actions.clear()
        current = _same_rollout(st.view(s), step.version, step.kind)
        if current is None:
            return None  # finished meanwhile
        return reconcile_rollout.fail(
            mm,
            s,
            current,
            reason=step.reason,
            message=step.message,
            serving=step.serving,
            actions=actions,
            now=now(),
        )

    fresh = kube.update_status(namespace, name, give_up)
    if fresh is None:
        return
    reconcile_rollout.act(fresh, actions, now=now)
