"""Run the monitor's Jobs: start a retrain, and fold each finished check or retrain into status.

Each entry point runs three steps, in this order in the module:

1. **gather** -- read the cluster into plain values: the finished Job's result from its
   pods' termination messages (:func:`gather_result`, read by
   :mod:`~modelwatch_operator.job_results`), and for a retrain the serving Deployment;
2. **decide** -- pure functions over the monitor body, a copy of its status and what was
   gathered (:func:`decide_retrain`, :func:`decide_check`, :func:`decide_retrain_result`),
   with the policies of :mod:`modelwatch_operator.policies`;
3. **act** -- :func:`kube.update_status` writes the status, conditional on the
   resourceVersion it read (on a conflict it reads and decides again); then the Job is
   created, the Deployment patched, Events posted and metrics counted.

Entry points: :func:`handle_job` (a Job event, and the resync's ReadJob),
:func:`start_retrain` (after a check, or ``modelwatch.io/retrain-now``) and
:func:`create_retrain_job` (a reserved version whose Job is missing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from modelwatch_monitor import contract
from modelwatch_operator import (
    acting,
    builders,
    children,
    events,
    job_results,
    kube,
    metrics,
    policies,
    reconcile_rollout,
)
from modelwatch_operator import constants as c
from modelwatch_operator import status as st
from modelwatch_operator.acting import Clock, utcnow
from modelwatch_operator.actions import Action, Count, PostEvent, Serving, ShowCheck
from modelwatch_operator.builders import monitor_generation, monitor_spec
from modelwatch_operator.policies import Decision, format_time, parse_time

# ---------------------------------------------------------------------------
# Gather: a finished Job's result
# ---------------------------------------------------------------------------


def gather_result(
    job: Mapping[str, Any], *, kind: str, succeeded: bool, job_message: str
) -> dict[str, Any]:
    """Read the result of finished Job ``job`` of ``kind`` from its pods.

    The typed result (or why there is none) is folded as its document. A check that found
    no traffic succeeds (its pod is Completed) and folds as the ``NoData`` it always showed.
    """
    meta = job.get("metadata") or {}
    result = job_results.read_result(
        kube.list_job_pods(str(meta.get("namespace")), str(meta.get("name"))),
        kind=kind,
        container=c.CHECK_CONTAINER if kind == c.JOB_KIND_CHECK else c.RETRAIN_CONTAINER,
        succeeded=succeeded,
        job_message=job_message,
    )
    if isinstance(result, job_results.Unread):
        return {"ok": False, "reason": result.reason, "message": result.message}
    if isinstance(result, contract.CheckNoVerdict) and result.reason == contract.REASON_NO_DATA:
        return {"ok": False, "reason": result.reason, "message": result.message}
    return result.to_doc()


# ---------------------------------------------------------------------------
# Decide (pure)
# ---------------------------------------------------------------------------


def decide_retrain(
    body: Mapping[str, Any],
    s: st.Status,
    *,
    manual: bool,
    report_id: str | None,
    now: dt.datetime,
) -> tuple[Decision, st.Status | None]:
    """Ask the retrain policy; when it fires, reserve version N and its Job in status.

    Return the decision and the new status (None: write nothing, another retrain or a
    rollout is in flight).
    """
    gen = monitor_generation(body)
    spec = monitor_spec(body)
    decision = policies.should_retrain(spec=spec, status=s, now=now, manual=manual, generation=gen)
    if not decision.fire:
        if decision.reason in {"RetrainInProgress", "RolloutInProgress"}:
            return decision, None
        st.set_decision(s, c.COND_RETRAINING, decision, generation=gen, now=now)
        return decision, st.finalize(s, spec, generation=gen, now=now)
    version = policies.allocate_version(s)
    job = c.retrain_job_name(builders.monitor_name(body), version)
    in_flight: dict[str, Any] = {
        "version": version,
        "job": job,
        "startedAt": format_time(now),
        "trigger": decision.reason,
    }
    if report_id:
        in_flight["reportId"] = report_id
    if s.get("currentVersion") is not None:
        in_flight["championVersion"] = int(s["currentVersion"])
    onset = policies.drift_onset(s.get("history") or [])
    if onset:
        in_flight["since"] = onset  # train on the traffic since the change began
    s["retrain"] = in_flight
    s["latestVersion"] = version
    log_entry = {
        "version": version,
        "job": job,
        "trigger": decision.reason,
        "startedAt": format_time(now),
        "outcome": "Running",
    }
    s["retrains"] = [*(s.get("retrains") or []), log_entry][-c.RETRAIN_LOG_LIMIT :]
    st.set_condition(
        s,
        c.COND_RETRAINING,
        True,
        decision.reason,
        f"training version {version} in Job {job}: {decision.message}",
        generation=gen,
        now=now,
    )
    return decision, st.finalize(s, spec, generation=gen, now=now)


def decide_check(
    body: Mapping[str, Any],
    s: st.Status,
    *,
    job: str,
    result: Mapping[str, Any],
    finished: dt.datetime | None,
    now: dt.datetime,
) -> st.Status | None:
    """Fold one check result into status; None when it was read already (the status may
    have moved since the Job was looked at)."""
    if job_results.check_already_read(s, job, finished):
        return None
    if finished is not None:
        s["lastCheckFinishedAt"] = format_time(finished)
    gen = monitor_generation(body)
    spec = monitor_spec(body)
    if st.is_stale_check(s, result):
        return st.record_stale_check(s, spec, result, job=job, generation=gen, now=now)
    if result.get("ok") and result.get("reason") == contract.REASON_AWAITING_TRAFFIC:
        return st.record_awaiting_traffic(s, spec, result, job=job, generation=gen, now=now)
    if result.get("ok"):
        return st.record_check(s, spec, result, job=job, generation=gen, now=now)
    s["lastCheckJob"] = job
    return st.record_failure(
        s,
        spec,
        kind=c.JOB_KIND_CHECK,
        job=job,
        reason=str(result.get("reason") or "CheckFailed"),
        message=str(result.get("message") or ""),
        generation=gen,
        now=now,
    )


def decide_retrain_result(
    body: Mapping[str, Any],
    s: st.Status,
    *,
    job: str,
    result: Mapping[str, Any],
    serving: Serving,
    actions: list[Action],
    now: dt.datetime,
) -> tuple[Decision, st.Status] | None:
    """Fold one retrain result into status, decide promotion, record the rollout.

    None when ``job`` is not the retrain in flight (read already).
    """
    in_flight = s.get("retrain") or {}
    if in_flight.get("job") != job:
        return None
    gen = monitor_generation(body)
    spec = monitor_spec(body)
    version = int(in_flight.get("version") or 0)
    if result.get("ok") and result.get("sha256"):
        st.remember_version(
            s,
            version=version,
            sha256=str(result["sha256"]),
            now=now,
            score=(result.get("challenger") or {}).get("score"),
            metric=result.get("metric"),
            libraries=result.get("libraries"),
        )
    decision = policies.should_promote(spec=spec, status=s, result=result)
    s.pop("retrain", None)
    label = "Promoted" if decision.fire else ("Failed" if not result.get("ok") else "Kept")
    retrains = list(s.get("retrains") or [])
    for entry in retrains:
        if entry.get("job") == job:
            entry.update(
                {
                    "finishedAt": format_time(now),
                    "generation": gen,
                    "outcome": label,
                    "reason": decision.reason,
                    "message": decision.message[:512],
                }
            )
    s["retrains"] = retrains
    st.set_condition(
        s,
        c.COND_RETRAINING,
        False,
        decision.reason,
        f"version {version}: {decision.message}",
        generation=gen,
        now=now,
    )
    breaker = policies.circuit_breaker(spec=spec, status=s, generation=gen)
    if breaker.fire:
        st.set_condition(
            s, c.COND_RETRAINING, False, breaker.reason, breaker.message, generation=gen, now=now
        )
        actions.append(PostEvent("Warning", breaker.reason, breaker.message))
    if not result.get("ok"):
        return decision, st.record_failure(
            s,
            spec,
            kind=c.JOB_KIND_RETRAIN,
            job=job,
            reason=decision.reason,
            message=decision.message,
            generation=gen,
            now=now,
        )
    if decision.fire:
        reconcile_rollout.begin(
            body,
            s,
            kind="Promote",
            version=version,
            sha256=str(result["sha256"]),
            serving=serving,
            actions=actions,
            now=now,
        )
    return decision, st.finalize(s, spec, generation=gen, now=now)


# ---------------------------------------------------------------------------
# Act: the entry points
# ---------------------------------------------------------------------------


def start_retrain(
    namespace: str,
    name: str,
    *,
    manual: bool = False,
    report_id: str | None = None,
    now: Clock = utcnow,
) -> Decision:
    """Ask the retrain policy; if it fires, allocate N in status first, then create the Job."""
    outcome: list[Decision] = []

    def decide(b: dict[str, Any], s: st.Status) -> st.Status | None:
        decision, new = decide_retrain(b, s, manual=manual, report_id=report_id, now=now())
        outcome[:] = [decision]
        return new

    body = kube.update_status(namespace, name, decide)
    decision = outcome[0] if outcome else Decision(False, "MonitorGone", "the monitor is gone")
    if body is not None and decision.fire:
        in_flight = (body.get("status") or {}).get("retrain") or {}
        create_retrain_job(body, in_flight)
        acting.show(namespace, name, [Count("retrains", "started")])
        events.normal(
            body,
            "RetrainStarted",
            f"retrain Job {in_flight.get('job')} for version {in_flight.get('version')} "
            f"({decision.reason}: {decision.message})",
        )
    return decision


def create_retrain_job(
    body: Mapping[str, Any], in_flight: Mapping[str, Any], *, now: Clock = utcnow
) -> None:
    """Create the retrain Job recorded in status; a rejected Job ends the retrain as failed."""
    champion = in_flight.get("championVersion")
    job = builders.build_retrain_job(
        body,
        version=int(in_flight["version"]),
        champion_version=int(champion) if champion is not None else None,
        champion_sha256=None
        if champion is None
        else policies.known_sha256(body.get("status") or {}, int(champion)),
        trigger_report=in_flight.get("reportId"),
        trigger=str(in_flight.get("trigger") or ""),
        since=in_flight.get("since"),
    )
    name = str(job["metadata"]["name"])
    try:
        created = children.create_job(body, job)
    except kube.ApiException as exc:
        if exc.status is None or exc.status >= 500 or exc.status == 429:
            raise  # transient: the handler fails and kopf retries
        created = Decision(
            False, "JobRejected", f"the API rejected Job {name} ({exc.status}): {exc.reason}"
        )
    if not created.fire:
        handle_retrain_result(
            builders.monitor_namespace(body),
            builders.monitor_name(body),
            name,
            {"ok": False, "reason": created.reason, "message": created.message},
            now=now,
        )


def handle_job(job: Mapping[str, Any], *, now: Clock = utcnow) -> None:
    """A check or retrain Job changed: once finished, fold its result into the monitor."""
    finished, succeeded, job_message = job_results.job_finished(job)
    if not finished:
        return
    meta = job.get("metadata") or {}
    labels = meta.get("labels") or {}
    namespace, job_name = str(meta.get("namespace")), str(meta.get("name"))
    monitor = labels.get(c.LABEL_MONITOR)
    kind = labels.get(c.LABEL_JOB_KIND)
    if not monitor or kind not in (c.JOB_KIND_CHECK, c.JOB_KIND_RETRAIN):
        return
    body = kube.get_monitor(namespace, monitor)
    if body is None:
        return
    st_now = body.get("status") or {}
    finished_at = job_results.job_finished_at(job)
    if kind == c.JOB_KIND_CHECK and job_results.check_already_read(st_now, job_name, finished_at):
        return
    if kind == c.JOB_KIND_RETRAIN and (st_now.get("retrain") or {}).get("job") != job_name:
        return  # not the retrain in flight: already read, or not ours
    result = gather_result(job, kind=kind, succeeded=succeeded, job_message=job_message)
    completed = parse_time((job.get("status") or {}).get("completionTime"))
    if kind == c.JOB_KIND_CHECK:
        handle_check_result(namespace, monitor, job_name, result, finished=finished_at, now=now)
    else:
        handle_retrain_result(namespace, monitor, job_name, result, now=now)
    if completed is not None:
        metrics.RESULT_LATENCY.labels(kind).observe(max(0.0, (now() - completed).total_seconds()))


def handle_check_result(
    namespace: str,
    name: str,
    job: str,
    result: Mapping[str, Any],
    *,
    finished: dt.datetime | None = None,
    now: Clock = utcnow,
) -> None:
    """Fold one check result into status; Events and metrics; then ask the retrain policy.

    Results fold in the order their Jobs finished. A check that finished before the last
    one folded is skipped: after an operator restart, kopf lists the finished check Jobs
    the CronJob keeps, and folding them again would repeat their violations in the M-of-N
    history (a spurious retrain) and leave an older check in ``lastCheck``.
    """
    applied: list[bool] = []

    def decide(b: dict[str, Any], s: st.Status) -> st.Status | None:
        new = decide_check(b, s, job=job, result=result, finished=finished, now=now())
        applied[:] = [new is not None]
        return new

    body = kube.update_status(namespace, name, decide)
    if body is None or not applied or not applied[0]:
        return
    if _report_check(body, job, result):
        start_retrain(namespace, name, report_id=result.get("reportId"), now=now)


def _report_check(body: Mapping[str, Any], job: str, result: Mapping[str, Any]) -> bool:
    """Post the Events and count the metrics of a check folded into status; True when it
    gave a verdict (the retrain policy is asked next)."""
    namespace, name = builders.monitor_namespace(body), builders.monitor_name(body)
    status = body.get("status") or {}
    if st.is_stale_check(status, result):  # the fold leaves currentVersion as it found it
        acting.show(namespace, name, [Count("checks", "stale")])
        events.normal(
            body,
            "StaleCheck",
            f"{job} judged version {result.get('servingVersion')}, but version "
            f"{status.get('currentVersion')} serves now: its result is no verdict on it",
        )
        return False
    if result.get("ok") and result.get("reason") == contract.REASON_AWAITING_TRAFFIC:
        acting.show(namespace, name, [Count("checks", "awaiting_traffic")])
        events.normal(
            body,
            contract.REASON_AWAITING_TRAFFIC,
            f"{job}: {result.get('message')}; no verdict and no retrain until then",
        )
        return False  # no verdict: nothing for the retrain policy
    if not result.get("ok"):
        acting.show(namespace, name, [Count("checks", "failed")])
        events.warning(
            body,
            contract.REASON_NO_DATA
            if result.get("reason") == contract.REASON_NO_DATA
            else "CheckFailed",
            f"{job}: {result.get('reason')}: {result.get('message')}; "
            "the current model keeps serving",
        )
        return False
    # The result was validated when it was read; the gauges take its typed form.
    verdict = contract.CheckOk.model_validate(result)
    acting.show(namespace, name, [Count("checks", "ok"), ShowCheck(verdict)])
    violation = policies.classify_check(result)
    if violation.drift:
        events.warning(
            body, "DriftDetected", st.condition(status, c.COND_DATA_DRIFT).get("message", "")
        )
    if violation.degraded:
        events.warning(
            body, "PerformanceDegraded", st.condition(status, c.COND_DEGRADED).get("message", "")
        )
    elif violation.estimated_degraded:
        events.warning(
            body,
            "EstimatedPerformanceDegraded",
            st.condition(status, c.COND_DEGRADED).get("message", ""),
        )
    if not violation.drift and not violation.degraded and not violation.estimated_degraded:
        events.normal(
            body,
            "CheckPassed",
            f"{job}: {status.get('drift')} features drifted; {status.get('metric')}",
        )
    return True


def handle_retrain_result(
    namespace: str, name: str, job: str, result: Mapping[str, Any], *, now: Clock = utcnow
) -> None:
    """Fold one retrain result into status, decide promotion, record the rollout; then act."""
    body = kube.get_monitor(namespace, name)
    serving = (
        reconcile_rollout.gather_serving(body) if body is not None and result.get("ok") else None
    )
    outcome: list[Decision] = []
    actions: list[Action] = []

    def decide(b: dict[str, Any], s: st.Status) -> st.Status | None:
        outcome.clear()
        actions.clear()
        decided = decide_retrain_result(
            b,
            s,
            job=job,
            result=result,
            serving=serving or Serving(None),
            actions=actions,
            now=now(),
        )
        if decided is None:
            return None
        outcome.append(decided[0])
        return decided[1]

    body = kube.update_status(namespace, name, decide)
    if body is None or not outcome:
        return
    acting.perform(body, actions, now=now)
    decision = outcome[0]
    if not result.get("ok"):
        acting.show(namespace, name, [Count("retrains", "failed")])
        events.warning(
            body,
            "RetrainFailed",
            f"{job}: {decision.reason}: {decision.message}; the current model keeps serving",
        )
        return
    acting.show(namespace, name, [Count("retrains", "succeeded")])
    if decision.fire:
        events.normal(body, "Promoting", decision.message)
    else:
        events.normal(body, "NotPromoted", f"{decision.reason}: {decision.message}")
