"""Status of a ModelMonitor: conditions, phase, printer columns and bookkeeping.

Pure functions. What they write is a plain document (:data:`Status`, the dict that
``kube.update_status`` diffs with :func:`diff` and sends as a JSON merge patch); what they
read is typed: the contract's :class:`~contract.Spec`, its results, and the
:class:`~contract.MonitorStatus` of the document being written (:func:`view`).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import NamedTuple

from modelwatch_monitor import contract
from modelwatch_operator import constants as c
from modelwatch_operator.monitors import read_status
from modelwatch_operator.objects import Document, Manifest
from modelwatch_operator.policies import Decision, classify_check, format_time

#: A status document being written: camelCase keys, as the API server stores it.
Status = Manifest

REASON_NO_BASELINE = "NoBaseline"


class Failure(NamedTuple):
    """A failed Job the contract has no result for (the operator's own reasons:
    ``JobFailed``, ``NoResult``, ``InvalidResult``, a guard's refusal)."""

    kind: str
    reason: str
    message: str


def view(status_doc: Document) -> contract.MonitorStatus:
    """Return the typed reading of a status document (a part that does not parse reads as
    absent, as at the kopf door)."""
    return read_status(status_doc)


def reason_of(status_doc: Document, ctype: str) -> str | None:
    """The reason of condition ``ctype`` in a status document, or None without one."""
    found = view(status_doc).condition(ctype)
    return found.reason if found is not None else None


def message_of(status_doc: Document, ctype: str) -> str:
    """The message of condition ``ctype`` in a status document ("" without one)."""
    found = view(status_doc).condition(ctype)
    return found.message if found is not None else ""


def set_condition(
    status_doc: Status,
    ctype: str,
    value: bool | None,
    reason: str,
    message: str,
    *,
    generation: int,
    now: dt.datetime,
) -> None:
    """Set one metav1.Condition; ``lastTransitionTime`` moves only when the status changes."""
    text = "Unknown" if value is None else ("True" if value else "False")
    current = view(status_doc).conditions
    previous = next((x for x in current if x.type == ctype), None)
    transition = (
        previous.last_transition_time
        if previous is not None and previous.status == text and previous.last_transition_time
        else format_time(now)
    )
    new = {
        "type": ctype,
        "status": text,
        "observedGeneration": int(generation),
        "lastTransitionTime": transition,
        "reason": reason or "Unknown",
        "message": (message or "")[:1024],
    }
    conditions = [x.to_doc() for x in current if x.type != ctype] + [new]
    order = {t: i for i, t in enumerate(c.CONDITION_TYPES)}
    conditions.sort(key=lambda x: order.get(str(x["type"]), len(order)))
    status_doc["conditions"] = conditions


def ensure_condition(
    status_doc: Status,
    ctype: str,
    value: bool | None,
    reason: str,
    message: str,
    *,
    generation: int,
    now: dt.datetime,
) -> None:
    """Set condition ``ctype`` only when status has none yet (its value until a step decides)."""
    if view(status_doc).condition(ctype) is None:
        set_condition(status_doc, ctype, value, reason, message, generation=generation, now=now)


def set_decision(
    status_doc: Status, ctype: str, decision: Decision, *, generation: int, now: dt.datetime
) -> None:
    """Set a condition straight from a policy decision."""
    set_condition(status_doc, ctype, *decision, generation=generation, now=now)


def _is_true(status: contract.MonitorStatus, ctype: str) -> bool:
    found = status.condition(ctype)
    return found is not None and found.status == "True"


def _num(value: float | None) -> str:
    """Format a metric for a message.

    >>> _num(0.4444444444444444), _num(None)
    ('0.4444', 'n/a')
    """
    return "n/a" if value is None else f"{value:.4g}"


def _pct(change: float | None) -> str:
    """Format a relative change for a message.

    >>> _pct(-0.40564653621202496), _pct(None)
    ('-40.6%', 'no baseline')
    """
    return "no baseline" if change is None else f"{change:+.1%}"


def compute_phase(spec: contract.Spec, status: contract.MonitorStatus) -> str:
    """Return the phase shown in ``kubectl get``; the first matching rule wins.

    Suspended; RollingOut while a rollout is in flight; Retraining while a retrain is in
    flight; NoData when the last check found an empty window (no traffic); AwaitingTraffic
    when the serving version has not served enough rows for a verdict; Failed when
    Ready is False; Drifted; Degraded; Healthy once a check passed;
    Pending before the first check.
    """
    if spec.suspend:
        return c.PHASE_SUSPENDED
    if status.rollout is not None:
        return c.PHASE_ROLLING_OUT
    if status.retrain is not None and status.retrain.job:
        return c.PHASE_RETRAINING
    ready = status.condition(c.COND_READY)
    if ready is not None and ready.status == "False":
        if ready.reason == contract.REASON_AWAITING_TRAFFIC:
            return c.PHASE_AWAITING_TRAFFIC
        no_data = ready.reason == contract.REASON_NO_DATA
        return c.PHASE_NO_DATA if no_data else c.PHASE_FAILED
    # Drift outranks degradation: it is the cause users act on first, and labels
    # (hence the metric) arrive later. Both conditions stay in `kubectl describe`.
    if _is_true(status, c.COND_DATA_DRIFT):
        return c.PHASE_DRIFTED
    if _is_true(status, c.COND_DEGRADED):
        return c.PHASE_DEGRADED
    if status.last_check is not None:
        return c.PHASE_HEALTHY
    return c.PHASE_PENDING


def drift_column(result: contract.CheckOk) -> str:
    """Return the DRIFT printer column, e.g. ``"3/50"``.

    >>> drift_column(contract.CheckOk(report_id="r1", dataset_drift=False, drift_share=0.06,
    ...                               n_drifted=3, n_features=50))
    '3/50'
    """
    return f"{result.n_drifted}/{result.n_features}"


def metric_column(metric: contract.MetricSummary | None) -> str:
    """Return the METRIC printer column, e.g. ``"accuracy=0.912"`` or ``"f1=n/a"``.

    >>> metric_column(contract.MetricSummary(name="accuracy", value=0.91234))
    'accuracy=0.912'
    >>> metric_column(contract.MetricSummary(name="f1")), metric_column(None)
    ('f1=n/a', '')
    """
    if metric is None:
        return ""
    shown = "n/a" if metric.value is None else f"{metric.value:.3g}"
    return f"{metric.name}={shown}"


def estimated_column(estimated: contract.EstimateSummary | None) -> str:
    """Return the ESTIMATED printer column, e.g. ``"accuracy~0.912[0.89,0.93]"``.

    >>> E = contract.EstimateSummary
    >>> estimated_column(E(name="accuracy", value=0.9123, lower=0.89, upper=0.93))
    'accuracy~0.912[0.89,0.93]'
    >>> estimated_column(E(name="roc_auc")), estimated_column(None)
    ('roc_auc~n/a', '')
    """
    if estimated is None:
        return ""
    if estimated.value is None:
        return f"{estimated.name}~n/a"
    band = f"[{_num3(estimated.lower)},{_num3(estimated.upper)}]"
    return f"{estimated.name}~{estimated.value:.3g}{band}"


def _num3(value: float | None) -> str:
    return "?" if value is None else f"{value:.3g}"


def _degraded_condition(
    metric: contract.MetricSummary | None, estimated: contract.EstimateSummary | None
) -> tuple[bool | None, str, str]:
    """PerformanceDegraded from the realized metric; without labels, from the estimate.

    The realized metric decides whenever it is defined. A metric without a baseline is
    Unknown with reason ``NoBaseline``. An estimate says so in its reason
    (``EstimatedDegraded``, ``EstimateWithinBounds``).
    """
    if metric is not None and metric.value is not None:
        text = (
            f"{metric.name} {_num(metric.value)} vs baseline "
            f"{_num(metric.baseline)} ({_pct(metric.relative_change)})"
        )
        if metric.degraded:
            return True, "MetricDegraded", text
        if metric.degraded is False:
            return False, "MetricWithinBounds", text
        return None, REASON_NO_BASELINE, _no_baseline(metric)
    if estimated is not None and estimated.value is not None:
        text = (
            f"estimated {estimated.name} {_num(estimated.value)} "
            f"[{_num(estimated.lower)}, {_num(estimated.upper)}] vs baseline "
            f"{_num(estimated.baseline)} ({_pct(estimated.relative_change)}); "
            "an estimate from the model's probabilities until labels cover the window"
        )
        if estimated.degraded:
            return True, "EstimatedDegraded", text
        if estimated.degraded is False:
            return False, "EstimateWithinBounds", text
        return None, REASON_NO_BASELINE, _no_baseline(estimated)
    reason = (metric.undefined_reason if metric is not None else None) or "no labels joined"
    return None, "MetricUndefined", reason


def _no_baseline(metric: contract.MetricSummary | contract.EstimateSummary) -> str:
    kind = "estimated " if isinstance(metric, contract.EstimateSummary) and metric.estimated else ""
    return (
        f"{kind}{metric.name} {_num(metric.value)} has no baseline, so it is not "
        "judged: set spec.performance.baseline, or give the reference the target, prediction "
        "and proba_<class> columns"
    )


def diff(old: Document, new: Document) -> Manifest:
    """Return the top-level JSON merge patch turning ``old`` into ``new`` (None deletes)."""
    patch: Manifest = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch


def finalize(
    status_doc: Status, spec: contract.Spec, *, generation: int, now: dt.datetime
) -> Status:
    """Recompute derived fields (phase, observedGeneration) after any change."""
    ensure_condition(
        status_doc,
        c.COND_READY,
        None,
        "AwaitingFirstCheck",
        "no check has run yet",
        generation=generation,
        now=now,
    )
    status_doc["phase"] = compute_phase(spec, view(status_doc))
    status_doc["observedGeneration"] = int(generation)
    return status_doc


def _history_doc(entry: contract.HistoryEntry) -> Manifest:
    """One ``status.history`` entry as written (``estimatedDegraded`` only when true)."""
    return _prune(
        {
            "time": entry.time,
            "reportId": entry.report_id,
            "drift": entry.drift,
            "degraded": entry.degraded,
            "estimatedDegraded": entry.estimated_degraded or None,
        }
    )


def _rows(rows: Mapping[str, int | None] | None) -> dict[str, int] | None:
    return _prune(dict(rows or {})) or None


def record_check(
    status_doc: Status,
    spec: contract.Spec,
    result: contract.CheckOk,
    *,
    job: str,
    generation: int,
    now: dt.datetime,
) -> Status:
    """Fold a check with a verdict into status: lastCheck, columns, history, conditions."""
    current = view(status_doc)
    finished = format_time(now)
    metric, estimated = result.metric, result.estimated_metric
    status_doc["lastCheck"] = _prune(
        {
            "time": finished,
            "job": job,
            "reportId": result.report_id,
            "reportUri": result.report_uri,
            "servingVersion": result.serving_version,
            "datasetDrift": result.dataset_drift,
            "driftShare": result.drift_share,
            "nDrifted": result.n_drifted,
            "nFeatures": result.n_features,
            "qualityFindings": result.quality_findings,
            "topFeatures": [f.to_doc() for f in result.top_features[:5]],
            "metric": metric.to_doc() if metric is not None else None,
            "estimatedMetric": estimated.to_doc() if estimated is not None else None,
            "rows": _rows(result.rows),
        }
    )
    status_doc["lastCheckJob"] = job
    status_doc["drift"] = drift_column(result)
    status_doc["metric"] = metric_column(metric)
    if estimated is not None:
        status_doc["estimatedMetric"] = estimated_column(estimated)
    else:
        status_doc.pop("estimatedMetric", None)
    violation = classify_check(result)
    entry = contract.HistoryEntry(
        time=finished,
        report_id=result.report_id,
        drift=violation.drift,
        degraded=violation.degraded,
        estimated_degraded=violation.estimated_degraded,
    )
    history = [_history_doc(h) for h in (*current.history, entry)]
    status_doc["history"] = history[-c.CHECK_HISTORY_LIMIT :]
    drift_text = f"{drift_column(result)} features drifted (share {result.drift_share})"
    if violation.drift:
        top = ", ".join(f.name for f in result.top_features[:3])
        drift = (True, "DriftDetected", f"{drift_text}; top: {top}")
    else:
        drift = (False, "NoDrift", drift_text)
    set_condition(status_doc, c.COND_DATA_DRIFT, *drift, generation=generation, now=now)
    degraded = _degraded_condition(metric, estimated)
    set_condition(status_doc, c.COND_DEGRADED, *degraded, generation=generation, now=now)
    ready = (True, "CheckSucceeded", f"check {result.report_id} succeeded")
    set_condition(status_doc, c.COND_READY, *ready, generation=generation, now=now)
    return finalize(status_doc, spec, generation=generation, now=now)


def record_awaiting_traffic(
    status_doc: Status,
    spec: contract.Spec,
    result: contract.CheckNoVerdict,
    *,
    job: str,
    generation: int,
    now: dt.datetime,
) -> Status:
    """Fold a check that gave no verdict: an empty window (``NoData``), or too little of
    the serving version's traffic (``AwaitingTraffic``).

    No verdict: drift and degradation are Unknown, the DRIFT and METRIC columns (which
    described an older verdict) are cleared, and nothing joins the M-of-N history, so no
    retrain starts from it. Ready is False with the result's reason (so the phase is
    ``NoData`` or ``AwaitingTraffic``) and its message; the next check with a verdict
    clears it.
    """
    reason = result.reason
    if reason == contract.REASON_NO_DATA:
        message = f"{job}: {reason}: {result.message}"
    else:
        message = f"{job}: {result.message or 'too little traffic for a verdict'}"
    status_doc["lastCheck"] = _prune(
        {
            "time": format_time(now),
            "job": job,
            "reason": reason,
            "servingVersion": result.serving_version,
            "rows": _rows(result.rows),
        }
    )
    status_doc["lastCheckJob"] = job
    status_doc.pop("drift", None)
    status_doc.pop("metric", None)
    for ctype in (c.COND_DATA_DRIFT, c.COND_DEGRADED):
        set_condition(status_doc, ctype, None, reason, message, generation=generation, now=now)
    set_condition(status_doc, c.COND_READY, False, reason, message, generation=generation, now=now)
    return finalize(status_doc, spec, generation=generation, now=now)


def is_stale_check(status: contract.MonitorStatus, result: contract.CheckResult) -> bool:
    """True when a check judged another version than the one that serves now.

    A check Job created before a rollout completed still carries the old
    ``--serving-version``; its verdict is on a version that no longer serves. A failed
    check names no version, so it is never stale.

    >>> serving = contract.MonitorStatus(current_version=2)
    >>> is_stale_check(serving, contract.CheckNoVerdict(reason="NoData", serving_version=1))
    True
    >>> is_stale_check(serving, contract.CheckNoVerdict(reason="NoData", serving_version=2))
    False
    >>> is_stale_check(contract.MonitorStatus(),
    ...                contract.CheckNoVerdict(reason="NoData", serving_version=1))
    False
    """
    if isinstance(result, contract.CheckFailed):
        return False
    judged, serving = result.serving_version, status.current_version
    return judged is not None and serving is not None and judged != serving


def record_stale_check(
    status_doc: Status, spec: contract.Spec, *, job: str, generation: int, now: dt.datetime
) -> Status:
    """Read a check of a version that no longer serves: remember the Job, fold nothing."""
    status_doc["lastCheckJob"] = job
    return finalize(status_doc, spec, generation=generation, now=now)


def serve_version(status_doc: Status, version: int, *, now: dt.datetime) -> None:
    """Record that ``version`` serves; ``servingSince`` moves only when the version changes.

    A rollback to the version that served all along keeps its ``servingSince``; the
    version the operator finds serving when it takes over the Deployment gets none (its
    traffic is told apart by ``model_version`` alone).

    >>> s = {"currentVersion": 1}
    >>> t = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
    >>> serve_version(s, 2, now=t); s
    {'currentVersion': 2, 'servingSince': '2026-11-29T12:00:00Z'}
    >>> serve_version(s, 2, now=t + dt.timedelta(hours=1)); s["servingSince"]
    '2026-11-29T12:00:00Z'
    """
    if view(status_doc).current_version != version:
        status_doc["servingSince"] = format_time(now)
    status_doc["currentVersion"] = version


def record_failure(
    status_doc: Status,
    spec: contract.Spec,
    failure: contract.CheckFailed | contract.RetrainFailed | Failure,
    *,
    job: str,
    generation: int,
    now: dt.datetime,
) -> Status:
    """Record a failed check or retrain Job: lastFailure and Ready=False with its message.

    ``failure`` is the Job's failed result, or a :class:`Failure` the operator names. A
    failed check with reason ``NoData`` (images before an empty window was a result with
    no verdict) shows as NoData, not as a broken check.
    """
    kind, reason, message = failure.kind, failure.reason, failure.message
    status_doc["lastFailure"] = {
        "time": format_time(now),
        "job": job,
        "kind": kind,
        "reason": reason,
        "message": message[:1024],
    }
    if kind != c.JOB_KIND_CHECK:
        ready_reason = "RetrainFailed"
    elif reason == contract.REASON_NO_DATA:
        ready_reason = reason  # no traffic in the window: not a broken check
    else:
        ready_reason = "CheckFailed"
    set_condition(
        status_doc,
        c.COND_READY,
        False,
        ready_reason,
        f"{job}: {reason}: {message}",
        generation=generation,
        now=now,
    )
    return finalize(status_doc, spec, generation=generation, now=now)


def _prune(doc: Manifest) -> Manifest:
    """Drop None values so nothing undeclared or null reaches the apiserver."""
    return {k: v for k, v in doc.items() if v is not None}


def await_check_of_new_version(
    status_doc: Status, message: str, *, generation: int, now: dt.datetime
) -> None:
    """Another version serves: restart the violation count and mark drift and degradation
    unknown (``AwaitingCheck``, with ``message``) until the next check judges it."""
    status_doc["history"] = []
    for ctype in (c.COND_DATA_DRIFT, c.COND_DEGRADED):
        set_condition(
            status_doc, ctype, None, "AwaitingCheck", message, generation=generation, now=now
        )


def remember_version(
    status_doc: Status,
    *,
    version: int,
    sha256: str,
    now: dt.datetime,
    score: float | None = None,
    metric: str | None = None,
    libraries: Document | None = None,
) -> None:
    """Add (or refresh) one known version, its sha256 and the releases it was trained with.

    ``libraries`` is what the retrain result carries beyond the contract (untrusted: only
    short release strings are kept).
    """
    current = view(status_doc)
    versions = [v.to_doc() for v in current.versions if v.version != version]
    versions.append(
        _prune(
            {
                "version": int(version),
                "sha256": sha256,
                "createdAt": format_time(now),
                "score": score,
                "metric": metric,
                "libraries": _library_versions(libraries),
            }
        )
    )
    versions.sort(key=lambda v: int(v["version"]))
    status_doc["versions"] = versions[-c.KNOWN_VERSIONS_LIMIT :]
    status_doc["latestVersion"] = max(current.latest_version or 0, int(version))


def _library_versions(libraries: Document | None) -> dict[str, str] | None:
    """The training releases as short strings (a result is untrusted input)."""
    if not isinstance(libraries, Mapping):
        return None
    out = {
        str(k)[:40]: str(v)[:40]
        for k, v in libraries.items()
        if isinstance(v, str | int | float) and not isinstance(v, bool)
    }
    return dict(sorted(out.items())[:16]) or None


def copy_status(body: Document) -> Status:
    """Return a deep copy of a body's status document, to be written."""
    return copy.deepcopy(dict(body.get("status") or {}))
