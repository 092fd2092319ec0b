"""The model server's Prometheus metrics, labelled with ``model`` and ``model_version``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelwatch_monitor.serve.prediction_log import PredictionLogger


class Metrics:
    """The Prometheus metrics of one server, in their own registry."""

    def __init__(self, model: str, version: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.model = model
        self.version = version
        labels = ["model", "model_version"]
        self.requests = Counter(
            "modelwatch_requests",
            "HTTP requests served.",
            [*labels, "endpoint", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelwatch_request_duration_seconds",
            "Request latency.",
            [*labels, "endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.errors = Counter(
            "modelwatch_request_errors",
            "Requests that failed, by reason (bad_request, not_ready, internal).",
            [*labels, "reason"],
            registry=self.registry,
        )
        self.rows = Counter(
            "modelwatch_predictions",
            "Rows predicted.",
            labels,
            registry=self.registry,
        )
        self.info = Gauge(
            "modelwatch_model_info",
            "The served model; 1 for the configured version.",
            [*labels, "sha256"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "modelwatch_model_ready",
            "1 when the model is loaded and verified.",
            labels,
            registry=self.registry,
        )
        self.ready.labels(model, version).set(0)
        self._predict_latency = self.latency.labels(model, version, "/predict")
        self._rows = self.rows.labels(model, version)

    def observe(self, endpoint: str, code: int, seconds: float) -> None:
        """Count one request."""
        self.requests.labels(self.model, self.version, endpoint, str(code)).inc()
        if endpoint == "/predict":
            self._predict_latency.observe(seconds)
        else:
            self.latency.labels(self.model, self.version, endpoint).observe(seconds)

    def error(self, reason: str) -> None:
        """Count one failed request."""
        self.errors.labels(self.model, self.version, reason).inc()

    def predicted(self, rows: int) -> None:
        """Count predicted rows."""
        self._rows.inc(rows)

    def watch_logger(self, logger: PredictionLogger) -> None:
        """Export the prediction logger's counters at scrape time."""
        self.registry.register(_LoggerCollector(logger, self.model, self.version))


class _LoggerCollector:
    def __init__(self, logger: PredictionLogger, model: str, version: str) -> None:
        self.logger = logger
        self.labels = [model, version]

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        names = ["model", "model_version"]
        for name, doc, value in (
            ("modelwatch_prediction_log_rows_written", "Rows written.", self.logger.written_rows),
            (
                "modelwatch_prediction_log_files_written",
                "Files written.",
                self.logger.written_files,
            ),
            (
                "modelwatch_prediction_log_rows_dropped",
                "Rows not logged: buffer full or write failed.",
                self.logger.dropped_rows,
            ),
            ("modelwatch_prediction_log_write_errors", "Failed writes.", self.logger.write_errors),
        ):
            c = CounterMetricFamily(name, doc, labels=names)
            c.add_metric(self.labels, value)
            yield c
        g = GaugeMetricFamily(
            "modelwatch_prediction_log_buffered_rows", "Rows waiting to be written.", labels=names
        )
        g.add_metric(self.labels, self.logger.buffered_rows)
        yield g
