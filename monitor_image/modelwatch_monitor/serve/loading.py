"""Loading the served version: from the registry, verified against its sha256.

joblib files are pickles, so an artifact is loaded only against a hash that came from
outside the store (``MODEL_SHA256``); the registry refuses one whose bytes differ. A
version that cannot be loaded keeps the server alive but never ready, retrying.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from modelwatch_monitor import contract
from modelwatch_monitor.serve.config import ServerConfig
from modelwatch_monitor.serve.prediction_log import PredictionLogger, log_schema
from modelwatch_monitor.serve.state import STATE_KEY, ServerState
from modelwatch_monitor.store.registry import (
    IncompatibleLibrariesError,
    IntegrityError,
    LoadedVersion,
    Registry,
    VersionNotFoundError,
)

log = logging.getLogger(__name__)


def load_model(config: ServerConfig) -> LoadedVersion:
    """Load and verify the configured version (blocking; run it in an executor)."""
    assert config.version is not None
    registry = Registry(config.store, config.model)
    return registry.load(config.version, expected_sha256=config.sha256 or None)


def not_ready_reason(exc: BaseException) -> str:
    if isinstance(exc, IntegrityError):
        return "IntegrityError"
    if isinstance(exc, IncompatibleLibrariesError):
        return "IncompatibleLibraries"
    if isinstance(exc, VersionNotFoundError):
        return "VersionNotFound"
    return "LoadError"


async def load_in_background(app: web.Application) -> None:
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
            state.reason, state.message = not_ready_reason(exc), str(exc)
            line = f"model not ready: {state.reason}: {state.message}"
            if line != last:
                log.error("%s (retrying every %.0fs)", line, config.retry_seconds)
                last = line
            await asyncio.sleep(config.retry_seconds)
            continue
        activate(state, loaded)
        return


def activate(state: ServerState, loaded: LoadedVersion) -> None:
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
