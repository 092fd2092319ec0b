"""``modelwatch serve``: serve one model version over HTTP with aiohttp.

Environment (set by the operator on the serving Deployment)::

    MODEL_NAME        the model name
    MODEL_VERSION     the version to load from the registry
    MODEL_SHA256      the sha256 the operator recorded for that version; required
    MODELWATCH_STORE  the store URI
    MODELWATCH_ALLOW_UNVERIFIED_FIRST_DEPLOY
                      "true" to load a version without MODEL_SHA256 (its metadata.json
                      hash only): a first deploy before any hash is known

Without MODEL_SHA256 (and without that flag) the server stays alive but never ready,
with reason ``ConfigError`` on ``/readyz``: joblib files are pickles, so an artifact is
loaded only against a hash that came from outside the store.

The server reads the store only; it writes its prediction log under
``<store>/<model>/predictions`` (mounted read-write on its own, the rest read-only).

Endpoints
---------
``POST /predict``
    Body: a JSON list of records, or ``{"records": [...]}``. Returns ``predictions``
    and, for classifiers, ``probabilities`` (one row per record, columns as ``classes``).
    A missing column or a value of the wrong type gets a 422 naming the column.
``GET /healthz``
    200 while the process runs.
``GET /readyz``
    200 once the model is loaded and verified; 503 with the reason otherwise. A missing
    version or a sha256 mismatch keeps the server alive but never ready, so a rollout to
    a bad artifact never completes and the operator rolls it back.
``GET /metadata``
    The version's metadata: version, sha256, holdout metrics, features...
``GET /metrics``
    Prometheus text: request counts, latency histogram, errors, prediction-log
    counters, all labelled with ``model`` and ``model_version``.

Every ``/predict`` batch goes to the
:class:`~modelwatch_monitor.serve.prediction_log.PredictionLogger` without waiting on it;
SIGTERM drains it before the process exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from modelwatch_monitor import contract

if TYPE_CHECKING:
    from modelwatch_monitor.serve.prediction_log import PredictionLogger
    from modelwatch_monitor.store.registry import LoadedVersion

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
#: Requests with at least this many rows are predicted off the event loop.
OFFLOAD_ROWS = 5_000
STATE_KEY: web.AppKey[ServerState] = web.AppKey("modelwatch_state")


@dataclass
class ServerConfig:
    """Settings of one server process.

    Parameters
    ----------
    store, model : str
        Where the registry is and which model to serve.
    version : int or None
        The version to load; None when ``MODEL_VERSION`` is unset or invalid.
    sha256 : str
        The expected artifact hash (``MODEL_SHA256``); empty only with
        ``allow_unverified``, to trust ``metadata.json``.
    allow_unverified : bool
        ``MODELWATCH_ALLOW_UNVERIFIED_FIRST_DEPLOY=true``.
    config_problem : str
        Why the environment is unusable, or empty.
    """

    store: str = ""
    model: str = ""
    version: int | None = None
    sha256: str = ""
    allow_unverified: bool = False
    config_problem: str = ""
    log_predictions: bool = True
    log_max_rows: int = 200_000
    log_flush_rows: int = 20_000
    log_flush_seconds: float = 10.0
    max_rows_per_request: int = 100_000
    retry_seconds: float = 30.0
    id_column: str | None = None
    threads: int = 1

    @classmethod
    def from_env(cls, env: Any = None, **overrides: Any) -> ServerConfig:
        """Read the contract's environment variables."""
        env = os.environ if env is None else env
        problems = []
        model = env.get(contract.ENV_MODEL_NAME, "")
        store = env.get(contract.ENV_STORE_URI, "")
        raw_version = env.get(contract.ENV_MODEL_VERSION, "")
        version: int | None = None
        for name, value in ((contract.ENV_MODEL_NAME, model), (contract.ENV_STORE_URI, store)):
            if not value:
                problems.append(f"{name} is not set")
        try:
            version = int(raw_version)
            if version < 1:
                raise ValueError
        except ValueError:
            problems.append(
                f"{contract.ENV_MODEL_VERSION} must be a version >= 1, got {raw_version!r}"
            )
            version = None
        sha256 = env.get(contract.ENV_MODEL_SHA256, "").strip().lower()
        flag = env.get(contract.ENV_ALLOW_UNVERIFIED, "").strip().lower()
        allow_unverified = flag == "true"
        if flag not in ("", "true", "false"):
            problems.append(f"{contract.ENV_ALLOW_UNVERIFIED} must be true or false, got {flag!r}")
        elif not sha256 and not allow_unverified:
            problems.append(
                f"{contract.ENV_MODEL_SHA256} is not set: refusing to load an artifact whose "
                f"hash nobody vouches for; set it to the version's sha256 (status.versions of "
                f"the ModelMonitor, or the sha256 the training Job printed), or set "
                f"{contract.ENV_ALLOW_UNVERIFIED}=true for a first deploy"
            )
        return cls(
            store=store,
            model=model,
            version=version,
            sha256=sha256,
            allow_unverified=allow_unverified,
            config_problem="; ".join(problems),
            **overrides,
        )


@dataclass
class ServerState:
    """What the handlers share: the loaded model, readiness, metrics, the logger."""

    config: ServerConfig
    metrics: Metrics
    loaded: LoadedVersion | None = None
    reason: str = "Loading"
    message: str = "the model is being loaded"
    logger: PredictionLogger | None = None
    classes: list[Any] | None = None
    id_column: str | None = None
    timestamp_column: str | None = None
    shutting_down: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        """True when the verified model is loaded and no shutdown has begun."""
        return self.loaded is not None and not self.shutting_down


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


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_model(config: ServerConfig) -> LoadedVersion:
    """Load and verify the configured version (blocking; run it in an executor)."""
    from modelwatch_monitor.store.registry import Registry

    assert config.version is not None
    registry = Registry(config.store, config.model)
    return registry.load(config.version, expected_sha256=config.sha256 or None)


def _not_ready_reason(exc: BaseException) -> str:
    from modelwatch_monitor.store.registry import (
        IncompatibleLibrariesError,
        IntegrityError,
        VersionNotFoundError,
    )

    if isinstance(exc, IntegrityError):
        return "IntegrityError"
    if isinstance(exc, IncompatibleLibrariesError):
        return "IncompatibleLibraries"
    if isinstance(exc, VersionNotFoundError):
        return "VersionNotFound"
    return "LoadError"


async def _loader(app: web.Application) -> None:
    state = app[STATE_KEY]
    config = state.config
    if config.config_problem:
        state.reason, state.message = "ConfigError", config.config_problem
        log.error("model not ready: %s: %s", state.reason, state.message)
        return
    if not config.sha256:
        log.warning(
            "%s is not set and %s=true: verifying against metadata.json only",
            contract.ENV_MODEL_SHA256,
            contract.ENV_ALLOW_UNVERIFIED,
        )
    loop = asyncio.get_running_loop()
    last = ""
    while not state.shutting_down:
        try:
            loaded = await loop.run_in_executor(None, load_model, config)
        except Exception as exc:
            state.reason, state.message = _not_ready_reason(exc), str(exc)
            line = f"model not ready: {state.reason}: {state.message}"
            if line != last:
                log.error("%s (retrying every %.0fs)", line, config.retry_seconds)
                last = line
            await asyncio.sleep(config.retry_seconds)
            continue
        _activate(state, loaded)
        return


def _activate(state: ServerState, loaded: LoadedVersion) -> None:
    from modelwatch_monitor.serve.prediction_log import PredictionLogger, log_schema

    config = state.config
    meta = loaded.metadata
    model = loaded.model
    classes = getattr(model, "classes_", None)
    if hasattr(model, "set_threads"):
        model.set_threads(config.threads)
    state.classes = None if classes is None else [_plain(c) for c in classes]
    state.id_column = config.id_column or meta.get("idColumn") or None
    ts = meta.get("timestampColumn")
    state.timestamp_column = ts if ts and ts != contract.LOG_TIMESTAMP else None
    if config.log_predictions:
        prediction_column = meta.get("predictionColumn") or contract.LOG_PREDICTION
        schema = log_schema(
            getattr(model, "schema", []),
            version=loaded.version,
            classes=state.classes,
            task=str(meta.get("task") or ("classification" if classes is not None else "")),
            prediction_column=prediction_column,
            id_column=state.id_column,
            timestamp_column=state.timestamp_column,
        )
        state.logger = PredictionLogger(
            store=config.store,
            model=config.model,
            version=loaded.version,
            classes=state.classes,
            prediction_column=prediction_column,
            max_rows=config.log_max_rows,
            flush_rows=config.log_flush_rows,
            flush_seconds=config.log_flush_seconds,
            schema=schema,
        )
        state.metrics.watch_logger(state.logger)
    state.metrics.info.labels(config.model, str(loaded.version), loaded.sha256).set(1)
    state.metrics.ready.labels(config.model, str(loaded.version)).set(1)
    state.loaded = loaded
    state.reason, state.message = "Ready", f"serving {config.model} v{loaded.version}"
    log.info(
        "model ready: %s v%d sha256 %s, %d features, prediction log %s",
        config.model,
        loaded.version,
        loaded.sha256,
        len(getattr(model, "schema", [])),
        "on" if state.logger else "off",
    )


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


# ---------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":"), default=str).encode(),
        status=status,
        content_type=JSON_TYPE,
        headers=headers,
    )


def _not_ready(state: ServerState) -> web.Response:
    return _json(
        {"ready": False, "reason": state.reason, "message": state.message},
        status=503,
    )


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the configured version is loaded and verified."""
    state = request.app[STATE_KEY]
    if not state.ready:
        return _not_ready(state)
    assert state.loaded is not None
    return _json({"ready": True, "version": state.loaded.version, "sha256": state.loaded.sha256})


async def metadata(request: web.Request) -> web.Response:
    """The served version's metadata."""
    state = request.app[STATE_KEY]
    if state.loaded is None:
        return _not_ready(state)
    meta = state.loaded.metadata
    keep = (
        "task", "target", "idColumn", "timestampColumn", "features", "classes", "metric",
        "greaterIsBetter", "createdAt", "flaml", "training", "holdout", "triggerReport",
        "champion", "promote", "reason", "libraries",
    )  # fmt: skip
    doc = {k: meta[k] for k in keep if k in meta}
    doc.update(
        model=state.config.model,
        version=state.loaded.version,
        sha256=state.loaded.sha256,
        metrics=meta.get("metrics"),
        predictionLog=state.logger is not None,
    )
    return _json(doc)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    state = request.app[STATE_KEY]
    body = generate_latest(state.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class BadRequest(Exception):
    """A request the server cannot predict on; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.column = column


def _records(body: Any) -> list[dict[str, Any]]:
    records = body.get("records") if isinstance(body, dict) else body
    if not isinstance(records, list):
        raise BadRequest(422, 'the body must be a JSON list of records or {"records": [...]}')
    if not records:
        raise BadRequest(422, "no records to predict")
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise BadRequest(422, f"record {i} is not a JSON object")
    return records


def _id_values(records: list[dict[str, Any]], column: str) -> Any:
    import numpy as np

    values = [r.get(column) for r in records]
    if all(type(v) is int for v in values):
        try:
            return np.asarray(values, dtype=np.int64)
        except OverflowError:
            return np.asarray(values, dtype=object)
    if all(v is None or type(v) is int for v in values):
        return np.asarray(values, dtype=object)
    return np.asarray([None if v is None else str(v) for v in values], dtype=object)


def _log_columns(
    state: ServerState, raw: dict[str, Any], records: list[dict[str, Any]], received: datetime
) -> dict[str, Any]:
    """Return the columns to log: the raw inputs, the id column, the model's time column.

    The request time is always logged as ``timestamp``; when the model names another
    timestamp column, that column is logged too: from the records when they carry it,
    else the request time, so a check can window the logs by it.
    """
    import numpy as np

    from modelwatch_monitor.serve.prediction_log import to_arrow

    columns = {name: to_arrow(values) for name, values in raw.items()}
    if state.id_column and any(state.id_column in r for r in records):
        columns[state.id_column] = to_arrow(_id_values(records, state.id_column))
    ts = state.timestamp_column
    if ts:
        now = np.datetime64(received.replace(tzinfo=None), "us")
        if any(ts in r for r in records):
            import pandas as pd

            parsed = pd.to_datetime(
                pd.Series([r.get(ts) for r in records], dtype=object), utc=True, errors="coerce"
            )
            stamps = parsed.dt.tz_convert(None).to_numpy().astype("datetime64[us]")
            columns[ts] = to_arrow(np.where(np.isnat(stamps), now, stamps))
        else:
            columns[ts] = to_arrow(np.full(len(records), now))
    return columns


async def predict(request: web.Request) -> web.Response:
    """Predict a batch of records."""
    from modelwatch_monitor.serve.prediction_log import LoggedBatch, to_arrow
    from modelwatch_monitor.store.feature_schema import SchemaError, frames_from_records

    state = request.app[STATE_KEY]
    if state.loaded is None:
        # During a graceful shutdown /readyz says 503 but requests still in the pipe
        # are answered (and logged): the model stays loaded until the process exits.
        state.metrics.error("not_ready")
        return _not_ready(state)
    received = datetime.now(UTC)
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    model = state.loaded.model
    try:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(400, f"the body is not valid JSON: {exc}") from None
        records = _records(body)
        if len(records) > state.config.max_rows_per_request:
            raise BadRequest(
                413,
                f"{len(records)} records exceed the limit of {state.config.max_rows_per_request}",
            )
        try:
            X, raw = frames_from_records(records, model.schema)
        except SchemaError as exc:
            raise BadRequest(422, str(exc), exc.column) from None
    except BadRequest as exc:
        state.metrics.error("bad_request")
        doc: dict[str, Any] = {"error": exc.message, "requestId": request_id}
        if exc.column is not None:
            doc["column"] = exc.column
        return _json(doc, status=exc.status, headers={"X-Request-Id": request_id})
    try:
        if len(X) >= OFFLOAD_ROWS:
            # Big batches run in a worker thread (LightGBM and numpy release the GIL), so
            # the event loop keeps answering /healthz and small requests meanwhile.
            predictions, proba = await asyncio.get_running_loop().run_in_executor(
                None, partial(model.predict_both, X, coerce=False)
            )
        else:
            predictions, proba = model.predict_both(X, coerce=False)
    except Exception as exc:
        log.exception("prediction failed for request %s", request_id)
        state.metrics.error("internal")
        return _json(
            {"error": f"prediction failed: {type(exc).__name__}: {exc}", "requestId": request_id},
            status=500,
        )
    state.metrics.predicted(len(predictions))
    if state.logger is not None:
        logged = _log_columns(state, raw, records, received)
        state.logger.offer(
            LoggedBatch(
                features=logged,
                predictions=to_arrow(predictions),
                proba=proba,
                request_id=request_id,
                timestamp=received,
            )
        )
    out: dict[str, Any] = {
        "model": state.config.model,
        "version": state.loaded.version,
        "requestId": request_id,
        "predictions": predictions.tolist(),
    }
    if proba is not None:
        out["classes"] = state.classes
        out["probabilities"] = proba.round(6).tolist()
    return _json(out, headers={"X-Request-Id": request_id})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        endpoint = route.canonical if route is not None else "other"
        if endpoint != "/metrics":
            request.app[STATE_KEY].metrics.observe(endpoint, status, time.perf_counter() - start)


# ---------------------------------------------------------------------------
# App and lifecycle
# ---------------------------------------------------------------------------


async def _on_startup(app: web.Application) -> None:
    state = app[STATE_KEY]
    state.tasks.append(asyncio.create_task(_loader(app)))


async def _on_shutdown(app: web.Application) -> None:
    state = app[STATE_KEY]
    state.shutting_down = True
    log.info("shutting down: not ready any more; finishing in-flight requests")


async def _on_cleanup(app: web.Application) -> None:
    state = app[STATE_KEY]
    for task in state.tasks:
        task.cancel()
    if state.logger is not None:
        # In-flight requests are done by now; drain the queue to the store.
        await asyncio.get_running_loop().run_in_executor(None, state.logger.close)


def build_app(config: ServerConfig) -> web.Application:
    """Return the aiohttp application for ``config`` (the model loads on startup)."""
    app = web.Application(middlewares=[_observe], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = ServerState(
        config=config,
        metrics=Metrics(config.model or "unknown", str(config.version or "")),
    )
    app.router.add_post("/predict", predict)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metadata", metadata)
    app.router.add_get("/metrics", metrics)
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    return app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``."""
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument(
        "--no-prediction-log", action="store_true", help="do not log predictions to the store"
    )
    parser.add_argument("--log-flush-seconds", type=float, default=10.0)
    parser.add_argument("--log-flush-rows", type=int, default=20_000)
    parser.add_argument("--log-max-rows", type=int, default=200_000, help="buffer bound")
    parser.add_argument("--max-rows-per-request", type=int, default=100_000)
    parser.add_argument("--retry-seconds", type=float, default=30.0)
    parser.add_argument("--id-column", help="default: the model's idColumn")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per prediction (default: %(default)s)"
    )
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--shutdown-timeout", type=float, default=20.0)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; return the exit code."""
    config = ServerConfig.from_env(
        log_predictions=not args.no_prediction_log,
        log_max_rows=args.log_max_rows,
        log_flush_rows=args.log_flush_rows,
        log_flush_seconds=args.log_flush_seconds,
        max_rows_per_request=args.max_rows_per_request,
        retry_seconds=args.retry_seconds,
        id_column=args.id_column,
        threads=args.threads,
    )
    log.info(
        "serving %s v%s from %s on %s:%d",
        config.model,
        config.version,
        config.store,
        args.host,
        args.port,
    )
    web.run_app(
        build_app(config),
        host=args.host,
        port=args.port,
        access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
        shutdown_timeout=args.shutdown_timeout,
        print=None,
        handle_signals=True,
    )
    log.info("server stopped")
    return 0


__all__ = ["ServerConfig", "add_arguments", "build_app", "run"]
