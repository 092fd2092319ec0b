"""``/predict`` latency and throughput, with prediction logging on and off.

A model (FLAML, lgbm, 4 features, one categorical) is trained once into a temp store;
then a real ``modelwatch serve`` subprocess is driven over HTTP by an aiohttp client
in this process, on keep-alive connections:

- ``single``: single-row requests, ``BENCH_SERVE_CONCURRENCY`` (4) in flight;
- ``batch``: 1,000-row requests, 2 in flight.

Two servers run side by side, one with the prediction log on (flushed every second, so
files are really written during the run) and one with ``--no-prediction-log``. Each
shape alternates short segments between them for ``BENCH_SERVE_ROUNDS`` rounds (the
order flips every round), so both see the same background load; throughput is the
median over segments, latencies are pooled, and ``logging_cost_pct`` is one minus the
median of the per-round on/off throughput ratios. Client and servers share the
machine's cores, so the figures are a floor.

Besides wall-clock throughput (sensitive to whatever else runs on the machine), the
servers' own CPU time per request is read from ``/proc`` (log writer thread included,
after letting it catch up): ``logging_cpu_cost_pct`` compares it with logging on and
off, and is the steadier figure on a shared machine.

A third, steadiest view, ``cpu_breakdown``, times each stage of a request in this
process with ``time.process_time`` (see :func:`_cpu_breakdown`); its
``logging_share_pct`` is logging's CPU (request side plus the writer's share) over the
CPU of serving the request, an upper bound on the throughput it costs.

Target: logging costs at most 10% of throughput.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

ROUNDS = int(os.environ.get("BENCH_SERVE_ROUNDS", 8))
CONCURRENCY = int(os.environ.get("BENCH_SERVE_CONCURRENCY", 4))
SINGLE_SECONDS = float(os.environ.get("BENCH_SERVE_SINGLE_SECONDS", 2))
BATCH_SECONDS = float(os.environ.get("BENCH_SERVE_BATCH_SECONDS", 3))
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _synthetic(n: int, seed: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], size=n)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "x3": rng.normal(size=n),
            "color": color,
        }
    )
    effect = np.where(color == "red", 0.8, -0.4)
    frame["y"] = (frame.x1 + frame.x2 + effect + rng.normal(scale=0.3, size=n) > 0).astype(int)
    return frame


def _train(root: pathlib.Path) -> str:
    from modelwatch_monitor import cli
    from modelwatch_monitor.store.registry import Registry

    _synthetic(5000, 0).to_parquet(root / "train.parquet")
    code = cli.main(
        ["retrain", "--train", str(root / "train.parquet"), "--target", "y", "--task",
         "classification", "--time-budget", "3", "--estimators", "lgbm", "--store",
         str(root / "store"), "--model", "bench", "--version", "1", "--id-column", "id",
         "--termination-log", str(root / "termination")]
    )  # fmt: skip
    if code != 0:
        raise RuntimeError("training the benchmark model failed")
    return str(Registry(str(root / "store"), "bench").metadata(1)["sha256"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(root: pathlib.Path, sha: str, *, log: bool) -> tuple[subprocess.Popen[bytes], str]:
    import urllib.request

    port = _free_port()
    env = {
        **os.environ,
        "MODEL_NAME": "bench",
        "MODEL_VERSION": "1",
        "MODEL_SHA256": sha,
        "MODELWATCH_STORE": str(root / "store"),
        "MODELWATCH_DRAIN_SECONDS": "0",  # no endpoints to wait for
    }
    args = ["--log-flush-seconds", "1"] if log else ["--no-prediction-log"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelwatch_monitor", "--log-level", "WARNING", "serve",
         "--host", "127.0.0.1", "--port", str(port), *args],
        env=env, stdout=subprocess.DEVNULL, stderr=(root / f"server-{port}.log").open("wb"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads (Linux ``/proc``)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(
    url: str, bodies: list[bytes], concurrency: int, seconds: float, *, warmup: float = 0.3
) -> tuple[list[float], float]:
    """POST ``bodies`` round-robin for ``seconds``; return (latencies, elapsed)."""
    import aiohttp

    latencies: list[float] = []
    stop_at = 0.0

    async def worker(session: aiohttp.ClientSession, k: int) -> None:
        i = k
        while time.perf_counter() < stop_at:
            body = bodies[i % len(bodies)]
            i += concurrency
            t0 = time.perf_counter()
            async with session.post(
                url + "/predict", data=body, headers={"Content-Type": "application/json"}
            ) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"/predict answered {r.status}")
            latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop_at = time.perf_counter() + warmup  # connections, first-call paths
        await asyncio.gather(*(worker(session, k) for k in range(concurrency)))
        latencies.clear()
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.gather(*(worker(session, k) for k in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, elapsed


def _measure_shape(
    servers: dict[str, tuple[subprocess.Popen[bytes], str]],
    bodies: list[bytes],
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    """Alternate segments between the servers; pool latencies, pair throughputs."""
    rows = len(json.loads(bodies[0]))
    lat: dict[str, list[float]] = {m: [] for m in servers}
    rps: dict[str, list[float]] = {m: [] for m in servers}
    modes = list(servers)
    cpu0 = {m: _cpu_seconds(proc.pid) for m, (proc, _) in servers.items()}
    for r in range(ROUNDS):
        for mode in modes if r % 2 == 0 else modes[::-1]:
            latencies, elapsed = asyncio.run(_drive(servers[mode][1], bodies, concurrency, seconds))
            lat[mode].extend(latencies)
            rps[mode].append(len(latencies) / elapsed)
    time.sleep(2.0)  # let the log writer finish: its CPU counts too
    out: dict[str, Any] = {}
    for mode, (proc, _) in servers.items():
        ms = np.asarray(lat[mode]) * 1000
        median_rps = float(np.median(rps[mode]))
        out[mode] = {
            "requests": len(ms),
            "requests_per_s": round(median_rps, 1),
            "rows_per_s": round(median_rps * rows, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "server_cpu_ms_per_request": round(
                1000 * (_cpu_seconds(proc.pid) - cpu0[mode]) / len(ms), 3
            ),
        }
    pair = [on / off for on, off in zip(rps["log_on"], rps["log_off"], strict=True)]
    out["logging_cost_pct"] = round(100 * (1 - float(np.median(pair))), 1)
    out["logging_cpu_cost_pct"] = round(
        100
        * (
            out["log_on"]["server_cpu_ms_per_request"] / out["log_off"]["server_cpu_ms_per_request"]
            - 1
        ),
        1,
    )
    out["rounds_rps"] = {m: [round(x, 1) for x in v] for m, v in rps.items()}
    return out


def _bodies(rows: int, count: int) -> list[bytes]:
    frame = _synthetic(rows * count, 1).drop(columns=["y"])
    records = frame.to_dict("records")
    out = []
    for i in range(count):
        chunk = records[i * rows : (i + 1) * rows]
        out.append(json.dumps([{k: _py(v) for k, v in r.items()} for r in chunk]).encode())
    return out


def _py(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _cpu_breakdown(root: pathlib.Path, body: bytes, repeat: int) -> dict[str, Any]:
    """CPU milliseconds per request of each stage, measured in this process.

    ``serve`` is parse + validate + predict + encode the response (the HTTP layer is
    left out, so the logging share below is an upper bound); ``log_request`` is what a
    handler adds to log its batch; ``log_writer`` is the writer thread's cost of
    turning those rows into Parquet, per request.
    """
    import types
    from datetime import UTC, datetime

    from modelwatch_monitor.serve import records as serve_records
    from modelwatch_monitor.serve.prediction_log import LoggedBatch, to_arrow, write_batches
    from modelwatch_monitor.store.feature_schema import frames_from_records
    from modelwatch_monitor.store.registry import Registry

    model = Registry(str(root / "store"), "bench").load(1).model
    model.set_threads(1)
    state = types.SimpleNamespace(id_column="id", timestamp_column=None)
    now = datetime.now(UTC)

    def serve_once() -> tuple[Any, Any, Any, Any]:
        records = json.loads(body)
        X, raw = frames_from_records(records, model.schema)
        predictions, proba = model.predict_both(X, coerce=False)
        json.dumps({"predictions": predictions.tolist(), "probabilities": proba.tolist()})
        return records, raw, predictions, proba

    records, raw, predictions, proba = serve_once()

    def log_once() -> LoggedBatch:
        columns = serve_records.log_columns(state, raw, records, now)  # type: ignore[arg-type]
        return LoggedBatch(columns, to_arrow(predictions), proba, "req", now)

    def timed(fn: Any, n: int) -> float:
        fn()
        start = time.process_time()
        for _ in range(n):
            fn()
        return (time.process_time() - start) / n * 1000

    serve_ms = timed(serve_once, repeat)
    log_ms = timed(log_once, repeat)
    # A file every 20,000 rows or 10 s (the server's defaults); 1,000 single-row
    # requests is 10 s at 100 requests/s, fewer requests per file than at full speed.
    per_file = max(1, min(20_000 // len(records), 1000))
    batches = [log_once() for _ in range(per_file)]
    writer_ms = timed(
        lambda: write_batches(
            batches, store=str(root / "cpu"), model="bench", day="2026-01-01", version=1,
            classes=[0, 1],
        ),
        max(3, repeat // (10 * per_file)),
    ) / per_file  # fmt: skip
    return {
        "serve_cpu_ms": round(serve_ms, 4),
        "log_request_cpu_ms": round(log_ms, 4),
        "log_writer_cpu_ms": round(writer_ms, 4),
        "logging_share_pct": round(100 * (log_ms + writer_ms) / serve_ms, 1),
    }


def main() -> dict[str, Any]:
    shapes = {
        "single": (_bodies(1, 500), CONCURRENCY, SINGLE_SECONDS),
        "batch_1000": (_bodies(1000, 8), 2, BATCH_SECONDS),
    }
    figures: dict[str, Any] = {
        "rounds": ROUNDS,
        "concurrency": {"single": CONCURRENCY, "batch_1000": 2},
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        root = pathlib.Path(tmp)
        sha = _train(root)
        servers = {mode: _start(root, sha, log=mode == "log_on") for mode in ("log_off", "log_on")}
        try:
            for shape, (bodies, conc, seconds) in shapes.items():
                figures[shape] = _measure_shape(servers, bodies, conc, seconds)
        finally:
            for proc, _ in servers.values():
                _stop(proc)
        figures["cpu_breakdown"] = {
            "single": _cpu_breakdown(root, shapes["single"][0][0], 2000),
            "batch_1000": _cpu_breakdown(root, shapes["batch_1000"][0][0], 100),
        }
        import pyarrow.parquet as pq

        files = list((root / "store" / "bench" / "predictions").rglob("*.parquet"))
        figures["prediction_log_files"] = len(files)
        figures["prediction_log_rows"] = sum(pq.read_metadata(str(f)).num_rows for f in files)
    figures["target_logging_cost_pct_max"] = 10
    figures["meets_target_http"] = all(figures[s]["logging_cost_pct"] <= 10 for s in shapes)
    figures["meets_target_cpu"] = all(
        figures["cpu_breakdown"][s]["logging_share_pct"] <= 10 for s in shapes
    )
    figures["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    return figures


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
