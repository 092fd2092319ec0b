# mypy: disable-error-code="no-untyped-call"
"""Operator benchmarks on the real cluster (the operator in-cluster, from its image).

1. Scale: 300 ModelMonitors applied at once -> wall time until every CronJob exists and
   every status is initialised; the operator's peak RSS (VmHWM of its process).
2. Latency: a check Job completes -> the monitor's status shows its result, and -> the
   retrain Job exists. The check Jobs print a canned drift result (the monitor image's
   Python, no data), so the figures measure the operator, not the drift engine.
   Times are taken by this process from watch events, with sub-second resolution.
"""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from kubernetes import client, config, watch

from modelwatch_monitor import contract
from modelwatch_operator import builders

REPO = pathlib.Path(__file__).resolve().parent.parent
KUBECTL = str(REPO / "hack" / "kubectl")
NAMESPACE_SCALE = "bench-operator-scale"
NAMESPACE_LATENCY = "bench-operator-latency"
OPERATOR_NS = "modelwatch-system"
N_MONITORS = int(os.environ.get("BENCH_OPERATOR_MONITORS", "300"))
N_LATENCY = int(os.environ.get("BENCH_OPERATOR_SAMPLES", "10"))
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
    log = open(pathlib.Path(tempfile.gettempdir()) / "modelwatch-operator-bench.log", "wb")  # noqa: SIM115
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
        pods = json.loads(
            kubectl(
                "get",
                "pods",
                "-n",
                OPERATOR_NS,
                "-l",
                "app.kubernetes.io/name=modelwatch-operator",
                "-o",
                "json",
            )
        )
        live = [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
        if len(live) == 1 and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in live[0]["status"].get("conditions", [])
        ):
            return
        time.sleep(1)
    raise RuntimeError("the operator did not become ready")


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
    fields = {
        line.split(":")[0]: line.split(":")[1].strip() for line in out.splitlines() if ":" in line
    }
    return {
        "rss_mib": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        "peak_rss_mib": round(int(fields["VmHWM"].split()[0]) / 1024, 1),
    }


def fresh_namespace(name: str) -> None:
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", "--timeout=180s")
    kubectl("create", "namespace", name)


def scale_monitor(namespace: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelMonitor",
        "metadata": {"name": f"mm-{i:03d}", "namespace": namespace},
        "spec": {
            "model": {"name": f"model-{i:03d}", "target": "y"},
            "data": {"reference": {"uri": "file:///store/ref.csv"}},
            "store": {"uri": "file:///store"},
            "schedule": "0 0 1 1 *",
            "retrain": {"enabled": False},
        },
    }


def bench_scale() -> dict[str, Any]:
    fresh_namespace(NAMESPACE_SCALE)
    items = [scale_monitor(NAMESPACE_SCALE, i) for i in range(N_MONITORS)]
    doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    batch = client.BatchV1Api()
    custom = client.CustomObjectsApi()
    start = time.monotonic()
    kubectl("apply", "--server-side", "-f", "-", input=doc)
    applied = time.monotonic() - start
    cronjobs = initialised = 0
    t_cron = t_status = None
    while time.monotonic() - start < 600:
        if t_cron is None:
            cronjobs = len(batch.list_namespaced_cron_job(NAMESPACE_SCALE).items)
            if cronjobs >= N_MONITORS:
                t_cron = time.monotonic() - start
        if t_status is None:
            mms: Any = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE_SCALE, PLURAL)
            initialised = sum(
                1 for m in mms["items"] if (m.get("status") or {}).get("observedGeneration")
            )
            if initialised >= N_MONITORS:
                t_status = time.monotonic() - start
        if t_cron is not None and t_status is not None:
            break
        time.sleep(0.5)
    memory = operator_memory()
    kubectl("delete", "namespace", NAMESPACE_SCALE, "--wait=false")
    return {
        "monitors": N_MONITORS,
        "apply_seconds": round(applied, 2),
        "all_cronjobs_seconds": round(t_cron, 2) if t_cron else None,
        "all_status_initialised_seconds": round(t_status, 2) if t_status else None,
        # kubectl applies the 300 objects one request at a time; what follows is the
        # operator's own lag behind the last apply.
        "operator_lag_after_apply_seconds": (
            round(max(t_cron, t_status) - applied, 2) if t_cron and t_status else None
        ),
        "cronjobs_seen": cronjobs,
        "statuses_seen": initialised,
        "operator_rss_after_mib": memory["rss_mib"],
        "operator_peak_rss_mib": memory["peak_rss_mib"],
    }


class Recorder:
    """Watch Jobs and ModelMonitors in one namespace; remember when things first happened."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.job_complete: dict[str, float] = {}
        self.retrain_created: dict[str, float] = {}
        self.status_seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._jobs, daemon=True),
            threading.Thread(target=self._monitors, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _jobs(self) -> None:
        w = watch.Watch()
        for event in w.stream(
            client.BatchV1Api().list_namespaced_job, self.namespace, timeout_seconds=900
        ):
            now = time.monotonic()
            job = event["object"]
            labels = job.metadata.labels or {}
            mm = labels.get("modelwatch.io/monitor", "")
            if labels.get("modelwatch.io/job-kind") == "retrain":
                self.retrain_created.setdefault(mm, now)
            for cond in (job.status.conditions or []) if job.status else []:
                if cond.type == "Complete" and cond.status == "True":
                    self.job_complete.setdefault(job.metadata.name, now)
            if self.stop.is_set():
                w.stop()

    def _monitors(self) -> None:
        w = watch.Watch()
        for event in w.stream(
            client.CustomObjectsApi().list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            timeout_seconds=900,
        ):
            now = time.monotonic()
            job = ((event["object"].get("status") or {}).get("lastCheckJob")) or ""
            if job:
                self.status_seen.setdefault(job, now)
            if self.stop.is_set():
                w.stop()


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
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (
                job_name in recorder.status_seen
                and name in recorder.retrain_created
                and job_name in recorder.job_complete
            ):
                break
            time.sleep(0.1)
        done = recorder.job_complete.get(job_name)
        if done is None:
            break  # Jobs do not complete (no pods?): stop rather than wait for each sample
        if job_name in recorder.status_seen:
            to_status.append(recorder.status_seen[job_name] - done)
        if name in recorder.retrain_created:
            to_retrain.append(recorder.retrain_created[name] - done)
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

    def summary(values: list[float]) -> dict[str, Any]:
        if not values:
            return {"n": 0}
        return {
            "n": len(values),
            "median_s": round(statistics.median(values), 3),
            "max_s": round(max(values), 3),
            "min_s": round(min(values), 3),
        }

    return {
        "check_complete_to_status": summary(to_status),
        "check_complete_to_retrain_job": summary(to_retrain),
    }


def main() -> dict[str, Any]:
    config.load_kube_config()
    deploy_operator()
    figures: dict[str, Any] = {"scale": bench_scale(), "latency": bench_latency()}
    figures["operator_memory_end"] = operator_memory()
    figures["operator"] = "local process" if LOCAL else "in-cluster"
    if LOCAL:
        _local["proc"].terminate()
        _local["proc"].wait(30)
    return figures


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
