"""The outcome of a check: its report in the store, and the compact result the operator reads.

A check ends in one of four results (``kind: check``)::

    ok: true                           a verdict; the report is written
    ok: true,  reason: AwaitingTraffic the serving version served too few rows: no verdict
    ok: true,  reason: NoData          the window is empty (no traffic): no verdict
    ok: false, reason: <failure>       the check could not run (exit code 1)

Only the first writes a report; the others carry ``message``, ``servingVersion`` and
``rows`` counts.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from modelwatch_monitor import contract
from modelwatch_monitor.check import history
from modelwatch_monitor.check.documents import Document, EstimateEntry, MetricEntry
from modelwatch_monitor.check.drift import Counts, Distribution
from modelwatch_monitor.check.engine import Judgement
from modelwatch_monitor.check.history import category_shares
from modelwatch_monitor.check.profile import Profile
from modelwatch_monitor.check.report import clean, write_report
from modelwatch_monitor.check.settings import CheckSettings, report_id_of
from modelwatch_monitor.check.traffic import Traffic
from modelwatch_monitor.check.verdicts import DriftSettings

log = logging.getLogger(__name__)

#: A check's result, as :func:`modelwatch_monitor.contract.write_result` takes it.
Result = Document


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


def report_document(
    settings: CheckSettings,
    judgement: Judgement,
    *,
    profile: Profile,
    traffic: Traffic,
    rows: int,
    mode: str,
    now: dt.datetime,
    shards: int | None = None,
) -> Document:
    """The report (``report.json``) of a check that reached a verdict."""
    verdict = judgement.verdict
    return {
        "schema": 1,
        "kind": "modelwatch-check-report",
        "report_id": settings.report_id or report_id_of(now),
        "model": settings.model,
        "created": now.isoformat(),
        "reference": profile.source,
        "current": settings.current,
        "window": settings.window,
        "mode": mode,
        **({"shards": shards} if shards else {}),
        "rows": row_counts(profile, traffic, rows, judgement.labeled),
        "serving": serving_section(traffic, settings.min_rows),
        "settings": drift_settings_section(settings.drift),
        "dataset_drift": verdict.dataset_drift,
        "drift_share": verdict.drift_share,
        "n_drifted": verdict.n_drifted,
        "n_features": verdict.n_features,
        "features": [v._asdict() for v in verdict.features],
        "quality": list(judgement.findings),
        "performance": judgement.performance,
        "estimated": judgement.estimated,
        "serving_version": traffic.version,
        "categories": category_shares({n: c.summary for n, c in judgement.current.items()}),
    }


def row_counts(profile: Profile, traffic: Traffic, rows: int, labeled: int) -> dict[str, int]:
    """The ``rows`` of the report and the result."""
    return {
        "reference": profile.rows,
        "current": traffic.served_rows,
        "window": rows,
        "labeled": labeled,
    }


def serving_section(traffic: Traffic, min_rows: int) -> Document:
    """The report's ``serving`` section: the judged version and the rows per version."""
    return {
        "version": traffic.version,
        "since": traffic.since.isoformat() if traffic.since else None,
        "basis": traffic.basis,
        "rows": traffic.served_rows,
        "minRows": min_rows,
        "olderRows": traffic.older_rows,
        "byVersion": traffic.history(),
    }


def drift_settings_section(d: DriftSettings) -> Document:
    """The report's ``settings`` section: how drift was tested and decided."""
    return {
        "numericTest": d.numeric_test,
        "categoricalTest": d.categorical_test,
        "pValueThreshold": d.p_value_threshold,
        "correction": d.correction,
        "minEffectSize": d.min_effect_size,
        "driftShareThreshold": d.drift_share_threshold,
        "statisticThreshold": d.statistic_threshold,
    }


def save_report(
    settings: CheckSettings, report: Mapping[str, object], profile: Profile, judgement: Judgement
) -> None:
    """Write the report, its plots of the drifted features and its history section."""
    summaries: dict[str, tuple[Distribution | Counts, Distribution | Counts]] = {}
    for v in judgement.verdict.features:
        r, c = profile.columns[v.name].summary, judgement.current[v.name].summary
        if v.drift and r is not None and c is not None:
            summaries[v.name] = (r, c)
    write_report(settings.output, report, summaries, history=history_of(settings, report))


def history_of(
    settings: CheckSettings, report: Mapping[str, object]
) -> history.HistorySection | None:
    """The report's history section: the past checks in the store, then this one."""
    if not settings.store or not settings.model:
        return None
    try:
        past = history.load_history(
            settings.store,
            settings.model,
            limit=history.MAX_CHECKS - 1,
            exclude=str(report.get("report_id")),
        )
        points = [*past, history.point_of(clean(report))]
        retrains = history.retrain_times(settings.store, settings.model)
        return history.history_section(points, retrains)
    except Exception as exc:  # a view of the past never fails a check
        log.warning("no history in the report: %s", exc)
        return None


# ---------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------


def summary_message(judgement: Judgement) -> str:
    """One line on what the check found: drift, quality, the metric and its estimate."""
    return (
        _drift_message(judgement)
        + f"; {len(judgement.findings)} data-quality findings"
        + _metric_message(judgement.metric)
        + _estimate_message(judgement.estimated)
    )


def _drift_message(judgement: Judgement) -> str:
    verdict = judgement.verdict
    drifted = [v.name for v in verdict.features if v.drift]
    named = ""
    if drifted:
        named = f" ({', '.join(drifted[:3])}{', ...' if len(drifted) > 3 else ''})"
    return (
        f"{verdict.n_drifted} of {verdict.n_features} features drifted{named}"
        f"; dataset drift: {'yes' if verdict.dataset_drift else 'no'}"
    )


def _metric_message(metric: MetricEntry | None) -> str:
    if not metric:
        return ""
    if metric["value"] is None:
        return f"; {metric['name']} undefined: {metric['undefinedReason']}"
    text = f"; {metric['name']} = {metric['value']:.4g}"
    if metric["degraded"]:
        text += " (degraded)"
    elif metric["degraded"] is None:
        text += " (no baseline)"
    return text


def _estimate_message(estimated: EstimateEntry | None) -> str:
    if not estimated or estimated["value"] is None:
        return ""
    text = (
        f"; estimated {estimated['name']} ~ {estimated['value']:.4g} "
        f"[{estimated['lower']:.4g}, {estimated['upper']:.4g}]"
    )
    if estimated["degraded"] and not estimated["overridden"]:
        text += " (degraded)"
    return text


def verdict_result(
    settings: CheckSettings,
    judgement: Judgement,
    *,
    report: Mapping[str, object],
    profile: Profile,
    traffic: Traffic,
    rows: int,
    message: str,
) -> Result:
    """The compact result of a check that reached a verdict (``ok``, no reason)."""
    verdict = judgement.verdict
    return {
        "kind": "check",
        "ok": True,
        "reportId": report["report_id"],
        "reportUri": settings.output,
        "datasetDrift": verdict.dataset_drift,
        "driftShare": round(verdict.drift_share, 6),
        "nDrifted": verdict.n_drifted,
        "nFeatures": verdict.n_features,
        "topFeatures": [
            {
                "name": v.name,
                "test": v.test,
                "statistic": round(v.statistic, 6),
                "pValue": None if v.p_value is None else float(f"{v.p_value:.4g}"),
            }
            for v in verdict.features[:5]
        ],
        "qualityFindings": len(judgement.findings),
        "quality": [f["message"][:200] for f in judgement.findings[:5]],
        "metric": judgement.metric,
        "estimatedMetric": compact_estimate(judgement.estimated),
        "servingVersion": traffic.version,
        "rows": row_counts(profile, traffic, rows, judgement.labeled),
        "message": message,
    }


def compact_estimate(estimated: EstimateEntry | None) -> Document | None:
    """The ``estimatedMetric`` of the compact result: rounded, reason cut short."""
    if not estimated:
        return None
    out = {
        k: round(v, 6) if isinstance(v, float) else v
        for k, v in estimated.items()
        if k != "undefinedReason"
    }
    reason = estimated.get("undefinedReason")
    out["undefinedReason"] = None if reason is None else str(reason)[:200]
    return out


def awaiting_traffic(settings: CheckSettings, traffic: Traffic, *, reference_rows: int) -> Result:
    """The result of a check whose serving version has too little traffic for a verdict.

    Not a failure: the check ran and says so (``ok``, reason ``AwaitingTraffic``). No
    report is written, and no verdict is made from what older versions served.
    """
    message = traffic.awaiting_message(settings.min_rows)
    log.info("no verdict: %s", message)
    return {
        "kind": "check",
        "ok": True,
        "reason": contract.REASON_AWAITING_TRAFFIC,
        "message": message,
        "servingVersion": traffic.version,
        "rows": {
            "reference": reference_rows,
            "current": traffic.served_rows,
            "window": traffic.window_rows,
            "needed": settings.min_rows,
        },
    }


def no_data(settings: CheckSettings, message: str, *, reference_rows: int | None) -> Result:
    """The result of a check whose window is empty: no traffic, so nothing to judge.

    Not a failure: the check ran and says so (``ok``, reason ``NoData``, exit code 0). No
    report is written. ``servingVersion`` is the version the operator named (None when it
    named none: an empty window names no version); ``reference_rows`` None when the
    reference was not read.
    """
    log.info("no verdict: %s", message)
    return {
        "kind": "check",
        "ok": True,
        "reason": contract.REASON_NO_DATA,
        "message": message,
        "servingVersion": settings.serving_version,
        "rows": {
            "reference": reference_rows,
            "current": 0,
            "window": 0,
            "needed": settings.min_rows,
        },
    }


def failure(reason: str, message: str) -> Result:
    """The result of a check that could not run (``ok: false``, exit code 1)."""
    return {"kind": "check", "ok": False, "reason": reason, "message": message}
