"""SIGTERM drains the real server: readiness fails at once, nothing is refused meanwhile.

Clients keep sending over a kept-alive connection and over a new connection per request
while the server gets SIGTERM; a request whose body is still arriving when the listener
closes must finish too. No client may see an error while the drain lasts.
"""

from __future__ import annotations

import json
import pathlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from modelwatch_monitor.serve.config import ENV_DRAIN_SECONDS
from tests.monitor.mw_server import model_env, records, start_server, train_store

DRAIN = 3.0


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return train_store(tmp_path_factory.mktemp("drain"))


@dataclass
class Outcome:
    """What one client saw: (monotonic send time, status or error name, Connection header)."""

    seen: list[tuple[float, str, str]] = field(default_factory=list)

    def failures(self, until: float) -> list[tuple[float, str, str]]:
        return [s for s in self.seen if s[0] < until and s[1] != "200"]


def _send(client: httpx.Client, url: str, body: bytes, out: Outcome) -> None:
    sent = time.monotonic()
    try:
        r = client.post(url, content=body, headers={"Content-Type": "application/json"})
        out.seen.append((sent, str(r.status_code), r.headers.get("Connection", "")))
    except httpx.HTTPError as exc:
        out.seen.append((sent, type(exc).__name__, ""))


def _kept_alive(url: str, body: bytes, out: Outcome, until: list[float]) -> None:
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < until[0]:
            _send(client, url, body, out)
            time.sleep(0.01)


def _new_connections(url: str, body: bytes, out: Outcome, until: list[float]) -> None:
    while time.monotonic() < until[0]:
        with httpx.Client(timeout=10) as client:
            _send(client, url, body, out)
        time.sleep(0.01)


def _readiness(url: str, out: Outcome, until: list[float]) -> None:
    while time.monotonic() < until[0]:
        sent = time.monotonic()
        try:
            out.seen.append((sent, str(httpx.get(url, timeout=5).status_code), ""))
        except httpx.HTTPError as exc:
            out.seen.append((sent, type(exc).__name__, ""))
        time.sleep(0.05)


def _trickle(body: bytes, seconds: float, parts: int = 10) -> Iterator[bytes]:
    """Yield ``body`` in ``parts`` chunks spread over ``seconds``."""
    size = -(-len(body) // parts)
    for start in range(0, len(body), size):
        yield body[start : start + size]
        time.sleep(seconds / parts)


def test_sigterm_drains_without_a_failed_request(
    store: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    server = start_server(
        tmp_path, model_env(store, **{ENV_DRAIN_SECONDS: str(DRAIN)}), "--no-prediction-log"
    )
    url = server.url + "/predict"
    body = json.dumps(records(5, seed=3)).encode()
    until = [float("inf")]  # the clients' stop time, set once SIGTERM is sent
    kept, fresh, ready = Outcome(), Outcome(), Outcome()
    threads = [
        threading.Thread(target=_kept_alive, args=(url, body, kept, until)),
        threading.Thread(target=_new_connections, args=(url, body, fresh, until)),
        threading.Thread(target=_readiness, args=(server.url + "/readyz", ready, until)),
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        sigterm = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        # Clients stop a little before the drain ends: after it, only the endpoints'
        # move (absent here) keeps new connections away from the closed listener.
        until[0] = sigterm + DRAIN - 0.5
        # A request whose body is still arriving when the listener closes.
        time.sleep(DRAIN - 1.0)
        slow_body = json.dumps(records(200, seed=4)).encode()
        slow = httpx.post(
            url,
            content=_trickle(slow_body, seconds=2.0),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
    finally:
        until[0] = 0.0
        for t in threads:
            t.join(timeout=30)
    assert server.proc.wait(timeout=60) == 0, server.log()
    stopped = time.monotonic()

    assert slow.status_code == 200, slow.text
    assert len(slow.json()["predictions"]) == 200
    assert stopped - sigterm >= DRAIN, "the listener stayed open for the whole drain"
    for name, out in (("kept-alive", kept), ("new connections", fresh)):
        after = [s for s in out.seen if s[0] > sigterm]
        assert len(after) >= 10, f"{name}: too few requests during the drain: {out.seen}"
        assert out.failures(until=sigterm + DRAIN - 0.5) == [], (name, server.log())
    # Once draining, answers ask kept-alive clients to reconnect elsewhere.
    assert {s[2] for s in kept.seen if s[0] > sigterm + 0.2} == {"close"}
    assert {s[2] for s in kept.seen if s[0] < sigterm} == {""}
    # Readiness: 200 before SIGTERM, 503 within moments after it and for the whole drain.
    assert {s[1] for s in ready.seen if s[0] < sigterm - 0.2} == {"200"}
    after = [s[1] for s in ready.seen if s[0] > sigterm + 0.2]
    assert after and set(after) == {"503"}, ready.seen
    assert "not ready any more; serving for 3.0 s" in server.log()
