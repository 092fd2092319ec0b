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
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from modelwatch_operator import (
    acting,
    builders,
    job_results,
    kube,
    metrics,
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

log = logging.getLogger(__name__)


class Gathered(NamedTuple):
    """What the resync reads from the cluster: the monitor, its Jobs, its Deployment, and
    the monitor that Deployment's label names when another (its claim, for a rollback)."""

    body: Mapping[str, Any]
    jobs: Sequence[Mapping[str, Any]]
    deployment: Mapping[str, Any] | None
    claimant: Mapping[str, Any] | None = None


def gather(namespace: str, name: str) -> Gathered | None:
    """Read the monitor, its Jobs (by label) and the serving Deployment; None when gone."""
    body = kube.get_monitor(namespace, name)
    if body is None:
        return None
    jobs = kube.list_monitor_jobs(namespace, name)
    serving = reconcile_rollout.gather_serving(body)
    return Gathered(body, jobs, serving.deployment, serving.claimant)


def _finished_order(job: Mapping[str, Any]) -> tuple[int, str, str]:
    at = job_results.job_finished_at(job)
    meta = job.get("metadata") or {}
    return (0 if at is not None else 1, at.isoformat() if at else "", str(meta.get("name")))


def plan(gathered: Gathered, *, now: dt.datetime) -> list[Step]:
    """Return the steps that bring the monitor in line with the cluster, in order.

    Unread check results first (oldest first, as they finished), then the retrain in flight
    (its result, or its missing Job), then the rollout in flight.
    """
    body, jobs, deployment, _ = gathered
    status: Mapping[str, Any] = body.get("status") or {}
    spec: Mapping[str, Any] = body.get("spec") or {}
    steps: list[Step] = []
    in_flight: Mapping[str, Any] = status.get("retrain") or {}
    names = set()
    for job in sorted(jobs, key=_finished_order):
        meta = job.get("metadata") or {}
        job_name = str(meta.get("name"))
        names.add(job_name)
        finished, _, _ = job_results.job_finished(job)
        if not finished:
            continue
        kind = (meta.get("labels") or {}).get(c.LABEL_JOB_KIND)
        if kind == c.JOB_KIND_CHECK:
            if not job_results.check_already_read(
                status, job_name, job_results.job_finished_at(job)
            ):
                steps.append(ReadJob(job))
        elif kind == c.JOB_KIND_RETRAIN and in_flight.get("job") == job_name:
            steps.append(ReadJob(job))
    if in_flight.get("job") and str(in_flight["job"]) not in names:
        steps.append(CreateRetrainJob(str(in_flight["job"]), int(in_flight.get("version") or 0)))
    current: Mapping[str, Any] = status.get("rollout") or {}
    if current.get("version") is not None:
        version, kind = int(current["version"]), str(current.get("kind") or "")
        step = rollouts.plan_in_flight(current, deployment=deployment, spec=spec, now=now)
        labels = ((deployment or {}).get("metadata") or {}).get("labels") or {}
        name = str((body.get("metadata") or {}).get("name"))
        if step.step == rollouts.FOLLOW and labels.get(c.LABEL_MONITOR) != name:
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


def _same_rollout(status: Mapping[str, Any], version: int, kind: str) -> Mapping[str, Any] | None:
    current: Mapping[str, Any] = status.get("rollout") or {}
    if current.get("version") != version or str(current.get("kind") or "") != kind:
        return None
    return current


def _perform(gathered: Gathered, step: Step, *, now: Clock) -> None:
    body = gathered.body
    namespace, name = builders.monitor_namespace(body), builders.monitor_name(body)
    if isinstance(step, ReadJob):
        reconcile_jobs.handle_job(step.job, now=now)
    elif isinstance(step, CreateRetrainJob):
        fresh = kube.get_monitor(namespace, name)
        in_flight = ((fresh or {}).get("status") or {}).get("retrain") or {}
        if fresh is not None and in_flight.get("job") == step.job:
            reconcile_jobs.create_retrain_job(fresh, in_flight, now=now)
    elif isinstance(step, FollowRollout):
        reconcile_rollout.handle_deployment(step.deployment, now=now)
    elif isinstance(step, ReapplyRollout):
        fresh = kube.get_monitor(namespace, name)
        current = _same_rollout((fresh or {}).get("status") or {}, step.version, step.kind)
        if fresh is None or current is None:
            return
        deployment_spec = (fresh.get("spec") or {}).get("deployment") or {}
        log.info("resync of %s/%s: %s: %s", namespace, name, step.reason, step.message)
        acting.patch_deployment(
            fresh,
            PatchDeployment(
                name=str(deployment_spec.get("name")),
                container=deployment_spec.get("container"),
                version=step.version,
                sha256=str(current.get("sha256") or ""),
                kind=step.kind,
            ),
            now=now,
        )
    elif isinstance(step, FailRollout):
        _fail_rollout(namespace, name, step, now=now)


def _fail_rollout(namespace: str, name: str, step: FailRollout, *, now: Clock) -> None:
    actions: list[Action] = []

    def give_up(b: dict[str, Any], s: st.Status) -> st.Status | None:
        actions.clear()
        current = _same_rollout(s, step.version, step.kind)
        if current is None:
            return None  # finished meanwhile
        return reconcile_rollout.fail(
            b,
            s,
            current,
            reason=step.reason,
            message=step.message,
            serving=step.serving,
            actions=actions,
            now=now(),
        )

    body = kube.update_status(namespace, name, give_up)
    if body is None:
        return
    reconcile_rollout.act(body, actions, now=now)
