"""A real S3-compatible server for tests and benchmarks: SeaweedFS's ``weed server -s3``.

The ``weed`` binary is the one ``hack/build-seaweedfs.sh`` builds into the cache (keyed
by the version pinned in ``hack/lib.sh``); ``MODELWATCH_WEED`` names another. Each server
runs in its own temporary folder on free loopback ports, with a generated key pair and
one bucket, and is stopped (by its own pid) when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

REPO = pathlib.Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 120.0


def pinned_version() -> str:
    """Return the SeaweedFS version ``hack/lib.sh`` pins (``SEAWEEDFS_VERSION`` overrides)."""
    lib = (REPO / "hack" / "lib.sh").read_text()
    match = re.search(r'SEAWEEDFS_VERSION="\$\{SEAWEEDFS_VERSION:-([^}]+)\}"', lib)
    if match is None:
        raise RuntimeError("hack/lib.sh pins no SEAWEEDFS_VERSION")
    return os.environ.get("SEAWEEDFS_VERSION") or match.group(1)


def weed_binary() -> pathlib.Path:
    """Return where the ``weed`` binary is expected (it may not be built)."""
    explicit = os.environ.get("MODELWATCH_WEED")
    if explicit:
        return pathlib.Path(explicit)
    version = pinned_version()
    cache = os.environ.get("MODELWATCH_CACHE")
    if cache:
        root = pathlib.Path(cache)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
        root = pathlib.Path(xdg) / "modelwatch"
    return root / f"seaweedfs-{version}" / "bin" / "weed"


def missing_reason() -> str | None:
    """Return why no server can start here (a sentence), or None when one can."""
    binary = weed_binary()
    if not os.access(binary, os.X_OK):
        return (
            f"the SeaweedFS binary {binary} is not built: run hack/build-seaweedfs.sh "
            "(or set MODELWATCH_WEED)"
        )
    return None


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint, one bucket, and the key pair that may use it."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """Return the environment an S3 client (botocore, under s3fs) reads."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def uri(self, *parts: str) -> str:
        """Return ``s3://<bucket>/<parts...>``."""
        return "/".join([f"s3://{self.bucket}", *parts])


def _free_port_pair() -> int:
    """Return a free port P (< 55535) whose gRPC twin P + 10000 is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port >= 55535:
            continue
        with socket.socket() as twin:
            try:
                twin.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("found no free pair of ports (P, P + 10000) on 127.0.0.1")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def start_s3_server(*, bucket: str = "modelwatch-test") -> Iterator[S3Server]:
    """Run ``weed server -s3`` in a temporary folder until the block ends.

    Raises
    ------
    RuntimeError
        The binary is missing, or the server did not answer within
        ``START_TIMEOUT_SECONDS`` (the message carries the tail of its log).
    """
    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    access_key = "MWTEST" + secrets.token_hex(7).upper()
    secret_key = secrets.token_urlsafe(30)
    with tempfile.TemporaryDirectory(prefix="mw-weed-") as tmp:
        root = pathlib.Path(tmp)
        (root / "data").mkdir()
        identities = {
            "identities": [
                {
                    "name": "modelwatch",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        config = root / "identities.json"
        config.write_text(json.dumps(identities))
        config.chmod(0o600)
        ports = {name: _free_port_pair() for name in ("master", "volume", "filer", "s3")}
        args = [str(weed_binary()), "server", "-dir", str(root / "data")]
        args += ["-ip", "127.0.0.1", "-ip.bind", "127.0.0.1", "-master.telemetry=false"]
        args += ["-master.volumeSizeLimitMB", "256", "-volume.max", "0", "-filer", "-s3"]
        args += ["-volume.preStopSeconds", "0"]
        for name, port in ports.items():
            args += [f"-{name}.port", str(port), f"-{name}.port.grpc", str(port + 10000)]
        args += ["-s3.port.iceberg", "0", "-s3.port.lance", "0", "-s3.config", str(config)]
        log_path = root / "weed.log"
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True
            )
        try:
            server = S3Server(endpoint, bucket, access_key, secret_key)
            _wait_ready(proc, server, log_path)
            yield server
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)  # its data is thrown away: no need to wait longer
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


def _wait_ready(proc: subprocess.Popen[bytes], server: S3Server, log_path: pathlib.Path) -> None:
    """Wait for the gateway, then create the bucket (retried while the filer starts)."""
    import s3fs

    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if _healthy(f"{server.endpoint}/healthz"):
            fs = s3fs.S3FileSystem(
                key=server.access_key,
                secret=server.secret_key,
                endpoint_url=server.endpoint,
                skip_instance_cache=True,
            )
            try:
                if not fs.exists(server.bucket):
                    fs.mkdir(server.bucket)
                return
            except OSError as exc:
                last_error = exc
        time.sleep(0.5)
    tail = log_path.read_text(errors="replace")[-3000:]
    state = "exited" if proc.poll() is not None else "did not become ready"
    raise RuntimeError(
        f"weed server {state} (last error: {last_error}); the tail of its log:\n{tail}"
    )
