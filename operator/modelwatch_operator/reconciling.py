"""The ModelMonitor loop: read state, decide with :mod:`policies`, act through :mod:`kube`.

Three entry points, each called by a thin kopf handler in :mod:`main`:

* :func:`reconcile_monitor` -- create, update, resume: children, takeover, manual controls;
* :func:`handle_job` -- a check or retrain Job finished: fold its result into status;
* :func:`handle_deployment` -- the serving Deployment changed: follow the rollout.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from modelwatch_monitor import contract
from modelwatch_operator import (
    acting,
    builders,
    children,
    events,
    guards,
    kube,
    metrics,
    policies,
)
from modelwatch_operator import constants as c
from modelwatch_operator import rollout as rollouts
from modelwatch_operator import status as st
from modelwatch_operator.actions import Action, PatchDeployment, PostEvent
from modelwatch_operator.policies import Decision, format_time, parse_time

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _spec(body: Mapping[str, Any]) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = body.get("spec") or {}
    return spec


def _generation(body: Mapping[str, Any]) -> int:
    return int((body.get("metadata") or {}).get("generation") or 0)


def _ids(body: Mapping[str, Any]) -> tuple[str, str]:
    return builders.monitor_namespace(body), builders.monitor_name(body)


# ---------------------------------------------------------------------------
# Create / update / resume
# ---------------------------------------------------------------------------


def reconcile_monitor(body: Mapping[str, Any], *, now: Clock = utcnow) -> str | None:
    """Ensure children, take over the Deployment, resume in-flight work, apply manual controls.

    Return None when done, or why to try again later (the serving Deployment is missing:
    it may be created after the monitor, as in one ``kubectl apply`` of both).
    """
    namespace, name = _ids(body)
    blocked = children.ensure_children(body)
    if blocked is not None:
        events.warning(body, blocked.reason, blocked.message)
    takeover = _take_over_deployment(body) if blocked is None else None
    applied_args = builders.check_args(body)
    missing_claim = _missing_store_claim(body)

    def initialise(b: dict[str, Any], s: st.Status) -> st.Status:
        t = now()
        gen = _generation(b)
        spec = _spec(b)
        if takeover is not None:
            fire, reason, message, version, sha = takeover
            if not fire:
                st.set_condition(s, c.COND_READY, False, reason, message, generation=gen, now=t)
            else:
                if st.condition(s, c.COND_READY).get("reason") in {
                    "DeploymentNotFound",
                    "ContainerNotFound",
                    guards.DEPLOYMENT_CLAIMED,
                }:
                    st.set_condition(
                        s, c.COND_READY, None, "DeploymentFound", message, generation=gen, now=t
                    )
                if s.get("currentVersion") is None and version is not None:
                    s["currentVersion"] = version
                    if sha:
                        s["currentSha256"] = sha
                        st.remember_version(s, version=version, sha256=sha, now=t)
                    s["latestVersion"] = max(int(s.get("latestVersion") or 0), version)
        ready_reason = st.condition(s, c.COND_READY).get("reason")
        if missing_claim is not None:
            if ready_reason not in {
                "DeploymentNotFound",
                "ContainerNotFound",
                guards.DEPLOYMENT_CLAIMED,
            }:
                st.set_condition(
                    s,
                    c.COND_READY,
                    False,
                    "StoreClaimNotFound",
                    missing_claim,
                    generation=gen,
                    now=t,
                )
        elif ready_reason == "StoreClaimNotFound":
            st.set_condition(
                s,
                c.COND_READY,
                None,
                "StoreFound",
                "the store's PersistentVolumeClaim exists; the next check reports",
                generation=gen,
                now=t,
            )
        _record_blocked(s, blocked, generation=gen, now=t)
        if not st.condition(s, c.COND_RETRAINING):
            st.set_condition(
                s, c.COND_RETRAINING, False, "Idle", "no retrain is running", generation=gen, now=t
            )
        if not st.condition(s, c.COND_ROLLOUT):
            st.set_condition(
                s,
                c.COND_ROLLOUT,
                None,
                "NoRollout",
                "the operator has not rolled out a version yet",
                generation=gen,
                now=t,
            )
        for ctype in (c.COND_DATA_DRIFT, c.COND_DEGRADED):
            if not st.condition(s, ctype):
                st.set_condition(
                    s,
                    ctype,
                    None,
                    "AwaitingFirstCheck",
                    "no check has run yet",
                    generation=gen,
                    now=t,
                )
        return st.finalize(s, spec, generation=gen, now=t)

    fresh = kube.update_status(namespace, name, initialise)
    if fresh is None:
        return None
    if blocked is not None:
        return blocked.message  # nothing else runs until the conflict is resolved
    _reapply_cronjob_if_serving_moved(applied_args, fresh)
    _resume_retrain(fresh)
    _resume_rollout(fresh, now=now)
    annotations: Mapping[str, str] = (fresh.get("metadata") or {}).get("annotations") or {}
    if c.ANNOTATION_CHECK_NOW in annotations:
        _check_now(fresh, annotations[c.ANNOTATION_CHECK_NOW])
    if c.ANNOTATION_RETRAIN_NOW in annotations:
        start_retrain(namespace, name, manual=True, now=now)
        kube.patch_monitor_annotations(namespace, name, {c.ANNOTATION_RETRAIN_NOW: None})
    _maybe_pin(namespace, name, now=now)
    if takeover is not None and not takeover[0]:
        return takeover[2]
    return missing_claim


_BLOCKING_REASONS = frozenset({guards.NAME_CONFLICT, guards.IMAGE_NOT_ALLOWED})


def _record_blocked(
    s: st.Status, blocked: Decision | None, *, generation: int, now: dt.datetime
) -> None:
    """Ready=False while a child cannot be written; Unknown again once it can."""
    if blocked is not None:
        st.set_condition(
            s, c.COND_READY, False, blocked.reason, blocked.message, generation=generation, now=now
        )
    elif st.condition(s, c.COND_READY).get("reason") in _BLOCKING_REASONS:
        st.set_condition(
            s,
            c.COND_READY,
            None,
            "ChildrenReady",
            "the ConfigMap and CronJob of this monitor are in place; the next check reports",
            generation=generation,
            now=now,
        )


def _reapply_cronjob_if_serving_moved(before: list[str], body: Mapping[str, Any]) -> None:
    """Re-apply CronJob ``<mm>-check`` when the version that serves (or when it began
    serving) changed in status since ``before`` (the check arguments it was applied with):
    every later check then judges that version's traffic."""
    if builders.check_args(body) != before:
        blocked = children.ensure_children(body)  # never writes over a child it does not own
        if blocked is not None:
            events.warning(body, blocked.reason, blocked.message)


def _missing_store_claim(body: Mapping[str, Any]) -> str | None:
    """Why the store's PersistentVolumeClaim is missing, or None when it exists (or none is
    named). Without this, a mistyped claim leaves every check pod Pending, silently."""
    claim = ((_spec(body).get("store") or {}).get("volume") or {}).get("claimName")
    if not claim:
        return None
    namespace, _ = _ids(body)
    if kube.pvc_exists(namespace, str(claim)):
        return None
    message = (
        f'spec.store.volume.claimName: persistentvolumeclaim "{claim}" not found in namespace '
        f'"{namespace}"; check and retrain pods cannot start until it exists'
    )
    events.warning(body, "StoreClaimNotFound", message)
    return message


TakeOver = tuple[bool, str, str, int | None, str | None]


def _take_over_deployment(body: Mapping[str, Any]) -> TakeOver | None:
    """Label the serving Deployment and read its current version; None without a deployment."""
    deployment_spec: Mapping[str, Any] = _spec(body).get("deployment") or {}
    dep_name = deployment_spec.get("name")
    if not dep_name:
        return None
    namespace, name = _ids(body)
    dep = kube.get_deployment(namespace, dep_name)
    if dep is None:
        events.warning(
            body,
            "DeploymentNotFound",
            f'deployment "{dep_name}" not found in namespace "{namespace}"',
        )
        return (
            False,
            "DeploymentNotFound",
            f'spec.deployment.name: deployment "{dep_name}" not found in namespace "{namespace}"',
            None,
            None,
        )
    container = builders.find_container(dep, deployment_spec.get("container"))
    if container is None:
        return (
            False,
            "ContainerNotFound",
            f'spec.deployment.container: deployment "{dep_name}" has no container '
            f'"{deployment_spec.get("container")}"',
            None,
            None,
        )
    claim = _deployment_claim(dep, name)
    if not claim.fire:
        events.warning(body, claim.reason, claim.message)
        return False, claim.reason, claim.message, None, None
    if claim.reason != guards.CLAIMED_BY_US:
        patch = builders.build_takeover_patch(body)
        read_version = (dep.get("metadata") or {}).get("resourceVersion")
        if read_version:  # claim the Deployment as read: a claim meanwhile answers 409
            patch["metadata"]["resourceVersion"] = read_version
        kube.patch_deployment(namespace, dep_name, patch)
    version, sha = builders.read_model_env(container)
    return True, "DeploymentFound", f'serving deployment "{dep_name}"', version, sha


def _deployment_claim(deployment: Mapping[str, Any], monitor: str) -> Decision:
    """May ``monitor`` label and roll ``deployment``? Reads the monitor its label names."""
    meta = deployment.get("metadata") or {}
    holder = (meta.get("labels") or {}).get(c.LABEL_MONITOR)
    claimant = None
    if holder and holder != monitor:
        claimant = kube.get_monitor(str(meta.get("namespace")), str(holder))
    return guards.deployment_claim(deployment, monitor=monitor, claimant=claimant)


def _resume_retrain(body: Mapping[str, Any]) -> None:
    """Restart safety: a retrain recorded in status whose Job is missing gets (re)created."""
    in_flight: Mapping[str, Any] = (body.get("status") or {}).get("retrain") or {}
    if not in_flight.get("job"):
        return
    namespace, _ = _ids(body)
    if not kube.job_exists(namespace, str(in_flight["job"])):
        _create_retrain_job(body, in_flight)


def _resume_rollout(body: Mapping[str, Any], *, now: Clock) -> None:
    """Restart safety: re-evaluate an in-flight rollout against the Deployment as it is now."""
    rollout: Mapping[str, Any] = (body.get("status") or {}).get("rollout") or {}
    dep_name = (_spec(body).get("deployment") or {}).get("name")
    if rollout.get("version") is None or not dep_name:
        return
    namespace, _ = _ids(body)
    dep = kube.get_deployment(namespace, dep_name)
    if dep is not None:
        handle_deployment(dep, now=now)


def _check_now(body: Mapping[str, Any], value: str) -> None:
    namespace, name = _ids(body)
    suffix = hashlib.sha256(f"{value}/{_generation(body)}".encode()).hexdigest()[:6]
    job = builders.build_check_job(body, name=f"{name}-check-now-{suffix}")
    created = children.create_job(body, job)
    kube.patch_monitor_annotations(namespace, name, {c.ANNOTATION_CHECK_NOW: None})
    if not created.fire:
        events.warning(body, created.reason, f"check not started: {created.message}")
        return
    events.normal(body, "CheckRequested", f"check Job {job['metadata']['name']} created")


def _serving_deployment(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Gather the serving Deployment named in the spec (None when unnamed or missing)."""
    dep_name = (_spec(body).get("deployment") or {}).get("name")
    return kube.get_deployment(_ids(body)[0], str(dep_name)) if dep_name else None


def _maybe_pin(namespace: str, name: str, *, now: Clock) -> None:
    body = kube.get_monitor(namespace, name)
    if body is None or _spec(body).get("pinnedVersion") is None:
        return
    deployment = _serving_deployment(body)
    actions: list[Action] = []

    def pin(b: dict[str, Any], s: st.Status) -> st.Status | None:
        actions.clear()
        gen = _generation(b)
        decision = policies.should_pin(spec=_spec(b), status=s, generation=gen)
        if not decision.fire:
            if (
                decision.reason == "UnknownVersion"
                and (s.get("pin") or {}).get("generation") != gen
            ):
                s["pin"] = {
                    "version": int(_spec(b)["pinnedVersion"]),
                    "generation": gen,
                    "outcome": "UnknownVersion",
                }
                st.set_condition(
                    s,
                    c.COND_ROLLOUT,
                    False,
                    "UnknownVersion",
                    decision.message,
                    generation=gen,
                    now=now(),
                )
                actions.append(PostEvent("Warning", "UnknownVersion", decision.message))
                return st.finalize(s, _spec(b), generation=gen, now=now())
            return None
        version = int(_spec(b)["pinnedVersion"])
        sha = policies.known_sha256(s, version) or ""
        s["pin"] = {"version": version, "generation": gen, "outcome": "RollingOut"}
        _begin_rollout(
            b,
            s,
            kind="Pin",
            version=version,
            sha256=sha,
            deployment=deployment,
            actions=actions,
            now=now(),
        )
        return st.finalize(s, _spec(b), generation=gen, now=now())

    fresh = kube.update_status(namespace, name, pin)
    if fresh is not None:
        acting.perform(fresh, actions, now=now)


# ---------------------------------------------------------------------------
# Retrain start
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
        outcome.clear()
        t = now()
        gen = _generation(b)
        decision = policies.should_retrain(
            spec=_spec(b), status=s, now=t, manual=manual, generation=gen
        )
        outcome.append(decision)
        if not decision.fire:
            if decision.reason in {"RetrainInProgress", "RolloutInProgress"}:
                return None
            st.set_condition(
                s,
                c.COND_RETRAINING,
                False,
                decision.reason,
                decision.message,
                generation=gen,
                now=t,
            )
            return st.finalize(s, _spec(b), generation=gen, now=t)
        version = policies.allocate_version(s)
        job = c.retrain_job_name(name, version)
        in_flight: dict[str, Any] = {
            "version": version,
            "job": job,
            "startedAt": format_time(t),
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
            "startedAt": format_time(t),
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
            now=t,
        )
        return st.finalize(s, _spec(b), generation=gen, now=t)

    body = kube.update_status(namespace, name, decide)
    decision = outcome[0] if outcome else Decision(False, "MonitorGone", "the monitor is gone")
    if body is not None and decision.fire:
        in_flight = (body.get("status") or {}).get("retrain") or {}
        _create_retrain_job(body, in_flight)
        metrics.RETRAINS.labels(namespace, name, "started").inc()
        events.normal(
            body,
            "RetrainStarted",
            f"retrain Job {in_flight.get('job')} for version {in_flight.get('version')} "
            f"({decision.reason}: {decision.message})",
        )
    return decision


def _create_retrain_job(
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
            *_ids(body),
            name,
            {"ok": False, "reason": created.reason, "message": created.message},
            now=now,
        )


# ---------------------------------------------------------------------------
# Job results
# ---------------------------------------------------------------------------


def job_finished(job: Mapping[str, Any]) -> tuple[bool, bool, str]:
    """Return (finished, succeeded, message) from a Job's conditions."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return True, True, ""
        if cond.get("type") == "Failed":
            return True, False, f"{cond.get('reason', 'Failed')}: {cond.get('message', '')}"
    return False, False, ""


def job_finished_at(job: Mapping[str, Any]) -> dt.datetime | None:
    """When a finished Job finished: ``completionTime``, else (a failed Job) the time its
    Complete or Failed condition turned True."""
    status = job.get("status") or {}
    done = parse_time(status.get("completionTime"))
    if done is not None:
        return done
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return parse_time(cond.get("lastTransitionTime"))
    return None


def check_already_read(status: Mapping[str, Any], job: str, finished: dt.datetime | None) -> bool:
    """True when check Job ``job`` was read, or finished before the last check read (an
    operator restart lists the finished Jobs the CronJob keeps: read once, in order)."""
    if status.get("lastCheckJob") == job:
        return True
    watermark = parse_time(status.get("lastCheckFinishedAt"))
    return finished is not None and watermark is not None and finished < watermark


def completion_index(pod: Mapping[str, Any]) -> str | None:
    """The completion index of a pod of an Indexed Job (its annotation, else its label)."""
    meta = pod.get("metadata") or {}
    for where in ("annotations", "labels"):
        value = (meta.get(where) or {}).get(c.ANNOTATION_COMPLETION_INDEX)
        if value is not None:
            return str(value)
    return None


def result_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods whose termination message is the Job's result: every pod of a Job, or
    the pods of index 0 of an Indexed Job (a sharded check: index 0 merges and decides;
    the other shards leave their share in the store, not a result)."""
    if all(completion_index(p) is None for p in pods):
        return pods
    return [p for p in pods if completion_index(p) == contract.SHARD_RESULT_INDEX]


def read_result(
    pods: list[dict[str, Any]], *, container: str, succeeded: bool, job_message: str
) -> dict[str, Any]:
    """Return the result document of a finished Job from its pods' termination messages
    (of index 0 in an Indexed Job; the newest pod's when the index was retried)."""
    messages: list[str] = []
    pods = result_pods(pods)
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp"))):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") != container:
                continue
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                messages.append(str(terminated["message"]))
    text = messages[-1] if messages else None
    try:
        result = contract.parse_result(text)
    except contract.ContractError as exc:
        reason = "JobFailed" if not succeeded else "NoResult"
        detail = str(exc) if text or not job_message else job_message
        return {"ok": False, "reason": reason, "message": detail}
    problems = contract.validate_result(result)
    if problems:
        return {
            "ok": False,
            "reason": contract.REASON_INVALID_RESULT,
            "message": "; ".join(problems),
        }
    if not succeeded and result.get("ok"):
        result = {**result, "ok": False, "reason": "JobFailed", "message": job_message}
    return result


def handle_job(job: Mapping[str, Any], *, now: Clock = utcnow) -> None:
    """A check or retrain Job changed: once finished, fold its result into the monitor."""
    finished, succeeded, job_message = job_finished(job)
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
    finished_at = job_finished_at(job)
    if kind == c.JOB_KIND_CHECK and check_already_read(st_now, job_name, finished_at):
        return
    if kind == c.JOB_KIND_RETRAIN and (st_now.get("retrain") or {}).get("job") != job_name:
        return  # not the retrain in flight: already read, or not ours
    container = c.CHECK_CONTAINER if kind == c.JOB_KIND_CHECK else c.RETRAIN_CONTAINER
    result = read_result(
        kube.list_job_pods(namespace, job_name),
        container=container,
        succeeded=succeeded,
        job_message=job_message,
    )
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
    stale: list[Any] = []

    def fold(b: dict[str, Any], s: st.Status) -> st.Status | None:
        applied.clear()
        stale.clear()
        if check_already_read(s, job, finished):
            return None  # read meanwhile (the status may have moved since handle_job looked)
        applied.append(True)
        t = now()
        if finished is not None:
            s["lastCheckFinishedAt"] = format_time(finished)
        gen = _generation(b)
        if st.is_stale_check(s, result):
            stale.append(s.get("currentVersion"))
            return st.record_stale_check(s, _spec(b), result, job=job, generation=gen, now=t)
        if result.get("ok") and result.get("reason") == contract.REASON_AWAITING_TRAFFIC:
            return st.record_awaiting_traffic(s, _spec(b), result, job=job, generation=gen, now=t)
        if result.get("ok"):
            return st.record_check(s, _spec(b), result, job=job, generation=gen, now=t)
        s["lastCheckJob"] = job
        return st.record_failure(
            s,
            _spec(b),
            kind=c.JOB_KIND_CHECK,
            job=job,
            reason=str(result.get("reason") or "CheckFailed"),
            message=str(result.get("message") or ""),
            generation=gen,
            now=t,
        )

    body = kube.update_status(namespace, name, fold)
    if body is None or not applied:
        return
    if stale:
        metrics.CHECKS.labels(namespace, name, "stale").inc()
        events.normal(
            body,
            "StaleCheck",
            f"{job} judged version {result.get('servingVersion')}, but version {stale[0]} "
            "serves now: its result is no verdict on it",
        )
        return
    if result.get("ok") and result.get("reason") == contract.REASON_AWAITING_TRAFFIC:
        metrics.CHECKS.labels(namespace, name, "awaiting_traffic").inc()
        events.normal(
            body,
            contract.REASON_AWAITING_TRAFFIC,
            f"{job}: {result.get('message')}; no verdict and no retrain until then",
        )
        return  # no verdict: nothing for the retrain policy
    if not result.get("ok"):
        metrics.CHECKS.labels(namespace, name, "failed").inc()
        events.warning(
            body,
            contract.REASON_NO_DATA
            if result.get("reason") == contract.REASON_NO_DATA
            else "CheckFailed",
            f"{job}: {result.get('reason')}: {result.get('message')}; "
            "the current model keeps serving",
        )
        return
    metrics.CHECKS.labels(namespace, name, "ok").inc()
    metrics.DRIFT_SHARE.labels(namespace, name).set(float(result.get("driftShare") or 0.0))
    metrics.DRIFTED_FEATURES.labels(namespace, name).set(float(result.get("nDrifted") or 0))
    metric = result.get("metric") or {}
    if metric.get("value") is not None:
        metrics.METRIC_VALUE.labels(namespace, name, str(metric.get("name"))).set(
            float(metric["value"])
        )
    estimated = result.get("estimatedMetric") or {}
    for bound, key in (("estimate", "value"), ("lower", "lower"), ("upper", "upper")):
        labels = (namespace, name, str(estimated.get("name")), bound)
        if estimated.get(key) is not None:
            metrics.ESTIMATED_METRIC.labels(*labels).set(float(estimated[key]))
        elif labels in metrics.ESTIMATED_METRIC._metrics:  # no estimate now: no stale value
            metrics.ESTIMATED_METRIC.remove(*labels)
    violation = policies.classify_check(result)
    status = body.get("status") or {}
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
    start_retrain(namespace, name, report_id=result.get("reportId"), now=now)


def handle_retrain_result(
    namespace: str, name: str, job: str, result: Mapping[str, Any], *, now: Clock = utcnow
) -> None:
    """Fold one retrain result into status, decide promotion, record the rollout; then act."""
    outcome: list[Decision] = []
    actions: list[Action] = []
    body = kube.get_monitor(namespace, name)
    deployment = _serving_deployment(body) if body is not None and result.get("ok") else None

    def fold(b: dict[str, Any], s: st.Status) -> st.Status | None:
        outcome.clear()
        actions.clear()
        in_flight = s.get("retrain") or {}
        if in_flight.get("job") != job:
            return None
        t = now()
        gen = _generation(b)
        spec = _spec(b)
        version = int(in_flight.get("version") or 0)
        if result.get("ok") and result.get("sha256"):
            st.remember_version(
                s,
                version=version,
                sha256=str(result["sha256"]),
                now=t,
                score=(result.get("challenger") or {}).get("score"),
                metric=result.get("metric"),
                libraries=result.get("libraries"),
            )
        decision = policies.should_promote(spec=spec, status=s, result=result)
        outcome.append(decision)
        s.pop("retrain", None)
        label = "Promoted" if decision.fire else ("Failed" if not result.get("ok") else "Kept")
        retrains = list(s.get("retrains") or [])
        for entry in retrains:
            if entry.get("job") == job:
                entry.update(
                    {
                        "finishedAt": format_time(t),
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
            now=t,
        )
        breaker = policies.circuit_breaker(spec=spec, status=s, generation=gen)
        if breaker.fire:
            st.set_condition(
                s, c.COND_RETRAINING, False, breaker.reason, breaker.message, generation=gen, now=t
            )
            actions.append(PostEvent("Warning", breaker.reason, breaker.message))
        if not result.get("ok"):
            return st.record_failure(
                s,
                spec,
                kind=c.JOB_KIND_RETRAIN,
                job=job,
                reason=decision.reason,
                message=decision.message,
                generation=gen,
                now=t,
            )
        if decision.fire:
            _begin_rollout(
                b,
                s,
                kind="Promote",
                version=version,
                sha256=str(result["sha256"]),
                deployment=deployment,
                actions=actions,
                now=t,
            )
        return st.finalize(s, spec, generation=gen, now=t)

    body = kube.update_status(namespace, name, fold)
    if body is None or not outcome:
        return
    acting.perform(body, actions, now=now)
    decision = outcome[0]
    if not result.get("ok"):
        metrics.RETRAINS.labels(namespace, name, "failed").inc()
        events.warning(
            body,
            "RetrainFailed",
            f"{job}: {decision.reason}: {decision.message}; the current model keeps serving",
        )
        return
    metrics.RETRAINS.labels(namespace, name, "succeeded").inc()
    if decision.fire:
        events.normal(body, "Promoting", decision.message)
    else:
        events.normal(body, "NotPromoted", f"{decision.reason}: {decision.message}")


# ---------------------------------------------------------------------------
# Rollout
# ---------------------------------------------------------------------------


def _begin_rollout(
    body: Mapping[str, Any],
    s: st.Status,
    *,
    kind: str,
    version: int,
    sha256: str,
    deployment: Mapping[str, Any] | None,
    actions: list[Action],
    now: dt.datetime,
) -> bool:
    """Record the rollout to ``version`` in ``s`` and add the patch to ``actions``.

    Pure: ``deployment`` was gathered before. The version it replaces comes from status
    (``currentVersion``), or for a rollback the version that failed. False (and a
    condition) when the Deployment or its container is missing.
    """
    gen = _generation(body)
    deployment_spec: Mapping[str, Any] = _spec(body).get("deployment") or {}
    namespace, _ = _ids(body)
    dep_name = str(deployment_spec.get("name") or "")
    if deployment is None or not dep_name:
        message = (
            f'spec.deployment.name: deployment "{dep_name}" not found in namespace "{namespace}"'
        )
        st.set_condition(
            s, c.COND_READY, False, "DeploymentNotFound", message, generation=gen, now=now
        )
        st.set_condition(
            s, c.COND_ROLLOUT, False, "DeploymentNotFound", message, generation=gen, now=now
        )
        actions.append(PostEvent("Warning", "DeploymentNotFound", message))
        return False
    claim = _deployment_claim(deployment, _ids(body)[1])
    if not claim.fire:
        st.set_condition(
            s, c.COND_READY, False, claim.reason, claim.message, generation=gen, now=now
        )
        st.set_condition(
            s, c.COND_ROLLOUT, False, claim.reason, claim.message, generation=gen, now=now
        )
        actions.append(PostEvent("Warning", claim.reason, claim.message))
        return False
    container = builders.find_container(deployment, deployment_spec.get("container"))
    if container is None:
        message = f'deployment "{dep_name}" has no container "{deployment_spec.get("container")}"'
        st.set_condition(
            s, c.COND_ROLLOUT, False, "ContainerNotFound", message, generation=gen, now=now
        )
        actions.append(PostEvent("Warning", "ContainerNotFound", message))
        return False
    if kind == "Rollback":
        failed = s.get("rollout") or {}
        previous_version, previous_sha = failed.get("version"), failed.get("sha256")
    else:
        previous_version, previous_sha = s.get("currentVersion"), s.get("currentSha256")
    rollouts.record(
        s,
        kind=kind,
        version=version,
        sha256=sha256,
        previous_version=int(previous_version) if previous_version is not None else None,
        previous_sha256=str(previous_sha) if previous_sha else None,
        deployment=deployment,
        now=now,
    )
    verb = "rolling back" if kind == "Rollback" else "rolling out"
    if kind != "Rollback":
        st.set_condition(
            s,
            c.COND_ROLLOUT,
            False,
            "Progressing",
            f'{verb} version {version} on deployment "{dep_name}"',
            generation=gen,
            now=now,
        )
    actions.append(
        PatchDeployment(
            name=dep_name,
            container=deployment_spec.get("container"),
            version=int(version),
            sha256=sha256,
            kind=kind,
        )
    )
    actions.append(
        PostEvent(
            "Normal",
            "RollingOut" if kind != "Rollback" else "RollingBack",
            f'{verb} deployment "{dep_name}" to version {version}',
        )
    )
    return True


def _follow_outside_change(
    b: Mapping[str, Any],
    s: st.Status,
    deployment: Mapping[str, Any],
    notes: list[tuple[str, str, str]],
    *,
    now: Clock,
) -> st.Status | None:
    """No rollout in flight, yet the Deployment finished rolling to another version.

    Someone changed ``MODEL_VERSION`` outside modelwatch, most often by re-applying the
    manifest that first deployed the server. Status follows what serves (fighting a GitOps
    tool over the field would never end); a Warning says what happened and how to choose a
    version (``spec.pinnedVersion``). The next check judges the version that serves.
    """
    current = s.get("currentVersion")
    if current is None:
        return None
    spec = _spec(b)
    container = builders.find_container(deployment, (spec.get("deployment") or {}).get("container"))
    if container is None:
        return None
    version, sha = builders.read_model_env(container)
    if version is None or version == int(current):
        return None
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    if policies.rollout_state(deployment, generation=generation).state != policies.COMPLETE:
        return None  # not serving yet; a stuck change shows in the Deployment's own status
    t = now()
    gen = _generation(b)
    dep_name = (deployment.get("metadata") or {}).get("name")
    message = (
        f'deployment "{dep_name}" serves version {version} (MODEL_VERSION), not version '
        f"{current}: it was changed outside a modelwatch rollout (a re-applied manifest?); "
        "status follows the version that serves. Choose a version with spec.pinnedVersion"
    )
    st.serve_version(s, version, now=t)
    if sha:
        s["currentSha256"] = sha
    else:
        s.pop("currentSha256", None)
    st.set_condition(s, c.COND_ROLLOUT, True, "ChangedOutside", message, generation=gen, now=t)
    st.await_check_of_new_version(
        s, f"version {version} serves; the next check judges it", generation=gen, now=t
    )
    notes.append(("Warning", "VersionChangedOutside", message))
    namespace = str((b.get("metadata") or {}).get("namespace"))
    metrics.CURRENT_VERSION.labels(namespace, str((b.get("metadata") or {}).get("name"))).set(
        version
    )
    return st.finalize(s, spec, generation=gen, now=t)


def handle_deployment(deployment: Mapping[str, Any], *, now: Clock = utcnow) -> None:
    """The serving Deployment changed: finish, or roll back, the rollout in flight."""
    meta = deployment.get("metadata") or {}
    monitor = (meta.get("labels") or {}).get(c.LABEL_MONITOR)
    if not monitor:
        return
    namespace = str(meta.get("namespace"))
    notes: list[tuple[str, str, str]] = []
    actions: list[Action] = []
    applied_args: list[list[str]] = []

    def follow(b: dict[str, Any], s: st.Status) -> st.Status | None:
        notes.clear()
        actions.clear()
        applied_args.clear()
        rollout = s.get("rollout") or {}
        spec = _spec(b)
        if (spec.get("deployment") or {}).get("name") != meta.get("name"):
            return None
        applied_args.append(builders.check_args(b))
        if rollout.get("version") is None:
            return _follow_outside_change(b, s, deployment, notes, now=now)
        if not rollouts.carries_target(
            deployment,
            container=(spec.get("deployment") or {}).get("container"),
            version=int(rollout["version"]),
            sha256=str(rollout.get("sha256") or ""),
        ):
            return None  # the patch has not landed (or was undone): the resync applies it
        if not rollout.get("generation"):
            # Patched but not yet acknowledged: the Deployment's conditions may still speak
            # of the previous rollout. The acknowledgement (or the resync) comes next.
            return None
        state = policies.rollout_state(
            deployment,
            generation=int(rollout.get("generation") or 0),
            started=parse_time(rollout.get("startedAt")),
            now=now(),
        )
        if state.state == policies.PROGRESSING:
            return None
        t = now()
        gen = _generation(b)
        kind = rollout.get("kind")
        version = int(rollout["version"])
        s.pop("rollout", None)
        if state.state == policies.COMPLETE:
            st.serve_version(s, version, now=t)
            if rollout.get("sha256"):
                s["currentSha256"] = rollout["sha256"]
            if kind == "Rollback":
                cond = st.condition(s, c.COND_ROLLOUT)
                st.set_condition(
                    s,
                    c.COND_ROLLOUT,
                    False,
                    "RolledBack",
                    str(cond.get("message") or f"rolled back to version {version}"),
                    generation=gen,
                    now=t,
                )
                notes.append(("Normal", "RolledBack", f"version {version} is serving again"))
            else:
                st.set_condition(
                    s,
                    c.COND_ROLLOUT,
                    True,
                    "RolloutComplete",
                    f"version {version} is serving: {state.message}",
                    generation=gen,
                    now=t,
                )
                st.await_check_of_new_version(
                    s,
                    f"version {version} was rolled out; the next check judges it",
                    generation=gen,
                    now=t,
                )
                if st.condition(s, c.COND_READY).get("reason") in {
                    "RetrainFailed",
                    "RolloutFailed",
                }:
                    st.set_condition(
                        s,
                        c.COND_READY,
                        True,
                        "RolloutComplete",
                        f"version {version} is serving",
                        generation=gen,
                        now=t,
                    )
                notes.append(("Normal", "RolloutComplete", f"version {version} is serving"))
            if kind == "Pin" and s.get("pin"):
                s["pin"] = {**s["pin"], "outcome": "Complete"}
            metrics.CURRENT_VERSION.labels(namespace, str(monitor)).set(version)
            return st.finalize(s, spec, generation=gen, now=t)
        return _fail_rollout(
            b,
            s,
            rollout,
            reason=state.reason,
            message=state.message,
            deployment=deployment,
            notes=notes,
            actions=actions,
            now=t,
        )

    body = kube.update_status(namespace, str(monitor), follow)
    if body is not None:
        acting.perform(body, actions, now=now)
        post_notes(body, notes)
        if applied_args:
            _reapply_cronjob_if_serving_moved(applied_args[0], body)


def post_notes(body: Mapping[str, Any], notes: list[tuple[str, str, str]]) -> None:
    """Post the Events a rollout decision noted, and count promotions and rollbacks (after
    the status write: a closure may run more than once)."""
    namespace, monitor = _ids(body)
    for type_, reason, message in notes:
        if (type_, reason) == ("Normal", "RolloutComplete"):
            metrics.PROMOTIONS.labels(namespace, monitor).inc()
        elif (type_, reason) == ("Warning", "RolledBack"):
            metrics.ROLLBACKS.labels(namespace, monitor).inc()
        events.post(body, type=type_, reason=reason, message=message)


def _fail_rollout(
    b: Mapping[str, Any],
    s: st.Status,
    rollout: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    deployment: Mapping[str, Any] | None,
    notes: list[tuple[str, str, str]],
    actions: list[Action],
    now: dt.datetime,
) -> st.Status:
    """End the rollout in flight as failed (``reason``: ``message``): roll back to the
    previous version when allowed and possible, else say so in RolloutComplete and Ready.
    Pure: the rollback patch goes into ``actions``."""
    spec = _spec(b)
    gen = _generation(b)
    kind = rollout.get("kind")
    version = int(rollout["version"])
    previous = rollout.get("previousVersion")
    rollback = bool((spec.get("deployment") or {}).get("rollbackOnFailure", True))
    if kind == "Pin" and s.get("pin"):
        s["pin"] = {**s["pin"], "outcome": "Failed"}
    s["rollout"] = dict(rollout)  # the rollback reads the failed version from it
    if (
        kind != "Rollback"
        and rollback
        and previous is not None
        and _begin_rollout(
            b,
            s,
            kind="Rollback",
            version=int(previous),
            sha256=str(
                rollout.get("previousSha256") or policies.known_sha256(s, int(previous)) or ""
            ),
            deployment=deployment,
            actions=actions,
            now=now,
        )
    ):
        text = f"version {version} failed ({reason}: {message}); rolled back to version {previous}"
        st.set_condition(s, c.COND_ROLLOUT, False, "RolledBack", text, generation=gen, now=now)
        notes.append(("Warning", "RolledBack", text))
        return st.finalize(s, spec, generation=gen, now=now)
    s.pop("rollout", None)
    cond_reason = "RollbackFailed" if kind == "Rollback" else reason
    text = f"version {version}: {reason}: {message}"
    st.set_condition(s, c.COND_ROLLOUT, False, cond_reason, text, generation=gen, now=now)
    st.set_condition(s, c.COND_READY, False, "RolloutFailed", text, generation=gen, now=now)
    notes.append(("Warning", cond_reason, text))
    return st.finalize(s, spec, generation=gen, now=now)
