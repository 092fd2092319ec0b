"""Prometheus metrics of the operator, served on ``constants.METRICS_PORT``."""

from __future__ import annotations

from typing import Final

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from modelwatch_monitor import contract

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


_COUNTERS: Final = {
    "checks": CHECKS,
    "retrains": RETRAINS,
    "promotions": PROMOTIONS,
    "rollbacks": ROLLBACKS,
}


def count(namespace: str, monitor: str, counter: str, label: str | None = None) -> None:
    """Add one to ``counter`` (a key of the actions' ``Counter``) of one monitor."""
    family = _COUNTERS[counter]
    labels = (namespace, monitor) if label is None else (namespace, monitor, label)
    family.labels(*labels).inc()


def show_check(namespace: str, monitor: str, result: contract.CheckOk) -> None:
    """Set the gauges of a check's verdict; an estimate no longer given is removed."""
    DRIFT_SHARE.labels(namespace, monitor).set(result.drift_share)
    DRIFTED_FEATURES.labels(namespace, monitor).set(result.n_drifted)
    if result.metric is not None and result.metric.value is not None:
        METRIC_VALUE.labels(namespace, monitor, result.metric.name).set(result.metric.value)
    estimated = result.estimated_metric
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
        elif labels in ESTIMATED_METRIC._metrics:  # private: no stale value
            ESTIMATED_METRIC.remove(*labels)


def serve(port: int) -> None:
    """Start the metrics HTTP server in a background thread."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    start_http_server(port)


def forget(namespace: str, monitor: str) -> None:
    """Drop the series of a deleted monitor so they do not linger."""
    for family in (
        CHECKS,
        DRIFT_SHARE,
        DRIFTED_FEATURES,
        METRIC_VALUE,
        ESTIMATED_METRIC,
        RETRAINS,
        PROMOTIONS,
        ROLLBACKS,
        CURRENT_VERSION,
    ):
        stale = [
            key
            for key in list(family._metrics)  # private: no public API lists children
            if key[:2] == (namespace, monitor)
        ]
        for key in stale:
            family.remove(*key)
