"""What the model server's handlers share: the loaded model, readiness, metrics, the logger."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from modelwatch_monitor.serve.config import ServerConfig
from modelwatch_monitor.serve.metrics import Metrics
from modelwatch_monitor.serve.prediction_log import PredictionLogger
from modelwatch_monitor.store.registry import LoadedVersion


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
    #: Requests inside a handler (their body may still be arriving).
    in_flight: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        """True when the verified model is loaded and no shutdown has begun."""
        return self.loaded is not None and not self.shutting_down


STATE_KEY: web.AppKey[ServerState] = web.AppKey("modelwatch_state")
