"""Run the monitor's Jobs: start a retrain, and fold each finished check or retrain into status.

Each entry point runs three steps, in this order in the module:

1. **gather** -- read the cluster into plain values: the finished Job's result from its
   pods' termination messages (:func:`gather_result`, read by
   :mod:`~modelwatch_operator.job_results`), and for a retrain the serving Deployment;
2. **decide** -- pure functions over the typed monitor, a copy of its status and what was
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

from modelwatch_monitor import contract
from modelwatch_operator import (
    acting,
    builders,
    children,
    events,
    job_results,
    kube,
    metrics,
    objects,
    policies,
    reconcile_rollout,
)
from modelwatch_operator import constants as c
from modelwatch_operator import status as st
from modelwatch_operator.acting import Clock, utcnow
from modelwatch_operator.actions import Action, Count, PostEvent, Serving, ShowCheck
from modelwatch_operator.monitors import Monitor
from modelwatch_operator.objects import Document
from modelwatch_operator.policies import Decision, format_time

# ---------------------------------------------------------------------------
# Gather: a finished Job's result
# ---------------------------------------------------------------------------

#: A check Job's outcome as folded: its typed result, or the failure the operator names.
CheckOutcome = contract.CheckOk | contract.CheckNoVerdict | contract.CheckFailed | st.Failure
#: A retrain Job's outcome as folded.
RetrainOutcome = contract.RetrainOk | contract.RetrainFailed | st.Failure


def gather_result(
    job: objects.Job, *, kind: str, succeeded: bool, job_message: str
) -> CheckOutcome | RetrainOutcome:
    """Read the result of finished Job ``job`` of ``kind`` from its pods: the typed
    result, or (no result, or one that breaks the contract) the failure that says why."""
    pods = kube.list_job_pods(job.metadata.namespace, job.metadata.name)
    result = job_results.read_result(
        [objects.pod(p) for p in pods],
        kind=kind,
        container=c.CHECK_CONTAINER if kind == c.JOB_KIND_CHECK else c.RETRAIN_CONTAINER,
        succeeded=succeeded,
        job_message=job_message,
    )
    if isinstance(result, job_results.Unread):
        return st.Failure(result.kind, result.reason, result.message)
    return result


# ---------------------------------------------------------------------------
# Decide (pure)
# ---------------------------------------------------------------------------


def decide_retrain(
    mm: Monitor,
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
    gen, spec, current = mm.generation, mm.spec, st.view(s)
    decision = policies.should_retrain(
        retrain=spec.retrain,
        estimate=spec.performance.estimate,
        status=current,
        now=now,
        manual=manual,
        generation=gen,
    )
    if not decision.fire:
        if decision.reason in {"RetrainInProgress", "RolloutInProgress"}:
            return decision, None
        st.set_decision(s, c.COND_RETRAINING, decision, generation=gen, now=now)
        return decision, st.finalize(s, spec, generation=gen, now=now)
    version = policies.allocate_version(current)
    job = c.retrain_job_name(mm.name, version)
    in_flight = contract.RetrainInFlight(
        version=version,
        job=job,
        started_at=format_time(now),
        trigger=decision.reason,
        report_id=report_id or None,
        champion_version=current.current_version,
        since=policies.drift_onset(current.history),  # train on the traffic since the change
    )
    s["retrain"] = in_flight.to_doc()
    s["latestVersion"] = version
    log_entry = contract.RetrainRecord(
        version=version,
        job=job,
        trigger=decision.reason,
        started_at=format_time(now),
        outcome="Running",
    )
    retrains = [r.to_doc() for r in (*current.retrains, log_entry)]
    s["retrains"] = retrains[-c.RETRAIN_LOG_LIMIT :]
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
    mm: Monitor,
    s: st.Status,
    *,
    job: str,
    result: CheckOutcome,
    finished: dt.datetime | None,
    now: dt.datetime,
) -> st.Status | None:
    """Fold one check result into status; None when it was read already (the status may
    have moved since the Job was looked at)."""
    current = st.view(s)
    if job_results.check_already_read(current, job, finished):
        return None
    if finished is not None:
        s["lastCheckFinishedAt"] = format_time(finished)
    gen, spec = mm.generation, mm.spec
    if not isinstance(result, st.Failure) and st.is_stale_check(current, result):
        return st.record_stale_check(s, spec, job=job, generation=gen, now=now)
    if isinstance(result, contract.CheckNoVerdict):
        return st.record_awaiting_traffic(s, spec, result, job=job, generation=gen, now=now)
    if isinstance(result, contract.CheckOk):
        return st.record_check(s, spec, result, job=job, generation=gen, now=now)
    s["lastCheckJob"] = job
    return st.record_failure(s, spec, result, job=job, generation=gen, now=now)


def decide_retrain_result(
    mm: Monitor,
    s: st.Status,
    *,
    job: str,
    result: RetrainOutcome,
    serving: Serving,
    actions: list[Action],
    now: dt.datetime,
) -> tuple[Decision, st.Status] | None:
    """Fold one retrain result into status, decide promotion, record the rollout.

    None when ``job`` is not the retrain in flight (read already).
    """
    current = st.view(s)
    in_flight = current.retrain
    if in_flight is None or in_flight.job != job:
        return None
    gen, spec, version = mm.generation, mm.spec, in_flight.version
    if isinstance(result, contract.RetrainOk):
        st.remember_version(
            s,
            version=version,
            sha256=result.sha256,
            now=now,
            score=result.challenger.score,
            metric=result.metric,
            libraries=result.libraries,
        )
    if isinstance(result, st.Failure):
        decision = Decision(False, result.reason, result.message)
    else:
        decision = policies.should_promote(spec=spec, status=st.view(s), result=result)
    s.pop("retrain", None)
    ok = isinstance(result, contract.RetrainOk)
    label = "Promoted" if decision.fire else ("Kept" if ok else "Failed")
    finished = {
        "finishedAt": format_time(now),
        "generation": gen,
        "outcome": label,
        "reason": decision.reason,
        "message": decision.message[:512],
    }
    s["retrains"] = [
        {**r.to_doc(), **finished} if r.job == job else r.to_doc() for r in current.retrains
    ]
    st.set_condition(
        s,
        c.COND_RETRAINING,
        False,
        decision.reason,
        f"version {version}: {decision.message}",
        generation=gen,
        now=now,
    )
    breaker = policies.circuit_breaker(retrain=spec.retrain, status=st.view(s), generation=gen)
    if breaker.fire:
        st.set_condition(
            s, c.COND_RETRAINING, False, breaker.reason, breaker.message, generation=gen, now=now
        )
        actions.append(PostEvent("Warning", breaker.reason, breaker.message))
    if not isinstance(result, contract.RetrainOk):
        failure = st.Failure(c.JOB_KIND_RETRAIN, decision.reason, decision.message)
        return decision, st.record_failure(s, spec, failure, job=job, generation=gen, now=now)
    if decision.fire:
        reconcile_rollout.begin(
            mm,
            s,
            kind="Promote",
            version=version,
            sha256=result.sha256,
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

    def decide(mm: Monitor, s: st.Status) -> st.Status | None:
        decision, new = decide_retrain(mm, s, manual=manual, report_id=report_id, now=now())
        outcome[:] = [decision]
        return new

    fresh = kube.update_status(namespace, name, decide)
    decision = outcome[0] if outcome else Decision(False, "MonitorGone", "the monitor is gone")
    in_flight = fresh.status.retrain if fresh is not None else None
    if fresh is not None and in_flight is not None and decision.fire:
        create_retrain_job(fresh, in_flight)
        acting.show(namespace, name, [Count("retrains", "started")])
        events.normal(
            fresh,
            "RetrainStarted",
            f"retrain Job {in_flight.job} for version {in_flight.version} "
            f"({decision.reason}: {decision.message})",
        )
    return decision


def create_retrain_job(
    mm: Monitor, in_flight: contract.RetrainInFlight, *, now: Clock = utcnow
) -> None:
    """Create the retrain Job recorded in status; a rejected Job ends the retrain as failed."""
    champion = in_flight.champion_version
    job = builders.build_retrain_job(
        mm,
        version=in_flight.version,
        champion_version=champion,
        champion_sha256=None if champion is None else policies.known_sha256(mm.status, champion),
        trigger_report=in_flight.report_id,
        trigger=in_flight.trigger or "",
        since=in_flight.since,
    )
    name = str(job["metadata"]["name"])
    try:
        created = children.create_job(mm, job)
    except kube.ApiException as exc:
        if exc.status is None or exc.status >= 500 or exc.status == 429:
            raise  # transient: the handler fails and kopf retries
        created = Decision(
            False, "JobRejected", f"the API rejected Job {name} ({exc.status}): {exc.reason}"
        )
    if not created.fire:
        failure = st.Failure(c.JOB_KIND_RETRAIN, created.reason, created.message)
        handle_retrain_result(mm.namespace, mm.name, name, failure, now=now)


def handle_job(job: Document, *, now: Clock = utcnow) -> None:
    """A check or retrain Job changed: once finished, fold its result into the monitor."""
    view = objects.job(job)
    finished, succeeded, job_message = view.finished()
    if not finished:
        return
    namespace, job_name = view.metadata.namespace, view.metadata.name
    monitor = view.metadata.labels.get(c.LABEL_MONITOR)
    kind = view.metadata.labels.get(c.LABEL_JOB_KIND)
    if not monitor or kind not in (c.JOB_KIND_CHECK, c.JOB_KIND_RETRAIN):
        return
    mm = kube.get_typed_monitor(namespace, monitor)
    if mm is None:
        return
    finished_at = view.finished_at()
    if kind == c.JOB_KIND_CHECK and job_results.check_already_read(
        mm.status, job_name, finished_at
    ):
        return
    in_flight = mm.status.retrain
    if kind == c.JOB_KIND_RETRAIN and (in_flight is None or in_flight.job != job_name):
        return  # not the retrain in flight: already read, or not ours
    result = gather_result(view, kind=kind, succeeded=succeeded, job_message=job_message)
    if isinstance(result, contract.RetrainOk | contract.RetrainFailed):
        handle_retrain_result(namespace, monitor, job_name, result, now=now)
    elif not isinstance(result, st.Failure) or kind == c.JOB_KIND_CHECK:
        handle_check_result(namespace, monitor, job_name, result, finished=finished_at, now=now)
    else:
        handle_retrain_result(namespace, monitor, job_name, result, now=now)
    completed = objects.parse_time(view.status.completion_time)
    if completed is not None:
        metrics.RESULT_LATENCY.labels(kind).observe(max(0.0, (now() - completed).total_seconds()))


def handle_check_result(
    namespace: str,
    name: str,
    job: str,
    result: CheckOutcome,
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
    stale: list[bool] = []

    def decide(mm: Monitor, s: st.Status) -> st.Status | None:
        stale[:] = [not isinstance(result, st.Failure) and st.is_stale_check(st.view(s), result)]
        new = decide_check(mm, s, job=job, result=result, finished=finished, now=now())
        applied[:] = [new is not None]
        return new

    fresh = kube.update_status(namespace, name, decide)
    if fresh is None or not applied or not applied[0]:
        return
    if _report_check(fresh, job, result, stale=stale[0]) and isinstance(result, contract.CheckOk):
        start_retrain(namespace, name, report_id=result.report_id, now=now)


def _report_check(mm: Monitor, job: str, result: CheckOutcome, *, stale: bool) -> bool:
    """Post the Events and count the metrics of a check folded into status; True when it
    gave a verdict (the retrain policy is asked next)."""
    namespace, name, status = mm.namespace, mm.name, mm.status
    if stale and not isinstance(result, st.Failure | contract.CheckFailed):
        acting.show(namespace, name, [Count("checks", "stale")])
        events.normal(
            mm,
            "StaleCheck",
            f"{job} judged version {result.serving_version}, but version "
            f"{status.current_version} serves now: its result is no verdict on it",
        )
        return False
    if isinstance(result, contract.CheckNoVerdict):
        if result.reason == contract.REASON_NO_DATA:
            acting.show(namespace, name, [Count("checks", "failed")])
            events.warning(
                mm,
                contract.REASON_NO_DATA,
                f"{job}: {result.reason}: {result.message}; the current model keeps serving",
            )
            return False
        acting.show(namespace, name, [Count("checks", "awaiting_traffic")])
        events.normal(
            mm,
            contract.REASON_AWAITING_TRAFFIC,
            f"{job}: {result.message}; no verdict and no retrain until then",
        )
        return False  # no verdict: nothing for the retrain policy
    if not isinstance(result, contract.CheckOk):
        acting.show(namespace, name, [Count("checks", "failed")])
        events.warning(
            mm,
            contract.REASON_NO_DATA if result.reason == contract.REASON_NO_DATA else "CheckFailed",
            f"{job}: {result.reason}: {result.message}; the current model keeps serving",
        )
        return False
    acting.show(namespace, name, [Count("checks", "ok"), ShowCheck(result)])
    violation = policies.classify_check(result)
    drift = status.condition(c.COND_DATA_DRIFT)
    degraded = status.condition(c.COND_DEGRADED)
    if violation.drift:
        events.warning(mm, "DriftDetected", drift.message if drift is not None else "")
    if violation.degraded:
        events.warning(mm, "PerformanceDegraded", degraded.message if degraded is not None else "")
    elif violation.estimated_degraded:
        events.warning(
            mm,
            "EstimatedPerformanceDegraded",
            degraded.message if degraded is not None else "",
        )
    if not violation.drift and not violation.degraded and not violation.estimated_degraded:
        events.normal(mm, "CheckPassed", f"{job}: {status.drift} features drifted; {status.metric}")
    return True


def handle_retrain_result(
    namespace: str, name: str, job: str, result: RetrainOutcome, *, now: Clock = utcnow
) -> None:
    """Fold one retrain result into status, decide promotion, record the rollout; then act."""
    mm = kube.get_typed_monitor(namespace, name)
    ok = isinstance(result, contract.RetrainOk)
    serving = reconcile_rollout.gather_serving(mm) if mm is not None and ok else None
    outcome: list[Decision] = []
    actions: list[Action] = []

    def decide(fresh: Monitor, s: st.Status) -> st.Status | None:
        outcome.clear()
        actions.clear()
        decided = decide_retrain_result(
            fresh,
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

    fresh = kube.update_status(namespace, name, decide)
    if fresh is None or not outcome:
        return
    acting.perform(fresh, actions, now=now)
    decision = outcome[0]
    if not ok:
        acting.show(namespace, name, [Count("retrains", "failed")])
        events.warning(
            fresh,
            "RetrainFailed",
            f"{job}: {decision.reason}: {decision.message}; the current model keeps serving",
        )
        return
    acting.show(namespace, name, [Count("retrains", "succeeded")])
    if decision.fire:
        events.normal(fresh, "Promoting", decision.message)
    else:
        events.normal(fresh, "NotPromoted", f"{decision.reason}: {decision.message}")
