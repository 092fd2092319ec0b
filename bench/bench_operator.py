# mypy: disable-error-code="no-untyped-call"
"""Operator benchmarks on the real cluster (the operator in-cluster, from its image).

1. Scale: 1,000 ModelMonitors in 20 namespaces applied at once -> wall time until every
   CronJob exists and every status is initialised; the operator's RSS (VmRSS and its peak
   VmHWM) once idle.
2. Reaction: 100 check Jobs, one per monitor across the namespaces, created together and
   finishing close together -> for each, the time from the Job's completion to the status
   showing its result (median, p99, max); the operator's RSS afterwards.
3. Latency: a check Job completes -> the monitor's status shows its result, and -> the
   retrain Job exists, one sample at a time.
4. Throttling, over phases 1 and 2: the operator's log lines for HTTP 429 / throttling,
   and the API server's priority-and-fairness rejections (``/metrics`` before and after).

The check Jobs print a canned drift result (the monitor image's Python, no data), so the
figures measure the operator, not the drift engine. Times are taken by this process from
watch events, with sub-second resolution.

Environment (defaults): BENCH_OPERATOR_MONITORS (1000), BENCH_OPERATOR_NAMESPACES (20),
BENCH_OPERATOR_REACTION_JOBS (100), BENCH_OPERATOR_SAMPLES (10 latency samples),
BENCH_OPERATOR_METRICS_EVERY (seconds between API server queue samples, 5; 0 = none),
BENCH_OPERATOR_LOCAL (1 = run the operator as a local process).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from kubernetes import client, config, watch

from modelwatch_monitor import contract
from modelwatch_operator import builders

REPO = pathlib.Path(__file__).resolve().parent.parent
KUBECTL = str(REPO / "hack" / "kubectl")
NAMESPACE_SCALE = "bench-operator-scale"  # the prefix: -00, -01, ...
NAMESPACE_LATENCY = "bench-operator-latency"
# The scale namespaces carry this label, so a run removes the ones an earlier run left.
BENCH_LABEL = "bench.modelwatch.io/operator"
OPERATOR_NS = "modelwatch-system"
N_MONITORS = int(os.environ.get("BENCH_OPERATOR_MONITORS", "1000"))
N_NAMESPACES = int(os.environ.get("BENCH_OPERATOR_NAMESPACES", "20"))
N_REACTION = int(os.environ.get("BENCH_OPERATOR_REACTION_JOBS", "100"))
N_LATENCY = int(os.environ.get("BENCH_OPERATOR_SAMPLES", "10"))
METRICS_EVERY = float(os.environ.get("BENCH_OPERATOR_METRICS_EVERY", "5"))
SCALE_TIMEOUT = max(600.0, 0.9 * N_MONITORS)
LOG_PATH = pathlib.Path(tempfile.gettempdir()) / "modelwatch-operator-bench.log"
# BENCH_OPERATOR_LOCAL=1 runs the operator as a local process (admin kubeconfig) instead of
# in-cluster: for when the operator image is not built yet.
LOCAL = os.environ.get("BENCH_OPERATOR_LOCAL") == "1"
_local: dict[str, subprocess.Popen[bytes]] = {}
GROUP, VERSION, PLURAL = "modelwatch.io", "v1alpha1", "modelmonitors"

CANNED_CHECK = {
    "kind": "check",
    "ok": True,
    "message": "canned",
    "reportId": "bench",
    "reportUri": "file:///tmp/bench",
    "datasetDrift": True,
    "driftShare": 0.75,
    "nDrifted": 3,
    "nFeatures": 4,
    "topFeatures": [{"name": "x1", "test": "ks", "statistic": 0.4, "pValue": 1e-9}],
    "qualityFindings": 0,
    "quality": [],
    "metric": {
        "name": "accuracy",
        "value": 0.7,
        "baseline": 0.9,
        "relativeChange": -0.22,
        "degraded": True,
    },
    "rows": {"reference": 100, "current": 100, "labeled": 100},
}


T = TypeVar("T")

# Pure helpers (tested in tests/test_bench_helpers.py).


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of ``values``, interpolating linearly.

    The same as ``numpy.percentile(values, q)`` (its default "linear" method).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([5.0], 99)
    (2.5, 5.0)
    """
    if not values:
        raise ValueError("The 'values' parameter of percentile must not be empty.")
    if not 0 <= q <= 100:
        raise ValueError(f"The 'q' parameter of percentile must be in [0, 100]. Got {q} instead.")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Return n, median, p99, max and min of latencies in seconds, rounded to ms."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median_s": round(statistics.median(values), 3),
        "p99_s": round(percentile(values, 99), 3),
        "max_s": round(max(values), 3),
        "min_s": round(min(values), 3),
    }


def scale_namespace(i: int) -> str:
    """Return the name of scale namespace ``i``."""
    return f"{NAMESPACE_SCALE}-{i:02d}"


def round_robin(groups: Mapping[str, Sequence[T]], n: int) -> list[T]:
    """Return up to ``n`` items taking one from each group in turn (groups in key order).

    >>> round_robin({"b": [3, 4], "a": [1, 2, 5]}, 4)
    [1, 3, 2, 4]
    """
    keys = sorted(groups)
    picked: list[T] = []
    for depth in range(max((len(g) for g in groups.values()), default=0)):
        for key in keys:
            if len(picked) == n:
                return picked
            if depth < len(groups[key]):
                picked.append(groups[key][depth])
    return picked


_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Return the (labels, value) samples of metric ``name`` in Prometheus text format.

    >>> metric_samples('# HELP x y\\nx_total{a="1",b="q\\\\"z"} 3\\nx_total 4e0\\n', "x_total")
    [({'a': '1', 'b': 'q"z'}, 3.0), ({}, 4.0)]
    """
    samples: list[tuple[dict[str, str], float]] = []
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = _SAMPLE.match(line.strip())
        if match is None or match.group(1) != name:
            continue
        labels = {
            k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            for k, v in _LABEL.findall(match.group(2) or "")
        }
        samples.append((labels, float(match.group(3))))
    return samples


def metric_by(
    text: str, name: str, label: str, *, where: Mapping[str, str] | None = None
) -> dict[str, float]:
    """Return the samples of ``name`` summed by the value of ``label`` (filtered by ``where``)."""
    sums: dict[str, float] = {}
    for labels, value in metric_samples(text, name):
        if all(labels.get(k) == v for k, v in (where or {}).items()):
            key = labels.get(label, "")
            sums[key] = sums.get(key, 0.0) + value
    return sums


def counter_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Return ``after - before`` per key, leaving out zeros (a key absent before counts 0)."""
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    return {k: round(v, 3) for k, v in sorted(delta.items()) if v}


# kopf: "Request attempt 1 failed; will retry: ... -> APITooManyRequestsError(429, ...)";
# the kubernetes client: "(429)\nReason: Too Many Requests". A bare 429 does not count:
# log timestamps have milliseconds (",429]"). kopf's own "Throttling for 60 seconds due to
# an unexpected error" is its back-off after a handler crash, counted apart (KOPF_BACKOFF).
_THROTTLED = re.compile(
    r"too ?many ?requests|client-side throttling|rate.limit"
    r"|(?:\(|\bHTTP\s?|\bstatus[\s:=]*|\bcode[\s:=]*)429\b",
    re.IGNORECASE,
)
KOPF_BACKOFF = re.compile(r"Throttling for \S+ seconds")


def throttled_lines(lines: Iterable[str]) -> list[str]:
    """Return the log lines that report an HTTP 429 or client-side rate limiting."""
    return [line for line in lines if _THROTTLED.search(line)]


def parse_proc_status(text: str) -> dict[str, float]:
    """Return VmRSS and VmHWM (MiB) from the text of ``/proc/PID/status``.

    >>> parse_proc_status("Name:\\tkopf\\nVmHWM:\\t  204800 kB\\nVmRSS:\\t  102400 kB\\n")
    {'rss_mib': 100.0, 'peak_rss_mib': 200.0}
    """
    fields = {
        line.split(":")[0]: line.split(":")[1].strip() for line in text.splitlines() if ":" in line
    }
    for key in ("VmRSS", "VmHWM"):
        if key not in fields:
            raise ValueError(f"The process status has no {key!r} line.")
    return {
        "rss_mib": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        "peak_rss_mib": round(int(fields["VmHWM"].split()[0]) / 1024, 1),
    }


def kubectl(*args: str, input: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        [KUBECTL, *args], input=input, capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def start_local_operator() -> None:
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        str(REPO / "crds" / "modelmonitors.modelwatch.io.yaml"),
    )
    kubectl("scale", "-n", OPERATOR_NS, "deploy/modelwatch-operator", "--replicas=0", check=False)
    log = open(LOG_PATH, "wb")  # noqa: SIM115
    _local["proc"] = subprocess.Popen(
        [
            "kopf",
            "run",
            "-m",
            "modelwatch_operator.main",
            "--all-namespaces",
            "--standalone",
            "--liveness=http://127.0.0.1:18080/healthz",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "MODELWATCH_METRICS_PORT": "19090",
            "PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}",
        },
    )
    time.sleep(5)


def deploy_operator() -> None:
    if LOCAL:
        start_local_operator()
        return
    # Both CRDs (manifests/operator holds a kopf.dev ClusterKopfPeering), then the operator.
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO / "crds"))
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/modelmonitors.modelwatch.io",
        "crd/clusterkopfpeerings.kopf.dev",
    )
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO / "manifests/operator"))
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO / "manifests/rbac"))
    # One replica (the manifest runs two, one active): the figures are one process's.
    kubectl("scale", "-n", OPERATOR_NS, "deploy/modelwatch-operator", "--replicas=1")
    # A fresh process, so the peak RSS belongs to this run.
    kubectl("rollout", "restart", "-n", OPERATOR_NS, "deploy/modelwatch-operator")
    kubectl("rollout", "status", "-n", OPERATOR_NS, "deploy/modelwatch-operator", "--timeout=180s")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        live = [p for p in operator_pods() if not p["metadata"].get("deletionTimestamp")]
        if len(live) == 1 and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in live[0]["status"].get("conditions", [])
        ):
            return
        time.sleep(1)
    raise RuntimeError("the operator did not become ready")


def operator_pods() -> list[dict[str, Any]]:
    """Return the operator's pods (as ``kubectl get pods -o json`` lists them)."""
    out = kubectl(
        "get", "pods", "-n", OPERATOR_NS, "-l", "app.kubernetes.io/name=modelwatch-operator",
        "-o", "json",
    )  # fmt: skip
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def operator_memory() -> dict[str, float]:
    """Return the operator process's current and peak RSS in MiB (from /proc/1/status)."""
    if LOCAL:
        out = pathlib.Path(f"/proc/{_local['proc'].pid}/status").read_text()
    else:
        out = kubectl(
            "exec",
            "-n",
            OPERATOR_NS,
            "deploy/modelwatch-operator",
            "--",
            "python",
            "-c",
            "print(open('/proc/1/status').read())",
        )
    return parse_proc_status(out)


def operator_log() -> list[str]:
    """Return the operator's log lines since its (re)start in deploy_operator."""
    if LOCAL:
        return LOG_PATH.read_text(errors="replace").splitlines()
    out = kubectl("logs", "-n", OPERATOR_NS, "deploy/modelwatch-operator", "--tail=-1")
    return out.splitlines()


def operator_restarts() -> int | None:
    """Return the operator container's restart count (None for a local process)."""
    if LOCAL:
        return None
    return sum(
        int(cs.get("restartCount", 0))
        for p in operator_pods()
        for cs in (p.get("status") or {}).get("containerStatuses", [])
    )


def apiserver_metrics() -> str:
    return kubectl("get", "--raw", "/metrics")


REJECTED = "apiserver_flowcontrol_rejected_requests_total"
DISPATCHED = "apiserver_flowcontrol_dispatched_requests_total"
INQUEUE = "apiserver_flowcontrol_current_inqueue_requests"


def flow_counters(text: str) -> dict[str, dict[str, float]]:
    """Return the API server counters this bench follows, by label value."""
    return {
        "rejected_by_priority_level": metric_by(text, REJECTED, "priority_level"),
        "rejected_by_reason": metric_by(text, REJECTED, "reason"),
        "dispatched_by_priority_level": metric_by(text, DISPATCHED, "priority_level"),
        "http_429_by_resource": metric_by(
            text, "apiserver_request_total", "resource", where={"code": "429"}
        ),
    }


def flow_delta(
    before: Mapping[str, Mapping[str, float]], after: Mapping[str, Mapping[str, float]]
) -> dict[str, Any]:
    """Return the change of flow_counters between two snapshots, with totals."""
    delta: dict[str, Any] = {k: counter_delta(before[k], after[k]) for k in after}
    delta["rejected_total"] = sum(delta["rejected_by_priority_level"].values())
    delta["http_429_total"] = sum(delta["http_429_by_resource"].values())
    return delta


class QueueSampler:
    """Sample the API server's priority-and-fairness queues; keep each level's maximum."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.max_inqueue: dict[str, float] = {}
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        if every > 0:
            self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                text = apiserver_metrics()
            except Exception:  # a missed sample is no reason to fail the bench
                continue
            self.samples += 1
            for level, value in metric_by(text, INQUEUE, "priority_level").items():
                self.max_inqueue[level] = max(value, self.max_inqueue.get(level, 0.0))

    def result(self) -> dict[str, Any]:
        self.stop.set()
        return {
            "samples": self.samples,
            "every_seconds": self.every,
            "max_by_priority_level": {k: v for k, v in sorted(self.max_inqueue.items()) if v},
        }


def fresh_namespace(name: str) -> None:
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", "--timeout=180s")
    kubectl("create", "namespace", name)


def delete_scale_namespaces(*, wait: bool) -> float | None:
    """Delete the scale namespaces (this run's and any left over); return seconds, None if late.

    Their monitors carry the operator's finalizer: the operator must be running.
    """
    start = time.monotonic()
    # The single namespace of earlier versions of this bench.
    kubectl("delete", "namespace", NAMESPACE_SCALE, "--ignore-not-found", "--wait=false")
    proc = subprocess.run(
        [
            KUBECTL,
            "delete",
            "namespace",
            "-l",
            BENCH_LABEL,
            "--ignore-not-found",
            f"--wait={str(wait).lower()}",
            "--timeout=900s",
        ],
        capture_output=True,
        text=True,
        timeout=960,
        check=False,
    )
    return round(time.monotonic() - start, 2) if proc.returncode == 0 else None


def create_scale_namespaces() -> list[str]:
    names = [scale_namespace(i) for i in range(N_NAMESPACES)]
    doc = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": n, "labels": {BENCH_LABEL: "scale"}},
            }
            for n in names
        ],
    }
    kubectl("apply", "-f", "-", input=json.dumps(doc))
    return names


def scale_monitor(namespace: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelMonitor",
        "metadata": {"name": f"mm-{i:04d}", "namespace": namespace},
        "spec": {
            "model": {"name": f"model-{i:04d}", "target": "y"},
            "data": {"reference": {"uri": "file:///store/ref.csv"}},
            "store": {"uri": "file:///store"},
            "schedule": "0 0 1 1 *",
            "retrain": {"enabled": False},
        },
    }


def bench_scale() -> dict[str, Any]:
    namespaces = create_scale_namespaces()
    items = [scale_monitor(namespaces[i % len(namespaces)], i) for i in range(N_MONITORS)]
    doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    recorder = Recorder(None, prefix=NAMESPACE_SCALE + "-", timeout=SCALE_TIMEOUT)
    time.sleep(2)  # the watches have listed what exists
    start = time.monotonic()
    kubectl("apply", "--server-side", "-f", "-", input=doc)
    applied = time.monotonic() - start
    while time.monotonic() - start < SCALE_TIMEOUT:
        if len(recorder.cronjob_seen) >= N_MONITORS and len(recorder.initialised) >= N_MONITORS:
            break
        time.sleep(0.5)
    recorder.stop.set()
    cron = list(recorder.cronjob_seen.values())
    init = list(recorder.initialised.values())
    t_cron = max(cron) - start if len(cron) >= N_MONITORS else None
    t_status = max(init) - start if len(init) >= N_MONITORS else None
    time.sleep(10)  # idle: the last reconciles have settled
    memory = operator_memory()
    return {
        "monitors": N_MONITORS,
        "namespaces": len(namespaces),
        "apply_seconds": round(applied, 2),
        "all_cronjobs_seconds": round(t_cron, 2) if t_cron else None,
        "all_status_initialised_seconds": round(t_status, 2) if t_status else None,
        # kubectl applies the objects one request at a time; what follows is the
        # operator's own lag behind the last apply.
        "operator_lag_after_apply_seconds": (
            round(max(t_cron, t_status) - applied, 2) if t_cron and t_status else None
        ),
        "cronjobs_seen": len(cron),
        "statuses_seen": len(init),
        "operator_rss_idle_mib": memory["rss_mib"],
        "operator_peak_rss_mib": memory["peak_rss_mib"],
    }


class Recorder:
    """Watch Jobs, ModelMonitors (and CronJobs); remember when things first happened.

    ``namespace`` None watches every namespace, keeping those that start with ``prefix``.
    Keys are ``namespace/name``.
    """

    def __init__(self, namespace: str | None, *, prefix: str = "", timeout: float = 900) -> None:
        self.namespace = namespace
        self.prefix = prefix
        self.timeout = int(timeout) + 60
        self.job_complete: dict[str, float] = {}
        self.retrain_created: dict[str, float] = {}
        self.status_seen: dict[str, float] = {}
        self.initialised: dict[str, float] = {}
        self.cronjob_seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._jobs, daemon=True),
            threading.Thread(target=self._monitors, daemon=True),
        ]
        if namespace is None:
            self.threads.append(threading.Thread(target=self._cronjobs, daemon=True))
        for t in self.threads:
            t.start()

    def _stream(self, namespaced: Any, cluster: Any, *args: str, **kwargs: Any) -> Any:
        w = watch.Watch()
        if self.namespace is None:
            events = w.stream(cluster, *args, timeout_seconds=self.timeout, **kwargs)
        else:
            # The namespace goes after group and version (custom objects) or first (Jobs).
            args = (*args[:2], self.namespace, *args[2:])
            events = w.stream(namespaced, *args, timeout_seconds=self.timeout, **kwargs)
        for event in events:
            yield time.monotonic(), event["object"]
            if self.stop.is_set():
                w.stop()

    def _keep(self, namespace: str) -> bool:
        return namespace.startswith(self.prefix)

    def _jobs(self) -> None:
        batch = client.BatchV1Api()
        for now, job in self._stream(batch.list_namespaced_job, batch.list_job_for_all_namespaces):
            ns = job.metadata.namespace
            if not self._keep(ns):
                continue
            labels = job.metadata.labels or {}
            mm = labels.get("modelwatch.io/monitor", "")
            if labels.get("modelwatch.io/job-kind") == "retrain":
                self.retrain_created.setdefault(f"{ns}/{mm}", now)
            for cond in (job.status.conditions or []) if job.status else []:
                if cond.type == "Complete" and cond.status == "True":
                    self.job_complete.setdefault(f"{ns}/{job.metadata.name}", now)

    def _monitors(self) -> None:
        custom = client.CustomObjectsApi()
        for now, mm in self._stream(
            custom.list_namespaced_custom_object,
            custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL,
        ):
            ns = mm["metadata"]["namespace"]
            if not self._keep(ns):
                continue
            status = mm.get("status") or {}
            if status.get("observedGeneration"):
                self.initialised.setdefault(f"{ns}/{mm['metadata']['name']}", now)
            if status.get("lastCheckJob"):
                self.status_seen.setdefault(f"{ns}/{status['lastCheckJob']}", now)

    def _cronjobs(self) -> None:
        batch = client.BatchV1Api()
        for now, cj in self._stream(
            batch.list_namespaced_cron_job,
            batch.list_cron_job_for_all_namespaces,
            label_selector="modelwatch.io/monitor",
        ):
            if self._keep(cj.metadata.namespace):
                self.cronjob_seen.setdefault(f"{cj.metadata.namespace}/{cj.metadata.name}", now)


def bench_reaction() -> dict[str, Any]:
    """Create check Jobs for N_REACTION monitors across the namespaces at once."""
    custom = client.CustomObjectsApi()
    listed: Any = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    groups: dict[str, list[dict[str, Any]]] = {}
    for mm in sorted(listed["items"], key=lambda m: m["metadata"]["name"]):
        ns = mm["metadata"]["namespace"]
        if ns.startswith(NAMESPACE_SCALE + "-"):
            groups.setdefault(ns, []).append(mm)
    chosen = round_robin(groups, N_REACTION)
    jobs = [canned_check_job(mm, f"{mm['metadata']['name']}-check-bench") for mm in chosen]
    keys = [f"{j['metadata']['namespace']}/{j['metadata']['name']}" for j in jobs]
    recorder = Recorder(None, prefix=NAMESPACE_SCALE + "-")
    time.sleep(2)  # the watches have listed what exists
    start = time.monotonic()
    kubectl(
        "create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": jobs})
    )
    created = time.monotonic() - start
    while time.monotonic() - start < 600:
        if all(k in recorder.status_seen and k in recorder.job_complete for k in keys):
            break
        if not recorder.job_complete and time.monotonic() - start > 180:
            break  # Jobs do not complete (no pods?)
        time.sleep(0.2)
    recorder.stop.set()
    done = [recorder.job_complete[k] for k in keys if k in recorder.job_complete]
    seen = [recorder.status_seen[k] for k in keys if k in recorder.status_seen]
    latencies = [
        recorder.status_seen[k] - recorder.job_complete[k]
        for k in keys
        if k in recorder.status_seen and k in recorder.job_complete
    ]
    time.sleep(5)
    memory = operator_memory()
    return {
        "jobs": len(jobs),
        "namespaces": len({j["metadata"]["namespace"] for j in jobs}),
        "create_seconds": round(created, 2),
        "jobs_complete": len(done),
        # How close together they finished: the first to the last completion.
        "completion_spread_seconds": round(max(done) - min(done), 2) if done else None,
        "last_status_after_create_seconds": round(max(seen) - start, 2) if seen else None,
        "job_complete_to_status": summarize(latencies),
        "operator_rss_after_mib": memory["rss_mib"],
        "operator_peak_rss_mib": memory["peak_rss_mib"],
    }


def latency_objects(namespace: str, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"lat-{i:02d}"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{name}-server", "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "modelwatch/monitor:dev",
                            "env": [
                                {"name": "MODEL_VERSION", "value": "1"},
                                {"name": "MODEL_SHA256", "value": "0" * 64},
                            ],
                        }
                    ]
                },
            },
        },
    }
    mm = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelMonitor",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": name, "target": "y"},
            "data": {"reference": {"uri": "file:///tmp/ref.csv"}},
            "store": {"uri": "file:///tmp/store"},
            "schedule": "0 0 1 1 *",
            "retrain": {"cooldown": "1s"},
            "deployment": {"name": f"{name}-server", "container": "server"},
        },
    }
    return deployment, mm


def canned_check_job(mm: dict[str, Any], name: str) -> dict[str, Any]:
    job = builders.build_check_job(mm, name=name)
    container = job["spec"]["template"]["spec"]["containers"][0]
    text = contract.encode_result(CANNED_CHECK)
    container["command"] = ["python", "-c"]
    container["args"] = [f"open({contract.TERMINATION_MESSAGE_PATH!r}, 'w').write({text!r})"]
    return job


def bench_latency() -> dict[str, Any]:
    ns = NAMESPACE_LATENCY
    fresh_namespace(ns)
    recorder = Recorder(ns)
    custom = client.CustomObjectsApi()
    to_status: list[float] = []
    to_retrain: list[float] = []
    for i in range(N_LATENCY):
        deployment, mm = latency_objects(ns, i)
        kubectl("apply", "--server-side", "-f", "-", input=json.dumps(deployment))
        kubectl("apply", "--server-side", "-f", "-", input=json.dumps(mm))
        name = mm["metadata"]["name"]
        deadline = time.monotonic() + 60
        body: Any = {}
        while time.monotonic() < deadline:
            body = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
            if (body.get("status") or {}).get("observedGeneration"):
                break
            time.sleep(0.2)
        job_name = f"{name}-check-bench"
        kubectl("create", "-f", "-", input=json.dumps(canned_check_job(body, job_name)))
        job_key, mm_key = f"{ns}/{job_name}", f"{ns}/{name}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (
                job_key in recorder.status_seen
                and mm_key in recorder.retrain_created
                and job_key in recorder.job_complete
            ):
                break
            time.sleep(0.1)
        done = recorder.job_complete.get(job_key)
        if done is None:
            break  # Jobs do not complete (no pods?): stop rather than wait for each sample
        if job_key in recorder.status_seen:
            to_status.append(recorder.status_seen[job_key] - done)
        if mm_key in recorder.retrain_created:
            to_retrain.append(recorder.retrain_created[mm_key] - done)
        # The retrain Job has no data to train on; remove it so it costs no CPU.
        kubectl(
            "delete",
            "jobs",
            "-n",
            ns,
            "-l",
            f"modelwatch.io/monitor={name},modelwatch.io/job-kind=retrain",
            "--wait=false",
            check=False,
        )
    recorder.stop.set()
    kubectl("delete", "namespace", ns, "--wait=false")

    return {
        "check_complete_to_status": summarize(to_status),
        "check_complete_to_retrain_job": summarize(to_retrain),
    }


def main() -> dict[str, Any]:
    config.load_kube_config()
    deploy_operator()
    figures: dict[str, Any] = {"operator": "local process" if LOCAL else "in-cluster"}
    try:
        figures["leftover_cleanup_seconds"] = delete_scale_namespaces(wait=True)
        before = flow_counters(apiserver_metrics())
        sampler = QueueSampler(METRICS_EVERY)
        figures["scale"] = bench_scale()
        figures["reaction"] = bench_reaction()
        queues = sampler.result()
        log = operator_log()
        throttled = throttled_lines(log)
        figures["throttling"] = {
            # The operator's log: HTTP 429 answers it saw (kopf retries them) or rate limiting.
            "operator_log_429_or_throttled": len(throttled),
            "operator_log_examples": throttled[:3],
            # kopf pausing a monitor's processing after an unexpected error (not the API's).
            "operator_log_error_backoffs": sum(1 for line in log if KOPF_BACKOFF.search(line)),
            "operator_log_errors": sum(1 for line in log if "ERROR" in line),
            # The API server's priority and fairness, over the scale and reaction phases.
            "apiserver": flow_delta(before, flow_counters(apiserver_metrics())),
            "apiserver_inqueue": queues,
            "operator_restarts": operator_restarts(),
        }
        figures["latency"] = bench_latency()
        figures["operator_memory_end"] = operator_memory()
        figures["scale_cleanup_seconds"] = delete_scale_namespaces(wait=True)
    except BaseException:
        delete_scale_namespaces(wait=False)
        raise
    finally:
        if LOCAL:
            _local["proc"].terminate()
            _local["proc"].wait(30)
    return figures


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
