"""Prometheus metrics of the operator, served on ``constants.METRICS_PORT``.

Per-monitor series carry the labels ``namespace`` and ``monitor`` (the ModelMonitor's).
Counters count what the operator did; the gauges of :func:`show_monitor` are read from the
monitor's status, so they follow each status write and come back from status after a
restart or a failover; :func:`forget_monitor` drops them all with the monitor.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
from collections.abc import Mapping
from typing import Final

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.metrics import MetricWrapperBase

from modelwatch_monitor import contract
from modelwatch_operator import constants as c
from modelwatch_operator import objects, policies
from modelwatch_operator.monitors import Monitor

LABELS = ("namespace", "monitor")

CHECKS = Counter(
    "modelwatch_checks_total", "Check Jobs whose result the operator read.", [*LABELS, "outcome"]
)
DRIFT_SHARE = Gauge(
    "modelwatch_drift_share", "Share of drifted features at the last check.", LABELS
)
DRIFTED_FEATURES = Gauge(
    "modelwatch_drifted_features", "Drifted features at the last check.", LABELS
)
METRIC_VALUE = Gauge(
    "modelwatch_metric_value", "Performance metric at the last check.", [*LABELS, "metric"]
)
ESTIMATED_METRIC = Gauge(
    "modelwatch_estimated_metric_value",
    "Performance metric estimated without labels at the last check (bound: estimate, lower, "
    "upper).",
    [*LABELS, "metric", "bound"],
)
RETRAINS = Counter(
    "modelwatch_retrains_total", "Retrain Jobs started and finished.", [*LABELS, "event"]
)
PROMOTIONS = Counter("modelwatch_promotions_total", "Versions rolled out.", LABELS)
ROLLBACKS = Counter("modelwatch_rollbacks_total", "Rollouts rolled back.", LABELS)
RECONCILE_ERRORS = Counter("modelwatch_reconcile_errors_total", "Handler errors.", ["handler"])
CURRENT_VERSION = Gauge("modelwatch_current_version", "The serving model version.", LABELS)
RESULT_LATENCY = Histogram(
    "modelwatch_job_result_latency_seconds",
    "From a Job's completion to the operator's status update.",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
PHASE = Gauge(
    "modelwatch_monitor_phase",
    "1 for the monitor's status.phase, 0 for every other phase.",
    [*LABELS, "phase"],
)
CONSECUTIVE_VIOLATIONS = Gauge(
    "modelwatch_consecutive_violations",
    "Checks with a verdict in a row, newest first, that showed the violation "
    "(kind: drift, degraded, estimated_degraded).",
    [*LABELS, "kind"],
)
LAST_SUCCESSFUL_CHECK = Gauge(
    "modelwatch_last_successful_check_timestamp_seconds",
    "Unix time of the last check that gave a verdict.",
    LABELS,
)
CHECK_INTERVAL = Gauge(
    "modelwatch_check_interval_seconds",
    "The longest time between two runs of spec.schedule.",
    LABELS,
)
CHECK_DURATION = Gauge(
    "modelwatch_check_duration_seconds",
    "completionTime - startTime of the last check Job that completed.",
    LABELS,
)
CIRCUIT_OPEN = Gauge(
    "modelwatch_retrain_circuit_open",
    "1 while the retrain circuit breaker is open (challengers kept losing), else 0.",
    LABELS,
)
BUDGET_EXHAUSTED = Gauge(
    "modelwatch_retrain_budget_exhausted",
    "1 when the last retrain decision was RetrainBudgetExhausted, else 0.",
    LABELS,
)
MONITOR_INFO = Gauge(
    "modelwatch_monitor_info",
    "Always 1: the monitor's model (spec.model.name) and serving Deployment.",
    [*LABELS, "model", "deployment"],
)
LEADER = Gauge(
    "modelwatch_operator_leader",
    "1 on the replica that handles resources, 0 on one standing by (kopf peering paused).",
)

_COUNTERS: Final = {
    "checks": CHECKS,
    "retrains": RETRAINS,
    "promotions": PROMOTIONS,
    "rollbacks": ROLLBACKS,
}
#: The label values each counter starts at 0 with (``increase()`` misses a first increment).
_COUNTER_LABELS: Final[Mapping[str, tuple[str | None, ...]]] = {
    "checks": ("ok", "failed", "awaiting_traffic", "stale"),
    "retrains": ("started", "succeeded", "failed"),
    "promotions": (None,),
    "rollbacks": (None,),
}
PHASES: Final = (
    c.PHASE_PENDING,
    c.PHASE_HEALTHY,
    c.PHASE_DRIFTED,
    c.PHASE_DEGRADED,
    c.PHASE_RETRAINING,
    c.PHASE_ROLLING_OUT,
    c.PHASE_FAILED,
    c.PHASE_NO_DATA,
    c.PHASE_AWAITING_TRAFFIC,
    c.PHASE_SUSPENDED,
)
VIOLATION_KINDS: Final = ("drift", "degraded", "estimated_degraded")
#: Every per-monitor family: what :func:`forget_monitor` drops.
_PER_MONITOR: Final[tuple[MetricWrapperBase, ...]] = (
    CHECKS,
    DRIFT_SHARE,
    DRIFTED_FEATURES,
    METRIC_VALUE,
    ESTIMATED_METRIC,
    RETRAINS,
    PROMOTIONS,
    ROLLBACKS,
    CURRENT_VERSION,
    PHASE,
    CONSECUTIVE_VIOLATIONS,
    LAST_SUCCESSFUL_CHECK,
    CHECK_INTERVAL,
    CHECK_DURATION,
    CIRCUIT_OPEN,
    BUDGET_EXHAUSTED,
    MONITOR_INFO,
)
#: The completionTime of the check Job whose duration each monitor shows (a restarted
#: operator lists old Jobs in any order: an older one must not replace a newer one).
_CHECK_SHOWN: dict[tuple[str, str], dt.datetime] = {}


def count(namespace: str, monitor: str, counter: str, label: str | None = None) -> None:
    """Add one to ``counter`` (a key of the actions' ``Counter``) of one monitor."""
    family = _COUNTERS[counter]
    labels = (namespace, monitor) if label is None else (namespace, monitor, label)
    family.labels(*labels).inc()


def _children(family: MetricWrapperBase) -> list[tuple[str, ...]]:
    """The label values of ``family``'s series (private: no public API lists children)."""
    return [tuple(key) for key in family._metrics]


def _drop(family: MetricWrapperBase, labels: tuple[str, ...]) -> None:
    if labels in family._metrics:  # private: remove() raises on a series never set
        family.remove(*labels)


def show_check(namespace: str, monitor: str, result: contract.CheckOk) -> None:
    """Set the gauges of a check's verdict; an estimate no longer given is removed."""
    _show_verdict(namespace, monitor, result.drift_share, result.n_drifted, result.metric)
    _show_estimate(namespace, monitor, result.estimated_metric)


def _show_verdict(
    namespace: str,
    monitor: str,
    drift_share: float,
    n_drifted: int,
    metric: contract.MetricSummary | None,
) -> None:
    DRIFT_SHARE.labels(namespace, monitor).set(drift_share)
    DRIFTED_FEATURES.labels(namespace, monitor).set(n_drifted)
    if metric is not None and metric.value is not None:
        METRIC_VALUE.labels(namespace, monitor, metric.name).set(metric.value)


def _show_estimate(
    namespace: str, monitor: str, estimated: contract.EstimateSummary | None
) -> None:
    if estimated is None:
        return
    for bound, value in (
        ("estimate", estimated.value),
        ("lower", estimated.lower),
        ("upper", estimated.upper),
    ):
        labels = (namespace, monitor, estimated.name, bound)
        if value is not None:
            ESTIMATED_METRIC.labels(*labels).set(value)
        else:
            _drop(ESTIMATED_METRIC, labels)


def consecutive_violations(history: tuple[contract.HistoryEntry, ...], kind: str) -> int:
    """Count the checks in a row, from the newest (last) back, that showed ``kind``.

    >>> H = contract.HistoryEntry
    >>> consecutive_violations((H(drift=True), H(), H(drift=True), H(drift=True)), "drift")
    2
    >>> consecutive_violations((H(drift=True), H()), "drift")
    0
    """
    found = 0
    for entry in reversed(history):
        if not getattr(entry, kind):
            break
        found += 1
    return found


def last_verdict_time(status: contract.MonitorStatus) -> dt.datetime | None:
    """Return when the last check with a verdict was read: ``lastCheck`` unless it gave
    none (``NoData``, ``AwaitingTraffic``), else the newest ``history`` entry."""
    times = [policies.parse_time(h.time) for h in status.history[-1:]]
    last = status.last_check
    if last is not None and last.reason is None:
        times.append(policies.parse_time(last.time))
    known = [t for t in times if t is not None]
    return max(known) if known else None


def show_monitor(mm: Monitor) -> None:
    """Set every per-monitor gauge from the monitor's spec and status.

    Pure bookkeeping over ``mm``: call it with each status the operator writes or reads
    (on resume too), so the series never wait for the next check. Counters are created at
    0 (a series that appears at 1 has no ``increase()``); a series that status no longer
    supports (another model or Deployment, an estimate gone) is dropped.
    """
    ns, name = mm.namespace, mm.name
    spec, status = mm.spec, mm.status
    for counter, labels in _COUNTER_LABELS.items():
        family = _COUNTERS[counter]
        for label in labels:
            family.labels(*((ns, name) if label is None else (ns, name, label)))
    phase = status.phase or c.PHASE_PENDING
    for known in {*PHASES, phase}:
        PHASE.labels(ns, name, known).set(1 if known == phase else 0)
    for kind in VIOLATION_KINDS:
        CONSECUTIVE_VIOLATIONS.labels(ns, name, kind).set(
            consecutive_violations(status.history, kind)
        )
    verdict_at = last_verdict_time(status)
    if verdict_at is not None:
        LAST_SUCCESSFUL_CHECK.labels(ns, name).set(verdict_at.timestamp())
    else:
        _drop(LAST_SUCCESSFUL_CHECK, (ns, name))
    interval = schedule_interval(spec.schedule)
    if interval is not None:
        CHECK_INTERVAL.labels(ns, name).set(interval)
    else:
        _drop(CHECK_INTERVAL, (ns, name))
    breaker = policies.circuit_breaker(
        retrain=spec.retrain, status=status, generation=mm.generation
    )
    CIRCUIT_OPEN.labels(ns, name).set(1 if breaker.fire else 0)
    retraining = status.condition(c.COND_RETRAINING)
    exhausted = retraining is not None and retraining.reason == "RetrainBudgetExhausted"
    BUDGET_EXHAUSTED.labels(ns, name).set(1 if exhausted else 0)
    info = (ns, name, spec.model.name, spec.deployment.name if spec.deployment else "")
    for key in _children(MONITOR_INFO):
        if key[:2] == (ns, name) and key != info:
            MONITOR_INFO.remove(*key)
    MONITOR_INFO.labels(*info).set(1)
    if status.current_version is not None:
        CURRENT_VERSION.labels(ns, name).set(status.current_version)
    last = status.last_check
    if last is not None and last.drift_share is not None and last.n_drifted is not None:
        _show_verdict(ns, name, last.drift_share, last.n_drifted, last.metric)
        _show_estimate(ns, name, last.estimated_metric)


def show_job(job: objects.Job) -> None:
    """Set ``modelwatch_check_duration_seconds`` from a completed check Job's body.

    Any other Job, one still running, or one that completed before the Job already shown
    for its monitor leaves the gauge as it is.
    """
    labels, namespace = job.metadata.labels, job.metadata.namespace
    monitor = labels.get(c.LABEL_MONITOR)
    if labels.get(c.LABEL_JOB_KIND) != c.JOB_KIND_CHECK or not monitor or not namespace:
        return
    started = objects.parse_time(job.status.start_time)
    completed = objects.parse_time(job.status.completion_time)
    if started is None or completed is None:
        return
    key = (namespace, monitor)
    shown = _CHECK_SHOWN.get(key)
    if shown is not None and shown > completed:
        return
    _CHECK_SHOWN[key] = completed
    CHECK_DURATION.labels(*key).set(max(0.0, (completed - started).total_seconds()))


def serve(port: int) -> None:
    """Start the metrics HTTP server in a background thread."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    start_http_server(port)


def forget_monitor(namespace: str, monitor: str) -> None:
    """Drop the series of a deleted monitor so they do not linger."""
    _CHECK_SHOWN.pop((namespace, monitor), None)
    for family in _PER_MONITOR:
        for key in _children(family):
            if key[:2] == (namespace, monitor):
                family.remove(*key)


# --- leadership ---------------------------------------------------------------------------

#: kopf's peering logger and the starts of the messages it logs when it pauses or resumes
#: this operator (``kopf._core.engines.peering.process_peering_event``); kopf exposes the
#: pause to no handler, so the gauge follows these records.
PEERING_LOGGER: Final = "kopf._core.engines.peering"
_PAUSED: Final = ("Pausing operations in favour of", "Pausing all operators, including self")
_RESUMED: Final = ("Resuming operations after the pause",)


class _Leadership(logging.Handler):
    """Set ``modelwatch_operator_leader`` from kopf's pause and resume records."""

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        if message.startswith(_PAUSED):
            LEADER.set(0)
        elif message.startswith(_RESUMED):
            LEADER.set(1)


def watch_leadership(*, paused: bool) -> None:
    """Start ``modelwatch_operator_leader`` at 0 when kopf starts paused (mandatory
    peering: it waits for its first peering event), else at 1, and follow kopf from then."""
    LEADER.set(0 if paused else 1)
    peering = logging.getLogger(PEERING_LOGGER)
    if not any(isinstance(h, _Leadership) for h in peering.handlers):
        peering.addHandler(_Leadership())
    if not peering.isEnabledFor(logging.INFO):  # kopf run --quiet
        peering.setLevel(logging.INFO)


# --- the schedule -------------------------------------------------------------------------

_MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NAMES: Final = {
    3: {
        m: i
        for i, m in enumerate(
            ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
        )
    },
    4: {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}
_RANGES: Final = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
#: Eight years from a leap year: every cron schedule repeats within it (Feb 29 included).
_HORIZON_START: Final = dt.date(2024, 1, 1)
_HORIZON_DAYS: Final = 8 * 366


def _field(text: str, index: int) -> frozenset[int]:
    """The values one cron field allows: ``*``, ``a``, ``a-b``, ``*/n``, ``a-b/n``, lists."""
    low, high = _RANGES[index]
    names = _NAMES.get(index, {})
    values: set[int] = set()
    for part in text.lower().split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span in ("*", "?"):
            first, last = low, high
        else:
            start, _, end = span.partition("-")
            first = names[start] if start in names else int(start)
            last = (names[end] if end in names else int(end)) if end else first
            if step_text and not end:
                last = high  # "a/n": from a to the end
        if step < 1 or not low <= first <= last <= high:
            raise ValueError(f"cron field {text!r} is out of range")
        values.update(range(first, last + 1, step))
    return frozenset(values)


@functools.lru_cache(maxsize=256)
def schedule_interval(schedule: str) -> float | None:
    """Return the longest time, in seconds, between two runs of a CronJob ``schedule``.

    None when it is not a five-field cron line (or a macro) or runs less than twice in
    eight years. Day of month and day of week, both restricted, match either (cron's rule).

    >>> schedule_interval("*/5 * * * *"), schedule_interval("@hourly")
    (300.0, 3600.0)
    >>> schedule_interval("0 9 * * 1-5") / 3600  # Friday 9:00 to Monday 9:00
    72.0
    >>> schedule_interval("0 0 31 2 *") is None
    True
    """
    fields = _MACROS.get(schedule.strip().lower(), schedule).split()
    if len(fields) != 5:
        return None
    try:
        minutes, hours, doms, months, dows = (_field(f, i) for i, f in enumerate(fields))
    except ValueError:
        return None
    dows = frozenset(d % 7 for d in dows)
    any_dom, any_dow = fields[2] in ("*", "?"), fields[4] in ("*", "?")
    times = sorted(h * 60 + m for h in hours for m in minutes)  # minutes of a matching day
    days = []
    for offset in range(_HORIZON_DAYS):
        day = _HORIZON_START + dt.timedelta(days=offset)
        dom_ok, dow_ok = day.day in doms, (day.weekday() + 1) % 7 in dows
        matched = dom_ok and dow_ok if any_dom or any_dow else dom_ok or dow_ok
        if day.month in months and matched:
            days.append(offset)
    if not times or not days or (len(days) == 1 and len(times) == 1):
        return None
    within = max((b - a for a, b in itertools.pairwise(times)), default=0)
    across = max(
        ((b - a) * 1440 - times[-1] + times[0] for a, b in itertools.pairwise(days)),
        default=0,
    )
    return float(max(within, across) * 60)
