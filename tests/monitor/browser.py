"""Headless Chromium driven over the DevTools protocol on a pipe (no websocket library).

``chromium --remote-debugging-pipe`` reads NUL-terminated JSON commands on fd 3 and writes
replies and events on fd 4. :func:`open_page` loads one page and returns what a person
would notice: console errors, uncaught exceptions, failed loads, broken images, and a
screenshot of the whole page.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue

TIMEOUT_SECONDS = 60.0
JsonObject = dict[str, JsonValue]


def chromium() -> str | None:
    """The Chromium binary (Debian's ``chromium`` package), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageReport:
    """What loading a page showed."""

    errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    svg_sizes: list[tuple[float, float]] = field(default_factory=list)
    title: str = ""
    screenshot: bytes = b""


class _Pipe:
    """One DevTools session over the two pipe ends; events are kept in arrival order."""

    def __init__(self, write_fd: int, read_fd: int) -> None:
        self._write, self._read = write_fd, read_fd
        self._buffer = b""
        self._next_id = 0
        self.events: list[JsonObject] = []

    def _message(self, deadline: float) -> JsonObject:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("Chromium sent nothing before the deadline")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: JsonObject = json.loads(raw)
        return message

    def call(self, method: str, session: str | None = None, **params: Any) -> JsonObject:
        """Send one command; return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._write, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            message = self._message(deadline)
            if message.get("id") != self._next_id:
                self.events.append(message)
                continue
            if "error" in message:
                raise RuntimeError(f"{method}: {message['error']}")
            result = message.get("result")
            return result if isinstance(result, dict) else {}

    def wait_for(self, method: str) -> JsonObject:
        """Return the first event ``method`` (already received or next)."""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            message = self._message(deadline)
            self.events.append(message)
            if message.get("method") == method:
                return message


# Run in the page once it has loaded: images that did not decode, and each inline SVG's
# drawn size (a plot that renders nothing has no box).
_INSPECT = """JSON.stringify({
  broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
    .map(i => i.currentSrc || i.src || i.outerHTML.slice(0, 80)),
  svgs: [...document.querySelectorAll("svg")].map(s => {
    const r = s.getBoundingClientRect(); return [r.width, r.height]; }),
  title: document.title,
  height: document.documentElement.scrollHeight,
})"""


def _errors(events: list[JsonObject]) -> list[str]:
    """The console errors, uncaught exceptions, error log entries and failed loads."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params")
        if not isinstance(params, dict):
            continue
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args")
            listed = args if isinstance(args, list) else []
            texts = [a.get("value", a.get("description")) for a in listed if isinstance(a, dict)]
            found.append(f"console.{params.get('type')}: {' '.join(map(str, texts))}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails") or {}
            text = details.get("text") if isinstance(details, dict) else details
            found.append(f"exception: {text}")
        elif method == "Log.entryAdded":
            entry = params.get("entry") or {}
            if isinstance(entry, dict) and entry.get("level") == "error":
                found.append(f"log: {entry.get('text')} {entry.get('url') or ''}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"load failed: {params.get('errorText')} ({params.get('type')})")
    return found


def open_page(url: str, *, width: int = 1100) -> PageReport:
    """Load ``url`` in a fresh headless Chromium and report what it showed."""
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def wire_fds() -> None:
        """In the child: the protocol reads fd 3 and writes fd 4. Both ends move above
        them first, as either may sit at 3 or 4 already."""
        high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.dup2(high_r, 3, inheritable=True)
        os.dup2(high_w, 4, inheritable=True)

    # Chromium's helper processes (crashpad, a renderer) can still write into the profile
    # for a moment after the browser exits: the scratch folder's removal must not fail.
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",  # root in a container has no user namespace sandbox
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,  # two syscalls, nothing that takes a lock
            pass_fds=(3, 4),  # kept open after wire_fds
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        try:
            return _load(_Pipe(to_chrome_w, from_chrome_r), url, width)
        finally:
            os.close(to_chrome_w)
            os.close(from_chrome_r)
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _load(pipe: _Pipe, url: str, width: int) -> PageReport:
    target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
    session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    assert isinstance(session, str)
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.call(f"{domain}.enable", session)
    pipe.call(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=width,
        height=800,
        deviceScaleFactor=1,
        mobile=False,
    )
    pipe.events.clear()  # about:blank's own
    pipe.call("Page.navigate", session, url=url)
    pipe.wait_for("Page.loadEventFired")
    evaluated = pipe.call("Runtime.evaluate", session, expression=_INSPECT, returnByValue=True)
    found = evaluated["result"]
    text = found.get("value") if isinstance(found, dict) else None
    assert isinstance(text, str), f"the page inspection returned {found!r}"
    page = json.loads(text)
    captured = pipe.call(
        "Page.captureScreenshot", session, format="png", captureBeyondViewport=True
    )
    shot = captured["data"]
    assert isinstance(shot, str)
    return PageReport(
        errors=_errors(pipe.events),
        broken_images=list(page["broken"]),
        svg_sizes=[(float(w), float(h)) for w, h in page["svgs"]],
        title=str(page["title"]),
        screenshot=base64.b64decode(shot),
    )
