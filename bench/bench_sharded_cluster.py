"""Sharded checks on the local cluster: 100,000,000 rows x 20 features, N = 1, 2, 4 pods.

The operator's own path, end to end: a ModelMonitor with ``spec.check.parallelism: N``,
its CronJob rendered by the operator, a check started from it (``kubectl create job
--from=cronjob``, as the schedule would), the Indexed Job's pods on the kubelet, and the
operator reading the result into status. The same window lives twice:

- ``s3``: in the object store (SeaweedFS's S3 gateway, ``make s3-up``);
- ``file``: on a PersistentVolume (the local provisioner's host folder).

The window is a prediction log of 100 Parquet files (1M rows each, float32 features, row
groups of 250,000 rows) with a ``model_version`` column: 5% of the rows were served by
version 1 (shifted), 95% by version 2, the version that serves, whose first two features
moved by 0.1. The reference is 2M rows. A first one-pod check computes the reference
profile and stores it (timed apart); every later check reuses it.

Per run: wall time from the Job's creation to its completion (the API's second
resolution) and to the status showing its result; each pod's peak RSS and check time,
from the ``peak RSS`` and ``check done`` lines it logs; the merge time shard 0 logs; and
agreement with the one-pod sketch run (the same drifted features; each statistic within
the two runs' stated KLL error bounds).

The machine has 2 cores: N pods share them, so N = 4 cannot beat N = 2 here.

Environment (defaults): BENCH_CLUSTER_ROWS (100000000), BENCH_CLUSTER_FILES (100),
BENCH_CLUSTER_SHARDS (1,2,4), BENCH_CLUSTER_STORES (s3,file), BENCH_CLUSTER_KEEP (0: the
namespaces and their data are removed at the end; 1 keeps them, and a later run reuses the
data), BENCH_CLUSTER_PREPARE (1: write and upload the data, then stop).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import re
import subprocess
import sys
import time
from typing import Any

from tests.cluster.mw_operator_env import (
    MODEL,
    S3Store,
    deploy_operator,
    hand_over,
    make_s3_store,
    make_store,
    monitor,
    server_deployment,
    wait_status,
)
from tests.conftest import Kube

from bench.bench_sharded import ROW_GROUP, agreement, write_file

ROWS = int(os.environ.get("BENCH_CLUSTER_ROWS", 100_000_000))
FILES = int(os.environ.get("BENCH_CLUSTER_FILES", 100))
REF_ROWS = 2_000_000
SHARDS = [int(n) for n in os.environ.get("BENCH_CLUSTER_SHARDS", "1,2,4").split(",")]
STORES = os.environ.get("BENCH_CLUSTER_STORES", "s3,file").split(",")
KEEP = os.environ.get("BENCH_CLUSTER_KEEP") == "1"
PREPARE = os.environ.get("BENCH_CLUSTER_PREPARE") == "1"
NS = {"file": "bench-sharded-file", "s3": "bench-sharded-s3"}
NAME = "bench"
DONE_RE = re.compile(r"check done in ([0-9.]+)s")
RSS_RE = re.compile(r"peak RSS (\d+) MiB")
MERGE_RE = re.compile(r"merged \d+ shards in ([0-9.]+)s")


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fresh_namespace(kube: Kube, name: str) -> None:
    """Namespace ``name``, new; or, with KEEP, as an earlier run left it (its data too)."""
    exists = kube.kubectl("get", "namespace", name, check=False).returncode == 0
    if exists and KEEP:
        kube.kubectl("delete", "mm", "--all", "-n", name, "--wait=true", timeout=300)
        kube.kubectl("delete", "jobs,deployments", "--all", "-n", name, "--wait=true", timeout=300)
        return
    kube.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", timeout=600)
    kube.kubectl("create", "namespace", name)
    kube.wait_for(
        lambda: kube.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
        what=f"the default ServiceAccount in {name}",
    )


def write_window(data: pathlib.Path) -> float:
    """The reference and the window's files under ``data``; return the seconds it took."""
    started = time.perf_counter()
    (data / "current").mkdir(parents=True, exist_ok=True)
    write_file(
        data / "reference.parquet", REF_ROWS, seed=1, shift=0.0, v1_share=0.0, float_type="float32"
    )  # the reference: no timestamps
    for k in range(FILES):
        write_file(
            data / "current" / f"part-{k:03d}.parquet", ROWS // FILES, seed=100 + k, shift=0.1,
            v1_share=0.05, float_type="float32", timestamps=True,
        )  # fmt: skip
    return time.perf_counter() - started


def upload(s3: S3Store, data: pathlib.Path) -> float:
    """Copy ``data`` to ``<s3.uri>/data`` (the key pair in the child's env only)."""
    started = time.perf_counter()
    # One file at a time: fs.put(recursive=True) reads many files at once and held the
    # whole 12 GB window in memory.
    code = (
        "import fsspec, pathlib, sys\n"
        "fs, _ = fsspec.core.url_to_fs(sys.argv[2])\n"
        "root = pathlib.Path(sys.argv[1])\n"
        "for p in sorted(root.rglob('*.parquet')):\n"
        "    fs.put_file(str(p), sys.argv[2] + '/' + p.relative_to(root).as_posix())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, f"{data}/", f"{s3.uri}/data"],
        capture_output=True,
        text=True,
        env=s3.host_env(),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"upload to the object store failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def apply_monitor(kube: Kube, namespace: str, store_uri: str, store: dict[str, Any]) -> None:
    doc = monitor(
        namespace,
        NAME,
        retrain={"enabled": False},
        store=store,
        data={
            "reference": {"uri": f"{store_uri}/data/reference.parquet"},
            "current": {"uri": f"{store_uri}/data/current", "window": "3650d"},
        },
        check={"parallelism": 1},
    )
    spec = doc["spec"]
    spec["model"] = {"name": MODEL, "task": "classification", "target": "y"}
    spec.pop("performance", None)
    kube.apply(doc)
    wait_status(
        kube,
        namespace,
        lambda s: s.get("observedGeneration") == 1,
        timeout=120,
        what="the status to be initialised",
        name=NAME,
    )


def set_parallelism(kube: Kube, namespace: str, n: int) -> None:
    kube.kubectl(
        "patch", "mm", NAME, "-n", namespace, "--type", "merge",
        "-p", json.dumps({"spec": {"check": {"parallelism": n}}}),
    )  # fmt: skip

    def rendered() -> bool:
        spec = kube.get("cronjob", f"{NAME}-check", namespace)["spec"]["jobTemplate"]["spec"]
        return int(spec.get("completions") or 1) == n

    kube.wait_for(rendered, timeout=120, what=f"the CronJob to run checks in {n} pod(s)")


def _time(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def run_check(kube: Kube, namespace: str, job: str) -> dict[str, Any]:
    """Start one check from the CronJob; collect each pod's log lines as it finishes."""
    created = time.time()
    kube.kubectl("create", "job", "-n", namespace, f"--from=cronjob/{NAME}-check", job)
    logs: dict[str, str] = {}
    read: dict[str, Any] = {}
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        try:
            pods = json.loads(
                kube.kubectl(
                    "get", "pods", "-n", namespace, "-l", f"job-name={job}", "-o", "json"
                ).stdout
            )["items"]
            for pod in pods:
                name = pod["metadata"]["name"]
                if name not in logs and pod["status"].get("phase") in ("Succeeded", "Failed"):
                    logs[name] = kube.kubectl("logs", "-n", namespace, name).stdout
            st = kube.get("modelmonitor", NAME, namespace).get("status") or {}
        except (AssertionError, subprocess.SubprocessError):  # an API server blip
            time.sleep(5)
            continue
        if st.get("lastCheckJob") == job and not read:
            read = {"at": time.time(), "status": st}
        if read and len(logs) >= len(pods) > 0:
            break
        time.sleep(2)
    else:
        raise RuntimeError(f"check {job} in {namespace} did not finish within an hour")
    status = read["status"]
    if "lastCheck" not in status:
        raise RuntimeError(f"check {job} failed: {status.get('lastFailure')}")
    j = kube.get("job", job, namespace)
    wall = _time(j["status"]["completionTime"]) - _time(j["metadata"]["creationTimestamp"])
    pods_out = []
    merge = None
    for name, text in sorted(logs.items()):
        done = DONE_RE.findall(text)
        rss = RSS_RE.findall(text)
        merged = MERGE_RE.findall(text)
        if merged:
            merge = float(merged[-1])
        pods_out.append(
            {
                "pod": name,
                "check_s": float(done[-1]) if done else None,
                "peak_rss_mib": int(rss[-1]) if rss else None,
            }
        )
    return {
        "job": job,
        "wall_s": wall.total_seconds(),
        "to_status_s": round(read["at"] - created, 1),
        "merge_s": merge,
        "pods": pods_out,
        "last_check": {
            k: status["lastCheck"].get(k) for k in ("datasetDrift", "nDrifted", "nFeatures", "rows")
        },
        "report_uri": status["lastCheck"].get("reportUri"),
    }


def read_report(uri: str, store_dir: pathlib.Path, s3: S3Store | None) -> dict[str, Any]:
    if uri.startswith("file:///store/"):
        return json.loads(
            (store_dir / uri.removeprefix("file:///store/") / "report.json").read_text()
        )  # type: ignore[no-any-return]
    assert s3 is not None
    code = (
        "import fsspec, sys\n"
        "with fsspec.open(sys.argv[1] + '/report.json') as f: sys.stdout.write(f.read().decode())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, uri], capture_output=True, text=True, env=s3.host_env()
    )
    if proc.returncode != 0:
        raise RuntimeError(f"reading {uri}/report.json failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def main() -> dict[str, Any]:
    kube = Kube(os.environ["KUBECONFIG"])
    for ns in NS.values():
        fresh_namespace(kube, ns)
    store_dir = make_store(kube, NS["file"])
    shape = f"{ROWS} rows in {FILES} files, with timestamps"
    written = store_dir / "data" / ".written"
    write_s = None
    if not (written.exists() and written.read_text() == shape):
        say(f"writing {ROWS:,} rows x 20 features in {FILES} files")
        write_s = round(write_window(store_dir / "data"), 1)
        written.write_text(shape)
    size = sum(p.stat().st_size for p in (store_dir / "data").rglob("*.parquet"))
    hand_over(store_dir)
    figures: dict[str, Any] = {
        "rows": ROWS,
        "features": 20,
        "files": FILES,
        "row_groups": ROWS // ROW_GROUP,
        "bytes": size,
        "data_write_s": write_s,
        "cores": os.cpu_count(),
        "stores": {},
    }
    s3: S3Store | None = None
    if "s3" in STORES:
        s3 = make_s3_store(kube, NS["s3"])
        uploaded = store_dir / ".uploaded"
        if not (uploaded.exists() and uploaded.read_text() == shape):
            say(f"uploading {size / 2**30:.1f} GiB to the object store")
            figures["upload_s"] = round(upload(s3, store_dir / "data"), 1)
            uploaded.write_text(shape)
    if PREPARE:
        return figures
    if kube.kubectl(
        "get", "deploy/modelwatch-operator", "-n", "modelwatch-system", check=False
    ).returncode:
        deploy_operator(kube, replicas=1)  # else the running operator, as it is
    for kind in STORES:
        ns = NS[kind]
        if kind == "s3":
            assert s3 is not None
            kube.apply(server_deployment(ns, version=2, sha256="ab" * 32, serve=False, s3=s3))
            spec_store = {
                "uri": s3.uri,
                "endpoint": s3.endpoint,
                "credentials": {"secretName": "modelwatch-s3"},
            }
            apply_monitor(kube, ns, s3.uri, spec_store)
        else:
            kube.apply(server_deployment(ns, version=2, sha256="ab" * 32, serve=False))
            apply_monitor(
                kube,
                ns,
                "file:///store",
                {"uri": "file:///store", "volume": {"claimName": "store"}},
            )
        say(f"{kind}: the first check (profiles the reference)")
        first = run_check(kube, ns, "check-profile")
        runs: dict[str, Any] = {}
        single_report: dict[str, Any] | None = None
        for n in SHARDS:
            set_parallelism(kube, ns, n)
            say(f"{kind}: check in {n} pod(s)")
            run = run_check(kube, ns, f"check-{n}")
            report = read_report(str(run.pop("report_uri")), store_dir, s3)
            if n == 1:
                single_report = report
                run["drifted"] = sorted(f["name"] for f in report["features"] if f["drift"])
            elif single_report is not None:
                run["agreement"] = agreement(single_report, report)
            run["rows_per_second"] = round(ROWS / run["wall_s"]) if run["wall_s"] else None
            runs[str(n)] = run
            say(f"{kind}: N={n}: {run['wall_s']:.0f}s, pods {run['pods']}")
        first.pop("report_uri", None)
        figures["stores"][kind] = {"first_check_with_profile": first, "runs": runs}
    if not KEEP:
        for ns in NS.values():
            kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        if s3 is not None:
            subprocess.run(
                [sys.executable, "-c",
                 "import fsspec, sys; fs, _ = fsspec.core.url_to_fs(sys.argv[1]); "
                 "fs.rm(sys.argv[1], recursive=True)", s3.uri],
                capture_output=True, env=s3.host_env(), check=False,
            )  # fmt: skip
    figures["judged_share"] = 0.95
    return figures


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
