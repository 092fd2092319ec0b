"""The same check on the file store and on the S3 store: 1,000,000 rows x 20 features.

The reference profile, the current Parquet file and the report live either in a local
folder (``file://``) or in a bucket of a real S3-compatible server (SeaweedFS's
``weed server -s3`` on loopback, started here from the binary
``hack/build-seaweedfs.sh`` builds). Each ``modelwatch check`` runs in a fresh process;
the figure is the best of ``REPEATS`` wall times. ``read_current`` times reading the
current file alone (pyarrow through fsspec), which is what the store adds to a check.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
import time
from typing import Any

from bench.bench_check import run_measured, write_data, write_profile

ROWS = int(os.environ.get("BENCH_STORE_ROWS", 1_000_000))
FEATURES = int(os.environ.get("BENCH_STORE_FEATURES", 20))
REPEATS = int(os.environ.get("BENCH_STORE_REPEATS", 2))

READ = """
import sys, fsspec, pyarrow.parquet as pq
with fsspec.open(sys.argv[1], "rb") as fh:
    print(pq.read_table(fh).num_rows)
"""


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(runs, key=lambda r: float(r["wall_s"]))
    return {"wall_s": best["wall_s"], "peak_rss_mb": best["peak_rss_mb"], "runs": len(runs)}


def _measure(store: str, profile: str, current: str) -> dict[str, Any]:
    py = sys.executable
    checks, reads, result, failures = [], [], {}, []
    for i in range(REPEATS):
        cmds = [
            [
                py, "-m", "modelwatch_monitor", "check", "--reference", profile,
                "--current", current, "--output", f"{store}/reports/run-{i}",
                "--result-path", os.devnull,
            ],
            [py, "-c", READ, current],
        ]  # fmt: skip
        for cmd, runs in zip(cmds, (checks, reads), strict=True):
            # A process that fails is counted and run once more (seen: an abort at
            # interpreter exit, "terminate called without an active exception").
            for _attempt in range(2):
                try:
                    runs.append(run_measured(cmd))
                    break
                except RuntimeError as exc:
                    failures.append(str(exc)[-300:])
        result = json.loads(checks[-1]["last"])
    return {
        "check": _best(checks),
        "read_current": _best(reads),
        "failed_processes": failures,
        "drifted": result.get("nDrifted"),
        "report": result.get("reportUri"),
    }


def main() -> dict[str, Any]:
    import fsspec
    from tests.s3_server import missing_reason, start_s3_server

    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    with tempfile.TemporaryDirectory(prefix="mw-bench-store-") as tmp:
        folder = pathlib.Path(tmp)
        ref, cur = write_data(folder, ROWS, FEATURES)
        profile = write_profile(folder, ref)
        file_store = f"file://{folder}/store"
        figures: dict[str, Any] = {
            "rows": ROWS,
            "features": FEATURES,
            "current_file_mb": round(os.path.getsize(cur) / 2**20, 1),
            "file": _measure(file_store, f"file://{profile}", f"file://{cur}"),
        }
        with start_s3_server(bucket="bench") as server:
            saved = dict(os.environ)
            os.environ.update(server.env())
            try:
                s3_store = server.uri("store")
                fs, _ = fsspec.core.url_to_fs(s3_store)
                fs.pipe_file(f"{s3_store}/warm-up", b"x")  # the server grows its volumes
                start = time.perf_counter()
                fs.put_file(cur, f"{s3_store}/current.parquet")
                upload = time.perf_counter() - start
                fs.put_file(profile, f"{s3_store}/profile.json")
                figures["s3"] = _measure(
                    s3_store, f"{s3_store}/profile.json", f"{s3_store}/current.parquet"
                )
                figures["s3"]["upload_current_s"] = round(upload, 3)
            finally:
                os.environ.clear()
                os.environ.update(saved)
    figures["s3_over_file"] = round(
        float(figures["s3"]["check"]["wall_s"]) / float(figures["file"]["check"]["wall_s"]), 3
    )
    figures["server"] = "SeaweedFS weed server -s3, loopback, one process"
    return figures


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
