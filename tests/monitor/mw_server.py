"""A trained store and a real ``modelwatch serve`` subprocess, for the server tests."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from modelwatch_monitor import cli, contract
from modelwatch_monitor.serve.config import ENV_DRAIN_SECONDS
from modelwatch_monitor.store.registry import Registry
from tests.monitor import mw_synth as synth


def train_store(root: pathlib.Path) -> dict[str, Any]:
    """Return a store under ``root`` with version 1 of ``churn``, trained by ``retrain``."""
    synth.frame(400, seed=7).to_parquet(root / "train.parquet")
    code = cli.main(
        ["retrain", "--train", str(root / "train.parquet"), "--target", "y", "--task",
         "classification", "--time-budget", "1", "--estimators", "lgbm", "--store",
         str(root / "store"), "--model", "churn", "--version", "1", "--id-column", "id",
         "--timestamp-column", "ts", "--termination-log", str(root / "t")]
    )  # fmt: skip
    assert code == 0
    meta = Registry(str(root / "store"), "churn").metadata(1)
    return {"root": root, "uri": str(root / "store"), "sha256": meta["sha256"]}


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    stderr: pathlib.Path

    def log(self) -> str:
        return self.stderr.read_text()


def start_server(
    tmp_path: pathlib.Path, env: dict[str, str], *args: str, wait_ready: bool = True
) -> Server:
    """Start ``modelwatch serve``; no drain on SIGTERM unless ``env`` sets one."""
    port = synth.free_port()
    err = tmp_path / f"server-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelwatch_monitor", "serve", "--host", "127.0.0.1",
         "--port", str(port), *args],
        env={**os.environ, ENV_DRAIN_SECONDS: "0", **env}, stdout=subprocess.DEVNULL,
        stderr=err.open("wb"), cwd=tmp_path,
    )  # fmt: skip
    server = Server(proc, f"http://127.0.0.1:{port}", err)
    deadline = time.monotonic() + 60
    path = "/readyz" if wait_ready else "/healthz"
    while time.monotonic() < deadline:
        assert proc.poll() is None, server.log()
        try:
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not come up: {server.log()}")


def stop(server: Server) -> int:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
    return server.proc.wait(timeout=60)


def model_env(store: dict[str, Any], **over: str) -> dict[str, str]:
    env = {
        contract.ENV_MODEL_NAME: "churn",
        contract.ENV_MODEL_VERSION: "1",
        contract.ENV_MODEL_SHA256: store["sha256"],
        contract.ENV_STORE_URI: store["uri"],
    }
    env.update(over)
    return env


def records(n: int, *, seed: int, with_id: bool = True) -> list[dict[str, Any]]:
    rows = synth.frame(n, seed=seed, start_id=seed * 1000)
    cols = ["id", *synth.FEATURES] if with_id else synth.FEATURES
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in rows[cols].to_dict("records")]  # fmt: skip
