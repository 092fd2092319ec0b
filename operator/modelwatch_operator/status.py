"""Status of a ModelMonitor: conditions, phase, printer columns and bookkeeping.

Pure functions over plain dicts. Handlers read the current status, call these to build the
new one, and write the difference with :func:`diff` as a JSON merge patch.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

from modelwatch_monitor import contract
from modelwatch_operator import constants as c
from modelwatch_operator.policies import Decision, classify_check, format_time

Status = dict[str, Any]


def condition(status: Mapping[str, Any], ctype: str) -> Mapping[str, Any]:
    """Return the condition of type ``ctype``, or an empty mapping."""
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            found: Mapping[str, Any] = cond
            return found
    return {}


def set_condition(
    status: Status,
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
    conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
    previous = condition(status, ctype)
    transition = (
        previous.get("lastTransitionTime")
        if previous.get("status") == text and previous.get("lastTransitionTime")
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
    conditions = [x for x in conditions if x.get("type") != ctype] + [new]
    order = {t: i for i, t in enumerate(c.CONDITION_TYPES)}
    conditions.sort(key=lambda x: order.get(str(x.get("type")), len(order)))
    status["conditions"] = conditions


def ensure_condition(
    status: Status,
    ctype: str,
    value: bool | None,
    reason: str,
    message: str,
    *,
    generation: int,
    now: dt.datetime,
) -> None:
    """Set condition ``ctype`` only when status has none yet (its value until a step decides)."""
    if not condition(status, ctype):
        set_condition(status, ctype, value, reason, message, generation=generation, now=now)


def set_decision(
    status: Status, ctype: str, decision: Decision, *, generation: int, now: dt.datetime
) -> None:
    """Set a condition straight from a policy decision."""
    set_condition(
        status,
        ctype,
        decision.fire,
        decision.reason,
        decision.message,
        generation=generation,
        now=now,
    )


def is_true(status: Mapping[str, Any], ctype: str) -> bool:
    return condition(status, ctype).get("status") == "True"


def _num(value: Any) -> str:
    """Format a metric for a message.

    >>> _num(0.4444444444444444), _num(None)
    ('0.4444', 'n/a')
    """
    return f"{value:.4g}" if isinstance(value, int | float) else "n/a"


def _pct(change: Any) -> str:
    """Format a relative change for a message.

    >>> _pct(-0.40564653621202496), _pct(None)
    ('-40.6%', 'no baseline')
    """
    return f"{change:+.1%}" if isinstance(change, int | float) else "no baseline"


def compute_phase(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    """Return the phase shown in ``kubectl get``; the first matching rule wins.

    Suspended; RollingOut while a rollout is in flight; Retraining while a retrain is in
    flight; NoData when the last check found an empty window (no traffic); AwaitingTraffic
    when the serving version has not served enough rows for a verdict; Failed when
    Ready is False; Drifted; Degraded; Healthy once a check passed;
    Pending before the first check.
    """
    if spec.get("suspend"):
        return c.PHASE_SUSPENDED
    if (status.get("rollout") or {}).get("version") is not None:
        return c.PHASE_ROLLING_OUT
    if (status.get("retrain") or {}).get("job"):
        return c.PHASE_RETRAINING
    ready = condition(status, c.COND_READY)
    if ready.get("status") == "False":
        if ready.get("reason") == contract.REASON_AWAITING_TRAFFIC:
            return c.PHASE_AWAITING_TRAFFIC
        no_data = ready.get("reason") == contract.REASON_NO_DATA
        return c.PHASE_NO_DATA if no_data else c.PHASE_FAILED
    # Drift outranks degradation: it is the cause users act on first, and labels
    # (hence the metric) arrive later. Both conditions stay in `kubectl describe`.
    if is_true(status, c.COND_DATA_DRIFT):
        return c.PHASE_DRIFTED
    if is_true(status, c.COND_DEGRADED):
        return c.PHASE_DEGRADED
    if status.get("lastCheck"):
        return c.PHASE_HEALTHY
    return c.PHASE_PENDING


def drift_column(result: Mapping[str, Any]) -> str:
    """Return the DRIFT printer column, e.g. ``"3/50"``.

    >>> drift_column({"nDrifted": 3, "nFeatures": 50})
    '3/50'
    """
    return f"{int(result.get('nDrifted') or 0)}/{int(result.get('nFeatures') or 0)}"


def metric_column(metric: Mapping[str, Any] | None) -> str:
    """Return the METRIC printer column, e.g. ``"accuracy=0.912"`` or ``"f1=n/a"``.

    >>> metric_column({"name": "accuracy", "value": 0.91234})
    'accuracy=0.912'
    >>> metric_column(None)
    ''
    """
    if not metric or not metric.get("name"):
        return ""
    value = metric.get("value")
    shown = "n/a" if value is None else f"{float(value):.3g}"
    return f"{metric['name']}={shown}"


def estimated_column(estimated: Mapping[str, Any] | None) -> str:
    """Return the ESTIMATED printer column, e.g. ``"accuracy~0.912[0.89,0.93]"``.

    >>> estimated_column({"name": "accuracy", "value": 0.9123, "lower": 0.89, "upper": 0.93})
    'accuracy~0.912[0.89,0.93]'
    >>> estimated_column({"name": "roc_auc", "value": None})
    'roc_auc~n/a'
    >>> estimated_column(None)
    ''
    """
    if not estimated or not estimated.get("name"):
        return ""
    value = estimated.get("value")
    if value is None:
        return f"{estimated['name']}~n/a"
    band = f"[{_num3(estimated.get('lower'))},{_num3(estimated.get('upper'))}]"
    return f"{estimated['name']}~{float(value):.3g}{band}"


def _num3(value: Any) -> str:
    return f"{float(value):.3g}" if isinstance(value, int | float) else "?"


def _degraded_condition(
    metric: Mapping[str, Any] | None, estimated: Mapping[str, Any] | None
) -> tuple[bool | None, str, str]:
    """PerformanceDegraded from the realized metric; without labels, from the estimate.

    The realized metric decides whenever it is defined. A metric without a baseline is
    Unknown with reason ``NoBaseline``. An estimate says so in its reason
    (``EstimatedDegraded``, ``EstimateWithinBounds``).
    """
    if metric and metric.get("value") is not None:
        text = (
            f"{metric.get('name')} {_num(metric.get('value'))} vs baseline "
            f"{_num(metric.get('baseline'))} ({_pct(metric.get('relativeChange'))})"
        )
        if metric.get("degraded"):
            return True, "MetricDegraded", text
        if metric.get("degraded") is False:
            return False, "MetricWithinBounds", text
        return None, REASON_NO_BASELINE, _no_baseline(metric)
    if estimated and estimated.get("value") is not None:
        text = (
            f"estimated {estimated.get('name')} {_num(estimated.get('value'))} "
            f"[{_num(estimated.get('lower'))}, {_num(estimated.get('upper'))}] vs baseline "
            f"{_num(estimated.get('baseline'))} ({_pct(estimated.get('relativeChange'))}); "
            "an estimate from the model's probabilities until labels cover the window"
        )
        if estimated.get("degraded"):
            return True, "EstimatedDegraded", text
        if estimated.get("degraded") is False:
            return False, "EstimateWithinBounds", text
        return None, REASON_NO_BASELINE, _no_baseline(estimated)
    reason = (metric or {}).get("undefinedReason") or "no labels joined"
    return None, "MetricUndefined", str(reason)


REASON_NO_BASELINE = "NoBaseline"


def _no_baseline(metric: Mapping[str, Any]) -> str:
    kind = "estimated " if metric.get("estimated") else ""
    return (
        f"{kind}{metric.get('name')} {_num(metric.get('value'))} has no baseline, so it is not "
        "judged: set spec.performance.baseline, or give the reference the target, prediction "
        "and proba_<class> columns"
    )


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Return the top-level JSON merge patch turning ``old`` into ``new`` (None deletes)."""
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch


def finalize(
    status: Status, spec: Mapping[str, Any], *, generation: int, now: dt.datetime
) -> Status:
    """Recompute derived fields (phase, observedGeneration) after any change."""
    ensure_condition(
        status,
        c.COND_READY,
        None,
        "AwaitingFirstCheck",
        "no check has run yet",
        generation=generation,
        now=now,
    )
    status["phase"] = compute_phase(spec, status)
    status["observedGeneration"] = int(generation)
    return status


def record_check(
    status: Status,
    spec: Mapping[str, Any],
    result: Mapping[str, Any],
    *,
    job: str,
    generation: int,
    now: dt.datetime,
) -> Status:
    """Fold a successful check result into status: lastCheck, columns, history, conditions."""
    finished = format_time(now)
    metric = result.get("metric") or None
    estimated = result.get("estimatedMetric") or None
    status["lastCheck"] = _prune(
        {
            "time": finished,
            "job": job,
            "reportId": result.get("reportId"),
            "reportUri": result.get("reportUri"),
            "servingVersion": result.get("servingVersion"),
            "datasetDrift": bool(result.get("datasetDrift")),
            "driftShare": result.get("driftShare"),
            "nDrifted": result.get("nDrifted"),
            "nFeatures": result.get("nFeatures"),
            "qualityFindings": result.get("qualityFindings"),
            "topFeatures": [_prune(dict(f)) for f in (result.get("topFeatures") or [])[:5]],
            "metric": _prune(dict(metric)) if metric else None,
            "estimatedMetric": _prune(dict(estimated)) if estimated else None,
            "rows": _prune(dict(result.get("rows") or {})) or None,
        }
    )
    status["lastCheckJob"] = job
    status["drift"] = drift_column(result)
    status["metric"] = metric_column(metric)
    if estimated:
        status["estimatedMetric"] = estimated_column(estimated)
    else:
        status.pop("estimatedMetric", None)
    violation = classify_check(result)
    history = list(status.get("history") or [])
    history.append(
        _prune(
            {
                "time": finished,
                "reportId": result.get("reportId"),
                "drift": violation.drift,
                "degraded": violation.degraded,
                "estimatedDegraded": violation.estimated_degraded or None,
            }
        )
    )
    status["history"] = history[-c.CHECK_HISTORY_LIMIT :]
    share = result.get("driftShare")
    top = ", ".join(str(f.get("name")) for f in (result.get("topFeatures") or [])[:3])
    if violation.drift:
        set_condition(
            status,
            c.COND_DATA_DRIFT,
            True,
            "DriftDetected",
            f"{drift_column(result)} features drifted (share {share}); top: {top}",
            generation=generation,
            now=now,
        )
    else:
        set_condition(
            status,
            c.COND_DATA_DRIFT,
            False,
            "NoDrift",
            f"{drift_column(result)} features drifted (share {share})",
            generation=generation,
            now=now,
        )
    value, reason, message = _degraded_condition(metric, estimated)
    set_condition(status, c.COND_DEGRADED, value, reason, message, generation=generation, now=now)
    set_condition(
        status,
        c.COND_READY,
        True,
        "CheckSucceeded",
        f"check {result.get('reportId')} succeeded",
        generation=generation,
        now=now,
    )
    return finalize(status, spec, generation=generation, now=now)


def record_awaiting_traffic(
    status: Status,
    spec: Mapping[str, Any],
    result: Mapping[str, Any],
    *,
    job: str,
    generation: int,
    now: dt.datetime,
) -> Status:
    """Fold a check that had too little of the serving version's traffic for a verdict.

    No verdict: drift and degradation are Unknown, the DRIFT and METRIC columns (which
    described an older verdict) are cleared, and nothing joins the M-of-N history, so no
    retrain starts from it. Ready is False with reason ``AwaitingTraffic`` and the row
    counts, like ``NoData``; the next check with enough traffic clears it.
    """
    message = f"{job}: {result.get('message') or 'too little traffic for a verdict'}"
    status["lastCheck"] = _prune(
        {
            "time": format_time(now),
            "job": job,
            "reason": contract.REASON_AWAITING_TRAFFIC,
            "servingVersion": result.get("servingVersion"),
            "rows": _prune(dict(result.get("rows") or {})) or None,
        }
    )
    status["lastCheckJob"] = job
    status.pop("drift", None)
    status.pop("metric", None)
    for ctype in (c.COND_DATA_DRIFT, c.COND_DEGRADED):
        set_condition(
            status,
            ctype,
            None,
            contract.REASON_AWAITING_TRAFFIC,
            message,
            generation=generation,
            now=now,
        )
    set_condition(
        status,
        c.COND_READY,
        False,
        contract.REASON_AWAITING_TRAFFIC,
        message,
        generation=generation,
        now=now,
    )
    return finalize(status, spec, generation=generation, now=now)


def is_stale_check(status: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
    """True when a check judged another version than the one that serves now.

    A check Job created before a rollout completed still carries the old
    ``--serving-version``; its verdict is on a version that no longer serves.

    >>> is_stale_check({"currentVersion": 2}, {"servingVersion": 1})
    True
    >>> is_stale_check({"currentVersion": 2}, {"servingVersion": 2})
    False
    >>> is_stale_check({}, {"servingVersion": 1}), is_stale_check({"currentVersion": 2}, {})
    (False, False)
    """
    judged, serving = result.get("servingVersion"), status.get("currentVersion")
    return judged is not None and serving is not None and int(judged) != int(serving)


def record_stale_check(
    status: Status,
    spec: Mapping[str, Any],
    result: Mapping[str, Any],
    *,
    job: str,
    generation: int,
    now: dt.datetime,
) -> Status:
    """Read a check of a version that no longer serves: remember the Job, fold nothing."""
    status["lastCheckJob"] = job
    return finalize(status, spec, generation=generation, now=now)


def serve_version(status: Status, version: int, *, now: dt.datetime) -> None:
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
    if status.get("currentVersion") != version:
        status["servingSince"] = format_time(now)
    status["currentVersion"] = version


def record_failure(
    status: Status,
    spec: Mapping[str, Any],
    *,
    kind: str,
    job: str,
    reason: str,
    message: str,
    generation: int,
    now: dt.datetime,
) -> Status:
    """Record a failed check or retrain Job: lastFailure and Ready=False with its message."""
    status["lastFailure"] = {
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
        status,
        c.COND_READY,
        False,
        ready_reason,
        f"{job}: {reason}: {message}",
        generation=generation,
        now=now,
    )
    return finalize(status, spec, generation=generation, now=now)


def _prune(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop None values so nothing undeclared or null reaches the apiserver."""
    return {k: v for k, v in doc.items() if v is not None}


def await_check_of_new_version(
    status: Status, message: str, *, generation: int, now: dt.datetime
) -> None:
    """Another version serves: restart the violation count and mark drift and degradation
    unknown (``AwaitingCheck``, with ``message``) until the next check judges it."""
    status["history"] = []
    for ctype in (c.COND_DATA_DRIFT, c.COND_DEGRADED):
        set_condition(status, ctype, None, "AwaitingCheck", message, generation=generation, now=now)


def remember_version(
    status: Status,
    *,
    version: int,
    sha256: str,
    now: dt.datetime,
    score: float | None = None,
    metric: str | None = None,
    libraries: Mapping[str, Any] | None = None,
) -> None:
    """Add (or refresh) one known version, its sha256 and the releases it was trained with."""
    versions = [v for v in status.get("versions") or [] if v.get("version") != version]
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
    status["versions"] = versions[-c.KNOWN_VERSIONS_LIMIT :]
    status["latestVersion"] = max(int(status.get("latestVersion") or 0), int(version))


def _library_versions(libraries: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The training releases as short strings (a result is untrusted input)."""
    if not isinstance(libraries, Mapping):
        return None
    out = {
        str(k)[:40]: str(v)[:40]
        for k, v in libraries.items()
        if isinstance(v, str | int | float) and not isinstance(v, bool)
    }
    return dict(sorted(out.items())[:16]) or None


def copy_status(body: Mapping[str, Any]) -> Status:
    return copy.deepcopy(dict(body.get("status") or {}))
