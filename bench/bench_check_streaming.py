"""Larger than memory: 20,000,000 rows x 20 features, streamed in batches.

The reference (20M rows, same generator) is profiled once with
``modelwatch profile --mode sketch``; then ``modelwatch check`` runs with the default
memory budget (1 GiB), under which 20M x 20 x 8 bytes = 3.2 GB picks the streaming
``sketch`` mode by itself: record batches of 262,144 rows into one KLL sketch
(k = 4000) per feature. Target: peak RSS <= 1 GB.

The KS statistics of two features are recomputed exactly in this process (two
columns in memory) to show the sketch error against its stated bound.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
from typing import Any

from bench.bench_check import run_measured

ROWS = int(os.environ.get("BENCH_STREAM_ROWS", 20_000_000))
FEATURES = int(os.environ.get("BENCH_STREAM_FEATURES", 20))
CHUNK = 1_000_000


def write_data(path: pathlib.Path, rows: int, features: int, *, seed: int, shift: float) -> None:
    """Write ``rows`` x ``features`` normal columns chunk by chunk (bounded memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    names = [f"f{i:02d}" for i in range(features)]
    schema = pa.schema([(n, pa.float64()) for n in names])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            cols = [rng.normal(size=n) + (shift if i < 2 else 0.0) for i in range(features)]
            writer.write_table(pa.table(cols, schema=schema), row_group_size=CHUNK)


def exact_ks(ref: str, cur: str, column: str) -> float:
    import numpy as np
    import pyarrow.parquet as pq

    from modelwatch_monitor.check.drift import Distribution
    from modelwatch_monitor.check.drift.ks import ks_statistic

    a = np.sort(pq.read_table(ref, columns=[column]).column(0).to_numpy())
    da = Distribution.from_sample(a, presorted=True)
    b = np.sort(pq.read_table(cur, columns=[column]).column(0).to_numpy())
    return ks_statistic(da, Distribution.from_sample(b, presorted=True))


def main() -> dict[str, Any]:
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="mw-bench-stream-") as tmp:
        folder = pathlib.Path(tmp)
        ref, cur = folder / "reference.parquet", folder / "current.parquet"
        write_data(ref, ROWS, FEATURES, seed=1, shift=0.0)
        write_data(cur, ROWS, FEATURES, seed=2, shift=0.05)
        profile = str(folder / "profile.json")
        prof = run_measured(
            [py, "-m", "modelwatch_monitor", "profile", str(ref), "--output", profile,
             "--mode", "sketch"]
        )  # fmt: skip
        check = run_measured(
            [
                py, "-m", "modelwatch_monitor", "check", "--reference", profile,
                "--current", str(cur), "--output", str(folder / "report"),
                "--result-path", str(folder / "result.json"),
            ]
        )  # fmt: skip
        report = json.loads((folder / "report" / "report.json").read_text())
        feats = {f["name"]: f for f in report["features"]}
        accuracy = {}
        for name in ("f00", "f05"):
            exact = exact_ks(str(ref), str(cur), name)
            accuracy[name] = {
                "sketch_D": round(feats[name]["statistic"], 6),
                "exact_D": round(exact, 6),
                "abs_error": round(abs(feats[name]["statistic"] - exact), 6),
                "stated_bound": round(feats[name]["error_bound"], 6),
                "drift": feats[name]["drift"],
            }
    data_mb = ROWS * FEATURES * 8 / 2**20
    return {
        "rows": ROWS,
        "features": FEATURES,
        "data_in_memory_mb": round(data_mb, 1),
        "mode": report["mode"],
        "profile": {"wall_s": prof["wall_s"], "peak_rss_mb": prof["peak_rss_mb"]},
        "check": {"wall_s": check["wall_s"], "peak_rss_mb": check["peak_rss_mb"]},
        "rows_per_second": round(ROWS / check["wall_s"]),
        "targets_met": {"rss_le_1gb": check["peak_rss_mb"] <= 1024},
        "ks_sketch_vs_exact": accuracy,
        "drifted": report["n_drifted"],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
