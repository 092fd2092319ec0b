"""The whole modelwatch loop on a cluster: drift -> retrain -> rollout.

``make demo`` runs this with the project's venv; ``tests/e2e/test_loop.py`` runs the
same steps and asserts on the returned record. Steps:

1. deploy the CRD, RBAC and the operator (``manifests/default``);
2. train model v1 on the built-in dataset in a Job, into the store PVC;
3. deploy the model server and send prediction traffic through its Service;
4. apply the ModelMonitor and wait for a healthy check;
5. shift the traffic's feature distribution and its label relation;
6. follow ``kubectl get mm`` until v2 serves, and prove it with ``/metadata``;
7. keep the (shifted) traffic flowing to v2 until a check of v2's own traffic is Healthy
   with 0 drifted features, and count the retrains: exactly one.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REPO = pathlib.Path(__file__).resolve().parent.parent
KUBECTL = str(REPO / "hack" / "kubectl")
NS = "modelwatch-demo"
SYSTEM_NS = "modelwatch-system"
MONITOR_IMAGE = os.environ.get("MODELWATCH_MONITOR_IMAGE", "modelwatch/monitor:dev")
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


CRDS = (
    "crd/modelmonitors.modelwatch.io",
    "crd/clusterkopfpeerings.kopf.dev",
    "crd/kopfpeerings.kopf.dev",
)


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"kubectl {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def get_json(*args: str) -> dict[str, Any]:
    return json.loads(kubectl("get", *args, "-o", "json"))  # type: ignore[no-any-return]


def wait(predicate: Any, *, timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (RuntimeError, KeyError, ValueError) as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f": {last}" if last else "")
    )


@dataclass
class Record:
    """What the run observed, for the e2e assertions and the closing summary."""

    phases: list[str] = field(default_factory=list)
    v1_sha256: str = ""
    shift_at: float = 0.0
    v2_serving_at: float = 0.0
    v2_healthy_at: float = 0.0
    retrains: int = 0
    v2_traffic_rounds: int = 0
    final_status: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    report_uri: str = ""
    report_host_path: str = ""
    events: str = ""


def job_manifest(
    name: str, command: str, *, env: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "modelwatch-demo"}},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": POD_SECURITY,
                    "containers": [
                        {
                            "name": "main",
                            "image": MONITOR_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", command],
                            "env": env or [],
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "securityContext": RESTRICTED,
                            "volumeMounts": [
                                {"name": "store", "mountPath": "/store"},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "store",
                            "persistentVolumeClaim": {"claimName": "modelwatch-store"},
                        },
                        {"name": "tmp", "emptyDir": {}},
                    ],
                }
            },
        },
    }


def run_job(name: str, command: str, *, timeout: float = 300) -> str:
    """Run a Job in the demo namespace; return its container's termination message."""
    kubectl("delete", "job", name, "-n", NS, "--ignore-not-found", "--wait=true")
    kubectl(
        "apply", "--server-side", "-n", NS, "-f", "-", stdin=json.dumps(job_manifest(name, command))
    )

    def done() -> dict[str, Any] | None:
        job = get_json("job", name, "-n", NS)
        st = job.get("status", {})
        return job if st.get("succeeded") or st.get("failed") else None

    job = wait(done, timeout=timeout, what=f"Job {name}", interval=2)
    pods = get_json("pods", "-n", NS, "-l", f"job-name={name}")["items"]
    message = ""
    if pods:
        state = pods[0]["status"]["containerStatuses"][0]["state"]
        message = state.get("terminated", {}).get("message", "")
    if not job["status"].get("succeeded"):
        logs = kubectl("logs", f"job/{name}", "-n", NS, "--tail=30", check=False)
        raise RuntimeError(f"Job {name} failed: {message}\n{logs}")
    return message


def mm_line() -> str:
    return kubectl("get", "mm", "churn", "-n", NS, "--no-headers", check=False).strip()


def deploy_operator() -> None:
    say("deploying the CRD, RBAC and the operator (manifests/default)")
    # The CRDs first: manifests/default also holds a ClusterKopfPeering, a kopf.dev object.
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *CRDS)
    kubectl(
        "apply", "--server-side", "--force-conflicts", "-k", str(REPO / "manifests" / "default")
    )
    kubectl("rollout", "restart", "deployment/modelwatch-operator", "-n", SYSTEM_NS)
    kubectl(
        "rollout", "status", "deployment/modelwatch-operator", "-n", SYSTEM_NS, "--timeout=180s"
    )


def fresh_namespace() -> None:
    if kubectl("get", "namespace", NS, check=False).strip():
        say(f"removing the previous demo namespace {NS}")
        kubectl("delete", "mm", "--all", "-n", NS, "--wait=true", "--timeout=60s", check=False)
        kubectl("delete", "namespace", NS, "--wait=true", "--timeout=180s")
    kubectl("apply", "--server-side", "-f", str(REPO / "manifests" / "samples" / "namespace.yaml"))
    kubectl("apply", "--server-side", "-n", NS, "-k", str(REPO / "manifests" / "store"))


def train_v1() -> str:
    say("training model v1 on the built-in dataset (a Job in the monitor image, FLAML AutoML)")
    message = run_job(
        "train-v1",
        "modelwatch demo data --output /store/churn/data/reference.parquet --rows 4000 --seed 0 "
        "&& modelwatch retrain --train /store/churn/data/reference.parquet --target churned "
        "--task classification --time-budget 15 --store file:///store --model churn "
        "--version 1 --id-column customer_id "
        # The server mounts the store read-only and this folder (subPath) read-write.
        "&& mkdir -p /store/churn/predictions",
        timeout=420,
    )
    result = json.loads(message)
    say(
        f"v1 written: sha256 {result['sha256'][:12]}..., holdout {result.get('metric')} "
        f"{result.get('challenger', {}).get('score')}"
    )
    return str(result["sha256"])


def deploy_server(sha: str) -> None:
    say("deploying the model server (2 replicas) and its Service")
    text = (REPO / "manifests" / "samples" / "model-server.yaml").read_text()
    text = text.replace(
        '{name: MODEL_SHA256, value: ""}', f'{{name: MODEL_SHA256, value: "{sha}"}}'
    )
    kubectl("apply", "--server-side", "-n", NS, "-f", "-", stdin=text)
    kubectl("rollout", "status", "deployment/churn-server", "-n", NS, "--timeout=180s")


def traffic(
    name: str, *, rows: int, seed: int, shift: float = 0.0, concept: bool = False
) -> dict[str, Any]:
    flags = f"--rows {rows} --seed {seed} --shift {shift}" + (" --concept" if concept else "")
    message = run_job(
        name, f"modelwatch demo traffic {flags} --labels-out /store/churn/labels", timeout=300
    )
    # The traffic command prints its summary last; FallbackToLogsOnError is only for failures.
    logs = kubectl("logs", f"job/{name}", "-n", NS, "--tail=1", check=False).strip()
    try:
        return json.loads(logs.splitlines()[-1]) if logs else json.loads(message)
    except (ValueError, IndexError):
        return {}


def metadata() -> dict[str, Any]:
    raw = kubectl(
        "get", "--raw", f"/api/v1/namespaces/{NS}/services/model-server:80/proxy/metadata"
    )
    return json.loads(raw)  # type: ignore[no-any-return]


def _watch(stop_at: float) -> Any:
    """Yield each version of the ModelMonitor as `kubectl get -w` sees it, until stop_at."""
    import queue
    import threading

    proc = subprocess.Popen(
        [KUBECTL, "get", "mm", "churn", "-n", NS, "-w", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    items: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        decoder, buf = json.JSONDecoder(), ""
        for chunk in iter(lambda: proc.stdout.readline(), ""):  # type: ignore[union-attr]
            buf += chunk
            while buf.strip():
                try:
                    obj, end = decoder.raw_decode(buf.lstrip())
                except ValueError:
                    break
                buf = buf.lstrip()[end:]
                items.put(obj)
        items.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        while time.monotonic() < stop_at:
            try:
                obj = items.get(timeout=max(0.1, min(5.0, stop_at - time.monotonic())))
            except queue.Empty:
                continue
            if obj is None:  # the watch ended (it does, after a while): start another
                return
            yield obj
    finally:
        proc.kill()


def serves(version: int) -> Callable[[dict[str, Any]], bool]:
    """``version`` serves and no retrain or rollout is in flight (whatever the next check
    says: before v2 has traffic it reads AwaitingTraffic)."""

    def done(status: dict[str, Any]) -> bool:
        return status.get("currentVersion") == version and status.get("phase") not in (
            "Retraining",
            "RollingOut",
        )

    return done


def healthy_verdict_on(version: int) -> Callable[[dict[str, Any]], bool]:
    """A check of ``version``'s own traffic found it Healthy with 0 drifted features."""

    def done(status: dict[str, Any]) -> bool:
        last = status.get("lastCheck") or {}
        return (
            status.get("currentVersion") == version
            and status.get("phase") == "Healthy"
            and last.get("servingVersion") == version
            and last.get("nDrifted") == 0
            and last.get("reason") is None
        )

    return done


def follow(
    record: Record,
    *,
    until_version: int,
    timeout: float,
    until: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """Print each change of ``kubectl get mm`` until ``until_version`` serves and is Healthy
    (or, with ``until``, until ``until(status)`` holds)."""
    deadline = time.monotonic() + timeout
    last: tuple[Any, ...] = ()
    line = ""
    while time.monotonic() < deadline:
        for mm in _watch(deadline):
            st = mm.get("status", {})
            phase = st.get("phase", "")
            key = (phase, st.get("currentVersion"), st.get("drift"), st.get("metric"))
            if key != last:
                line = "  ".join(
                    f"{v!s:<{w}}"
                    for v, w in zip(
                        (
                            "churn",
                            st.get("currentVersion", ""),
                            phase,
                            st.get("drift", ""),
                            st.get("metric", ""),
                            time.strftime("%H:%M:%S"),
                        ),
                        (7, 8, 11, 6, 18, 8),
                        strict=True,
                    )
                )
                print(f"    {line}", flush=True)
                last = key
            if phase and (not record.phases or record.phases[-1] != phase):
                record.phases.append(phase)
            if until is not None:
                reached = until(st)
            else:
                reached = st.get("currentVersion") == until_version and phase == "Healthy"
            if reached:
                return mm
    raise TimeoutError(
        f"v{until_version} was not serving within {timeout:.0f}s; last: {line}\n"
        + kubectl("describe", "mm", "churn", "-n", NS, check=False)
    )


class TrafficLoop:
    """Send rounds of traffic in the background (one Job each) until stopped: a model in
    production keeps getting requests after a rollout, and the checks judge those."""

    def __init__(self, *, rows: int, seed: int, shift: float, concept: bool) -> None:
        self.rows, self.seed, self.shift, self.concept = rows, seed, shift, concept
        self.rounds = 0
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                traffic(
                    f"traffic-v2-{self.rounds}",
                    rows=self.rows,
                    seed=self.seed + self.rounds,
                    shift=self.shift,
                    concept=self.concept,
                )
            except (RuntimeError, TimeoutError) as exc:
                self.error = exc
                return
            self.rounds += 1
            self._stop.wait(10)

    def __enter__(self) -> TrafficLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=330)


def report_host_path(uri: str) -> str:
    """Where a file:///store/... report lives on this host (local cluster only)."""
    try:
        pvc = get_json("pvc", "modelwatch-store", "-n", NS)
        pv = get_json("pv", pvc["spec"]["volumeName"])
        provisioner = pv["metadata"].get("annotations", {}).get("pv.kubernetes.io/provisioned-by")
        if provisioner != "modelwatch.io/local-hostpath":
            return ""  # e.g. kind: the directory is inside the node container
        root = pv["spec"].get("hostPath", {}).get("path", "")
    except (RuntimeError, KeyError):
        return ""
    rel = uri.removeprefix("file://").removeprefix("/store")
    return f"{root}{rel}" if root else ""


def run(*, skip_deploy: bool = False) -> Record:
    record = Record()
    if not skip_deploy:
        deploy_operator()
    fresh_namespace()
    record.v1_sha256 = train_v1()
    deploy_server(record.v1_sha256)
    # Little baseline and much shifted traffic: v2 trains on the recent window
    # (spec.retrain.trainingData: recent), which holds both, and its training data is the
    # reference its own traffic is judged against once it serves.
    say("sending baseline traffic through the Service (in-distribution; labels arrive too)")
    summary = traffic("traffic-baseline", rows=600, seed=1)
    say(f"baseline traffic: {summary}")
    say("applying the ModelMonitor (checks every minute); waiting for a healthy check")
    kubectl(
        "apply",
        "--server-side",
        "-n",
        NS,
        "-f",
        str(REPO / "manifests" / "samples" / "modelmonitor.yaml"),
    )
    print("    NAME     VERSION   PHASE        DRIFT   METRIC              AT", flush=True)
    follow(record, until_version=1, timeout=240)
    wait(
        lambda: get_json("mm", "churn", "-n", NS).get("status", {}).get("lastCheck"),
        timeout=150,
        what="the first check",
    )
    follow(record, until_version=1, timeout=60)
    say("shifting the traffic: covariate drift (+1 sd in 3 features) and a new label relation")
    record.shift_at = time.time()
    summary = traffic("traffic-shifted", rows=6000, seed=2, shift=1.0, concept=True)
    say(f"shifted traffic: {summary} (v1 accuracy on it)")
    say("following kubectl get mm: Drifted -> Retraining -> RollingOut -> v2 serves")
    follow(record, until_version=2, timeout=600, until=serves(2))
    record.v2_serving_at = time.time()
    kubectl("rollout", "status", "deployment/churn-server", "-n", NS, "--timeout=120s")
    say(
        "the shifted traffic keeps flowing, now to v2; checks judge only what v2 served "
        "(AwaitingTraffic until it has enough), until a check of v2's traffic is Healthy"
    )
    with TrafficLoop(rows=1000, seed=100, shift=1.0, concept=True) as loop:
        mm = follow(record, until_version=2, timeout=420, until=healthy_verdict_on(2))
    if loop.error is not None and not loop.rounds:
        raise RuntimeError(f"no traffic reached v2: {loop.error}")
    record.v2_traffic_rounds = loop.rounds
    record.v2_healthy_at = time.time()
    record.final_status = mm["status"]
    record.retrains = len(mm["status"].get("retrains") or [])
    say(
        f"v2 judged on its own traffic: {mm['status'].get('drift')} features drifted, "
        f"{mm['status'].get('metric')}; retrains: {record.retrains}"
    )
    if record.retrains != 1:
        raise RuntimeError(
            f"{record.retrains} retrains ran, 1 expected: "
            + ", ".join(
                f"{r.get('job')} ({r.get('outcome')}: {r.get('reason')})"
                for r in mm["status"].get("retrains") or []
            )
        )
    record.metadata = metadata()
    say(
        f"/metadata through the Service: model {record.metadata.get('model')} "
        f"version {record.metadata.get('version')}"
    )
    record.report_uri = str(mm["status"].get("lastCheck", {}).get("reportUri", ""))
    record.report_host_path = report_host_path(record.report_uri)
    record.events = kubectl(
        "get",
        "events",
        "-n",
        NS,
        "--field-selector",
        "involvedObject.kind=ModelMonitor",
        "--sort-by=.lastTimestamp",
        check=False,
    )
    return record


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-deploy", action="store_true", help="the operator is deployed already"
    )
    args = parser.parse_args(argv)
    start = time.time()
    try:
        record = run(skip_deploy=args.skip_deploy)
    except (RuntimeError, TimeoutError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        print(
            "look at: kubectl describe mm churn -n modelwatch-demo; "
            "kubectl logs -n modelwatch-system deploy/modelwatch-operator",
            file=sys.stderr,
        )
        return 1
    print()
    print(f"phases seen: {' -> '.join(record.phases)}")
    print(
        f"traffic shift to v2 serving: {record.v2_serving_at - record.shift_at:.0f}s; "
        f"to a healthy check of v2's traffic: {record.v2_healthy_at - record.shift_at:.0f}s; "
        f"whole demo: {time.time() - start:.0f}s"
    )
    print(f"retrains: {record.retrains}")
    print(f"HTML report: {record.report_uri.rstrip('/')}/report.html (in the store PVC)")
    if record.report_host_path:
        print(f"             on this host: {record.report_host_path}/report.html")
    print(record.events)
    print("""Try next:
  kubectl get mm -n modelwatch-demo                 # MODEL VERSION PHASE DRIFT METRIC LAST CHECK
  kubectl describe mm churn -n modelwatch-demo      # conditions and Events explain each decision
  kubectl get jobs,cronjobs -n modelwatch-demo      # the check and retrain Jobs
  kubectl get --raw /api/v1/namespaces/modelwatch-demo/services/model-server:80/proxy/metadata
  kubectl annotate mm churn -n modelwatch-demo modelwatch.io/retrain-now=true   # retrain on demand
  kubectl patch mm churn -n modelwatch-demo --type merge \\
      -p '{"spec":{"pinnedVersion":1}}'             # roll back by hand""")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
