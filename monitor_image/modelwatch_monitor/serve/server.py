"""``modelwatch serve``: serve one model version over HTTP with aiohttp.

Environment (set by the operator on the serving Deployment)::

    MODEL_NAME        the model name
    MODEL_VERSION     the version to load from the registry
    MODEL_SHA256      the sha256 the operator recorded for that version; required
    MODELWATCH_STORE  the store URI
    MODELWATCH_ALLOW_UNVERIFIED_FIRST_DEPLOY
                      "true" to load a version without MODEL_SHA256 (its metadata.json
                      hash only): a first deploy before any hash is known
    MODELWATCH_DRAIN_SECONDS
                      how long the server keeps serving after SIGTERM, not ready, while
                      endpoints move (default 5; :mod:`~modelwatch_monitor.serve.lifecycle`)

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
:class:`~modelwatch_monitor.serve.prediction_log.PredictionLogger` without waiting on it.
SIGTERM fails readiness, serves on for the drain, lets in-flight requests finish, drains
the log and exits 0 (:mod:`~modelwatch_monitor.serve.lifecycle`).

The parts: :mod:`~modelwatch_monitor.serve.config` (the environment),
:mod:`~modelwatch_monitor.serve.loading` (the model, verified),
:mod:`~modelwatch_monitor.serve.records` (request validation),
:mod:`~modelwatch_monitor.serve.metrics`, :mod:`~modelwatch_monitor.serve.lifecycle`
(listening and draining); this module holds the routes and the app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiohttp import web

from modelwatch_monitor.serve.config import ServerConfig
from modelwatch_monitor.serve.lifecycle import Listen, serve, track_requests
from modelwatch_monitor.serve.loading import load_in_background
from modelwatch_monitor.serve.metrics import Metrics
from modelwatch_monitor.serve.prediction_log import LoggedBatch, to_arrow
from modelwatch_monitor.serve.records import BadRequest, log_columns, read_records
from modelwatch_monitor.serve.state import STATE_KEY, ServerState

log = logging.getLogger(__name__)
JSON_TYPE = "application/json"
#: Requests with at least this many rows are predicted off the event loop.
OFFLOAD_ROWS = 5_000


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


async def predict(request: web.Request) -> web.Response:
    """Predict a batch of records."""
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
        body = await request.read()
        records, X, raw = read_records(
            body, model.schema, max_rows=state.config.max_rows_per_request
        )
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
        logged = log_columns(state, raw, records, received)
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
    state.tasks.append(asyncio.create_task(load_in_background(app)))


async def _on_shutdown(app: web.Application) -> None:
    state = app[STATE_KEY]
    state.shutting_down = True


async def _on_cleanup(app: web.Application) -> None:
    state = app[STATE_KEY]
    for task in state.tasks:
        task.cancel()
    if state.logger is not None:
        # In-flight requests are done by now; drain the queue to the store.
        await asyncio.get_running_loop().run_in_executor(None, state.logger.close)


def build_app(config: ServerConfig) -> web.Application:
    """Return the aiohttp application for ``config`` (the model loads on startup)."""
    app = web.Application(middlewares=[_observe, track_requests], client_max_size=64 * 1024 * 1024)
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
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=20.0,
        help="seconds in-flight requests may run once the listener has closed",
    )


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
    listen = Listen(
        host=args.host,
        port=args.port,
        drain_seconds=config.drain_seconds,
        shutdown_timeout=args.shutdown_timeout,
        access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
    )
    asyncio.run(serve(build_app(config), listen))
    log.info("server stopped")
    return 0


__all__ = ["ServerConfig", "add_arguments", "build_app", "run"]
