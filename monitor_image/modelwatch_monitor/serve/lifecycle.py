"""The server's life: listen, and on SIGTERM drain before the listener closes.

Kubernetes takes a terminating pod out of its Service's endpoints at the moment it sends
SIGTERM, but kube-proxy on every node (and any load balancer) applies that a moment later.
A server that closes its listener at once refuses the connections still routed to it. So on
SIGTERM the server:

1. fails ``/readyz`` at once;
2. keeps its listener open and serves for ``drain_seconds`` (``MODELWATCH_DRAIN_SECONDS``),
   answering with ``Connection: close`` so a kept-alive client reconnects, to another pod;
3. closes the listener and waits up to ``shutdown_timeout`` seconds for the requests
   inside a handler to finish, a body still arriving included (aiohttp's own shutdown
   ignores the bytes that arrive once it has begun, aio-libs/aiohttp#2298, so it runs
   only once they are done);
4. runs aiohttp's graceful shutdown (:meth:`aiohttp.web.AppRunner.cleanup`): idle
   connections close, ``on_shutdown`` runs, a request that came in at the last moment gets
   :data:`LAST_REQUESTS_SECONDS`, ``on_cleanup`` drains the prediction log;
5. returns, and the process exits 0.

A second SIGTERM or SIGINT ends the drain early. A server whose model never loaded was in
no endpoints, so it skips the drain.

The pod's ``terminationGracePeriodSeconds`` must cover ``drain_seconds``, the longest
request and the prediction log's last flush.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from modelwatch_monitor.serve.state import STATE_KEY

log = logging.getLogger(__name__)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: What aiohttp's own shutdown grants the requests still running once in-flight ones are done.
LAST_REQUESTS_SECONDS = 1.0


@dataclass(frozen=True)
class Listen:
    """Where and how the server listens and stops.

    Parameters
    ----------
    host, port : str, int
        The TCP address.
    drain_seconds : float
        How long the listener stays open after SIGTERM, serving.
    shutdown_timeout : float
        How long requests in flight may still run once the listener has closed.
    access_log : logging.Logger or None
        aiohttp's access log, or None for none.
    """

    host: str
    port: int
    drain_seconds: float
    shutdown_timeout: float
    access_log: logging.Logger | None = None


async def _stopped() -> asyncio.Event:
    """Return an event set by SIGTERM or SIGINT (each signal sets it again)."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


async def _drain(app: web.Application, stop: asyncio.Event, seconds: float) -> None:
    """Fail readiness and keep serving for ``seconds``, or until ``stop`` is set again."""
    state = app[STATE_KEY]
    was_ready = state.ready
    state.shutting_down = True
    if not was_ready or seconds <= 0:
        log.info("SIGTERM: not ready; shutting down without a drain")
        return
    log.info("SIGTERM: not ready any more; serving for %.1f s while endpoints move", seconds)
    stop.clear()
    start = time.monotonic()
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
        log.info("second signal: drain ended after %.1f s", time.monotonic() - start)
    except TimeoutError:
        pass


async def _finish_in_flight(app: web.Application, timeout: float) -> None:
    """Wait until no request is inside a handler, for ``timeout`` seconds at most."""
    state = app[STATE_KEY]
    deadline = time.monotonic() + timeout
    while state.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if state.in_flight:
        log.warning("%d requests still running after %.1f s", state.in_flight, timeout)


async def serve(app: web.Application, listen: Listen) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then drain and shut down gracefully."""
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=listen.access_log,
        shutdown_timeout=LAST_REQUESTS_SECONDS,
    )
    await runner.setup()
    try:
        stop = await _stopped()
        site = web.TCPSite(runner, listen.host, listen.port)
        await site.start()
        await stop.wait()
        await _drain(app, stop, listen.drain_seconds)
        await site.stop()
        log.info("listener closed; finishing %d requests in flight", app[STATE_KEY].in_flight)
        await _finish_in_flight(app, listen.shutdown_timeout)
    finally:
        await runner.cleanup()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@web.middleware
async def track_requests(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Count the requests in flight; answer with ``Connection: close`` once draining."""
    state = request.app[STATE_KEY]
    state.in_flight += 1
    try:
        response = await handler(request)
    finally:
        state.in_flight -= 1
    if state.shutting_down:
        response.force_close()
    return response


__all__ = ["LAST_REQUESTS_SECONDS", "Listen", "serve", "track_requests"]
