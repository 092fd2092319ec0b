"""Shared set-up of the operator cluster tests: the operator in-cluster, a store, a model.

The operator runs from image ``modelwatch/operator:dev`` under the ServiceAccount that
``manifests/rbac`` binds, so a missing RBAC verb fails a test. The store is a PVC of the
cluster's default StorageClass (a hostPath volume on this single node): the test writes the
data, and model version 1, straight into the volume's host directory.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelwatch_monitor import contract

REPO = pathlib.Path(__file__).resolve().parents[2]
OPERATOR_NS = "modelwatch-system"
MODEL = "iris"
MONITOR_IMAGE = os.environ.get("MODELWATCH_MONITOR_IMAGE", "modelwatch/monitor:dev")
RUN_AS = 10001
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS,
    "runAsGroup": RUN_AS,
    "fsGroup": RUN_AS,
    "seccompProfile": {"type": "RuntimeDefault"},
}

Kube = Any  # tests/conftest.py's Kube


# ---------------------------------------------------------------------------
# The operator
# ---------------------------------------------------------------------------


def operator_pods(kube: Kube) -> list[dict[str, Any]]:
    """The live operator pods (not terminating), oldest first."""
    pods = json.loads(
        kube.kubectl(
            "get",
            "pods",
            "-n",
            OPERATOR_NS,
            "-l",
            "app.kubernetes.io/name=modelwatch-operator",
            "-o",
            "json",
        ).stdout
    )["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return sorted(live, key=lambda p: str(p["metadata"].get("creationTimestamp")))


def operator_pod(kube: Kube) -> dict[str, Any] | None:
    """The oldest live operator pod: the active one under kopf peering."""
    pods = operator_pods(kube)
    return pods[0] if pods else None


def operator_ready(kube: Kube) -> bool:
    pod = operator_pod(kube)
    if pod is None:
        return False
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


def deploy_operator(kube: Kube, *, replicas: int = 1) -> None:
    """Install the CRDs, RBAC and operator, start fresh operator pods, wait until ready.

    The manifest runs 2 replicas with kopf peering (one active); the tests run ``replicas``
    (1 by default, so "the operator pod" is the active one) and scale up where they test
    high availability.
    """
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO / "crds"))
    kube.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/modelmonitors.modelwatch.io",
        "crd/clusterkopfpeerings.kopf.dev",
        "crd/kopfpeerings.kopf.dev",
    )
    # The namespace first: the ServiceAccount in manifests/rbac lives in it.
    kube.kubectl(
        "apply", "--server-side", "-f", str(REPO / "manifests" / "operator" / "namespace.yaml")
    )
    kube.kubectl(
        "apply", "--server-side", "--force-conflicts", "-k", str(REPO / "manifests" / "rbac")
    )
    kube.kubectl(
        "apply", "--server-side", "--force-conflicts", "-k", str(REPO / "manifests" / "operator")
    )
    kube.kubectl(
        "scale", "deployment/modelwatch-operator", "-n", OPERATOR_NS, f"--replicas={replicas}"
    )
    # `make images` re-tags operator:dev in place; an unchanged pod template would keep a
    # pod of the previous build running, so every session starts a fresh pod.
    kube.kubectl("rollout", "restart", "deployment/modelwatch-operator", "-n", OPERATOR_NS)
    kube.kubectl(
        "rollout", "status", "deployment/modelwatch-operator", "-n", OPERATOR_NS, "--timeout=180s"
    )
    kube.wait_for(lambda: operator_ready(kube), timeout=180, what="the operator pod to be ready")
    kube.wait_for(
        lambda: len(operator_pods(kube)) == replicas,
        timeout=120,
        what=f"{replicas} operator pod(s) and no other",
    )


def active_operator_pod(kube: Kube) -> dict[str, Any] | None:
    """The operator pod that kopf peering lets act: the live peer of highest priority.

    The ClusterKopfPeering's status holds one entry per live peer, keyed by its id (in a
    pod, the pod's name), with the priority it runs at.
    """
    peers = kube.get("clusterkopfpeering", "modelwatch").get("status") or {}
    pods = {p["metadata"]["name"]: p for p in operator_pods(kube)}
    ranked = sorted(
        ((int(info.get("priority", 0)), peer) for peer, info in peers.items() if info),
        reverse=True,
    )
    for _, peer in ranked:
        for name, pod in pods.items():
            if peer == name or peer.split("/")[0].endswith(f"@{name}"):
                return pod
    return None


def force_delete_pod(kube: Kube, pod: dict[str, Any]) -> None:
    """Delete operator ``pod`` at once, as a node failure or an OOM kill would end it."""
    kube.kubectl(
        "delete", "pod", "-n", OPERATOR_NS, pod["metadata"]["name"],
        "--grace-period=0", "--force", check=False,
    )  # fmt: skip


def await_new_operator_pod(kube: Kube, old: dict[str, Any]) -> None:
    """Wait until an operator pod other than ``old`` is ready."""
    kube.wait_for(
        lambda: (
            (p := operator_pod(kube)) is not None
            and p["metadata"]["uid"] != old["metadata"]["uid"]
            and operator_ready(kube)
        ),
        timeout=180,
        what="a new operator pod",
    )


def kill_operator_pod(kube: Kube, pod: dict[str, Any]) -> None:
    """Force-delete operator ``pod`` and wait for its successor to be ready."""
    force_delete_pod(kube, pod)
    await_new_operator_pod(kube, pod)


def operator_logs(kube: Kube) -> str:
    """The last lines of the active (oldest) operator pod's log."""
    pod = operator_pod(kube)
    target = f"pod/{pod['metadata']['name']}" if pod else "deploy/modelwatch-operator"
    proc = kube.kubectl("logs", "-n", OPERATOR_NS, target, "--tail=80", check=False)
    return str(proc.stdout + proc.stderr)


# ---------------------------------------------------------------------------
# Data and the store
# ---------------------------------------------------------------------------


def frame(
    n: int, *, concept: str, seed: int, start_id: int = 0, shift: float = 0.0
) -> pd.DataFrame:
    """Rows of features x1..x3 and color, an id, a timestamp ``ts`` and a binary target ``y``.

    Concept ``a``: ``y = [x1 + x2 + color effect > 0]``; concept ``b`` inverts the relation.
    ``shift`` moves x1 and x2 (covariate drift).
    """
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n) + shift
    x2 = rng.normal(size=n) + shift
    x3 = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    effect = np.select([color == "red", color == "green"], [0.8, -0.8], 0.0)
    score_a = x1 - shift + x2 - shift + effect
    score = score_a if concept == "a" else -score_a
    y = (score + rng.normal(scale=0.3, size=n) > 0).astype(int)
    ts = pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(
        np.arange(start_id, start_id + n), unit="min"
    )
    return pd.DataFrame(
        {
            "id": np.arange(start_id, start_id + n),
            "ts": ts,
            "x1": x1,
            "x2": x2,
            "x3": x3,
            "color": color,
            "y": y,
            "prediction": (score_a > 0).astype(int),
        }
    )


def make_store(kube: Kube, namespace: str, *, claim: str = "store") -> pathlib.Path:
    """Create a PVC, wait until bound, and return its host directory (hostPath volume)."""
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )

    def bound() -> str | None:
        pvc = kube.get("pvc", claim, namespace)
        return pvc["spec"].get("volumeName") if pvc["status"].get("phase") == "Bound" else None

    volume = kube.wait_for(bound, timeout=60, what=f"PVC {claim} to bind")
    pv = kube.get("pv", volume)
    path = pv["spec"].get("hostPath", {}).get("path") or pv["spec"].get("local", {}).get("path")
    assert path, f"PV {volume} is neither hostPath nor local: {pv['spec']}"
    return pathlib.Path(path)


def write_data(store: pathlib.Path, *, drifted: bool) -> None:
    """Write reference and labels (CSV) and current data (Parquet) under ``store/data``."""
    data = store / "data"
    data.mkdir(parents=True, exist_ok=True)
    frame(600, concept="a", seed=1).drop(columns=["prediction"]).to_csv(
        data / "reference.csv", index=False
    )
    current = frame(
        400, concept="b" if drifted else "a", seed=2, start_id=10_000, shift=1.5 if drifted else 0.0
    )
    current.drop(columns=["y"]).to_parquet(data / "current.parquet", index=False)
    current[["id", "y"]].to_csv(data / "labels.csv", index=False)


def train_version_one(store: pathlib.Path) -> str:
    """Train version 1 on the reference data with the monitor CLI; return its sha256."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelwatch_monitor",
            "retrain",
            "--train",
            str(store / "data" / "reference.csv"),
            "--target",
            "y",
            "--task",
            "classification",
            "--time-budget",
            "2",
            "--estimators",
            "lgbm,rf",
            "--store",
            f"file://{store}",
            "--model",
            MODEL,
            "--version",
            "1",
            "--id-column",
            "id",
            "--timestamp-column",
            "ts",
            "--termination-log",
            os.devnull,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, f"training v1 failed:\n{proc.stderr[-3000:]}"
    result = contract.parse_result(lines[-1])
    assert result["ok"], result
    return str(result["sha256"])


def hand_over(store: pathlib.Path) -> None:
    """Give the store to the pods' user (they run as 10001 on a root-owned host folder).

    The prediction log folder is made here too: the server mounts it with ``subPath``,
    and a folder the kubelet makes for a ``subPath`` belongs to root.
    """
    (store / MODEL / "predictions").mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(store):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), RUN_AS, RUN_AS)
    os.chown(store, RUN_AS, RUN_AS)


def server_store_mounts(model: str) -> list[dict[str, Any]]:
    """The server's mounts: the store read-only, its prediction log read-write (the same
    PVC again, ``subPath`` ``<model>/predictions``), and /tmp."""
    return [
        {"name": "store", "mountPath": "/store", "readOnly": True},
        {
            "name": "store",
            "mountPath": f"/store/{model}/predictions",
            "subPath": f"{model}/predictions",
        },
        {"name": "tmp", "mountPath": "/tmp"},
    ]


def server_deployment(
    namespace: str,
    *,
    version: int | None,
    sha256: str | None,
    serve: bool = True,
    s3: S3Store | None = None,
) -> dict[str, Any]:
    """The user's model server: ``modelwatch serve`` on the store PVC, ready on /readyz.

    With ``s3`` the store is the object store instead: the server gets its URI, the
    endpoint, and the key pair from the Secret (the env a user's server needs), no PVC.
    """
    env = [
        {"name": contract.ENV_MODEL_NAME, "value": MODEL},
        {"name": contract.ENV_STORE_URI, "value": s3.uri if s3 else "file:///store"},
        {"name": "HOME", "value": "/tmp"},
    ]
    if s3 is not None:
        env += s3_pod_env(s3)
    if version is not None:
        env.append({"name": contract.ENV_MODEL_VERSION, "value": str(version)})
    if sha256 is not None:
        env.append({"name": contract.ENV_MODEL_SHA256, "value": sha256})
    container: dict[str, Any] = {
        "name": "server",
        "image": MONITOR_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "securityContext": RESTRICTED_CONTAINER,
        "volumeMounts": (
            [{"name": "tmp", "mountPath": "/tmp"}] if s3 else server_store_mounts(MODEL)
        ),
    }
    if serve:
        container.update(
            {
                "command": ["modelwatch"],
                "args": ["serve", "--port", "8080"],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": 8080},
                    "periodSeconds": 2,
                    "failureThreshold": 2,
                },
            }
        )
    else:
        container.update({"command": ["python", "-c", "import time; time.sleep(10**8)"]})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "server", "namespace": namespace, "labels": {"app": "server"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "server"}},
            "template": {
                "metadata": {"labels": {"app": "server"}},
                "spec": {
                    "securityContext": RESTRICTED_POD,
                    # The server's drain (5 s) and its last log flush fit in it.
                    "terminationGracePeriodSeconds": 15,
                    "automountServiceAccountToken": False,
                    "containers": [container],
                    "volumes": [
                        *(
                            []
                            if s3
                            else [
                                {"name": "store", "persistentVolumeClaim": {"claimName": "store"}}
                            ]
                        ),
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def monitor(namespace: str, name: str = "iris", **overrides: Any) -> dict[str, Any]:
    """A ModelMonitor over the test data; ``overrides`` replace top-level spec fields."""
    spec: dict[str, Any] = {
        "model": {
            "name": MODEL,
            "task": "classification",
            "target": "y",
            "idColumn": "id",
            "timestampColumn": "ts",
        },
        "data": {
            "reference": {"uri": "file:///store/data/reference.csv"},
            "current": {"uri": "file:///store/data/current.parquet", "window": "30d"},
            "labels": {"uri": "file:///store/data/labels.csv", "idColumn": "id"},
        },
        "store": {"uri": "file:///store", "volume": {"claimName": "store"}},
        "schedule": "0 0 1 1 *",
        "performance": {"metric": "accuracy", "maxDegradation": 0.1, "minLabeledRows": 50},
        "retrain": {
            "trainingData": "recent",
            "holdoutFraction": 0.25,
            "minLabeledRows": 50,
            "minImprovement": 0.01,
            "cooldown": "1s",
            "maxPerDay": 5,
            "automl": {"timeBudgetSeconds": 3, "estimators": ["lgbm", "rf"]},
        },
        "deployment": {"name": "server", "container": "server", "progressDeadlineSeconds": 30},
    }
    spec.update(overrides)
    return {
        "apiVersion": "modelwatch.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# ---------------------------------------------------------------------------
# The object store (SeaweedFS's S3 gateway, started by `make cluster-up`)
# ---------------------------------------------------------------------------

S3_SECRET = "modelwatch-s3"


@dataclass(frozen=True)
class S3Store:
    """A test's store on the cluster's object store: ``s3://<bucket>/<namespace>``."""

    uri: str
    endpoint: str
    access_key: str
    secret_key: str

    def host_env(self) -> dict[str, str]:
        """The environment of a host process (the CLI, s3fs) that uses the store."""
        return {
            **os.environ,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }


@functools.cache
def s3_up(state_dir: pathlib.Path) -> None:
    """Build (once) and start the object store beside the cluster in ``state_dir``.

    ``make cluster-up`` leaves it out (only an s3:// store needs it): the first test that
    asks for one starts it here, a no-op when it runs already (``make s3-up``).
    """
    env = {**os.environ, "MODELWATCH_STATE": str(state_dir)}
    proc = subprocess.run(
        ["bash", str(REPO / "hack" / "s3-up.sh")], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"hack/s3-up.sh failed:\n{proc.stderr[-3000:]}"


def s3_settings(kube: Kube) -> dict[str, str]:
    """The object store's endpoint, bucket and key pair, as ``hack/s3-up.sh`` wrote them
    beside the admin kubeconfig (mode 600; never printed); the store is started if need be."""
    state = pathlib.Path(kube.kubeconfig).parent
    s3_up(state)
    path = state / "s3" / "s3.env"
    assert path.exists(), f"{path} is missing after hack/s3-up.sh"
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def s3_pod_env(s3: S3Store) -> list[dict[str, Any]]:
    """The env of a pod that uses the store: the endpoint, and the Secret's key pair."""
    return [
        {"name": contract.ENV_S3_ENDPOINT, "value": s3.endpoint},
        *(
            {"name": name, "valueFrom": {"secretKeyRef": {"name": S3_SECRET, "key": name}}}
            for name in (contract.ENV_S3_ACCESS_KEY_ID, contract.ENV_S3_SECRET_ACCESS_KEY)
        ),
    ]


def make_s3_store(kube: Kube, namespace: str) -> S3Store:
    """Put the key pair into Secret ``modelwatch-s3`` of ``namespace``; return the store."""
    settings = s3_settings(kube)
    s3 = S3Store(
        uri=f"s3://{settings['MODELWATCH_S3_BUCKET']}/{namespace}",
        endpoint=settings["MODELWATCH_S3_ENDPOINT"],
        access_key=settings["AWS_ACCESS_KEY_ID"],
        secret_key=settings["AWS_SECRET_ACCESS_KEY"],
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": S3_SECRET, "namespace": namespace},
            "type": "Opaque",
            "stringData": {
                contract.ENV_S3_ACCESS_KEY_ID: s3.access_key,
                contract.ENV_S3_SECRET_ACCESS_KEY: s3.secret_key,
            },
        }
    )
    return s3


def s3_spec(s3: S3Store) -> dict[str, Any]:
    """The ``data`` and ``store`` of a monitor over the test data in the object store."""
    return {
        "data": {
            "reference": {"uri": f"{s3.uri}/data/reference.csv"},
            "current": {"uri": f"{s3.uri}/data/current.parquet", "window": "30d"},
            "labels": {"uri": f"{s3.uri}/data/labels.csv", "idColumn": "id"},
        },
        "store": {
            "uri": s3.uri,
            "endpoint": s3.endpoint,
            "credentials": {"secretName": S3_SECRET},
        },
    }


def _on_host(s3: S3Store, code: str, *args: str) -> None:
    """Run a Python snippet on the host with the store's env (the key pair stays off argv)."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=s3.host_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def setup_model_s3(kube: Kube, namespace: str, *, drifted: bool) -> tuple[S3Store, str]:
    """As :func:`setup_model`, on the object store: data and version 1 in
    ``s3://<bucket>/<namespace>``, the server reading them with the Secret's key pair."""
    s3 = make_s3_store(kube, namespace)
    with tempfile.TemporaryDirectory() as tmp:
        write_data(pathlib.Path(tmp), drifted=drifted)
        _on_host(
            s3,
            "import fsspec, pathlib, sys; fs, _ = fsspec.core.url_to_fs(sys.argv[2])\n"
            "for p in pathlib.Path(sys.argv[1]).iterdir(): "
            "fs.put_file(str(p), f'{sys.argv[2]}/{p.name}')",
            f"{tmp}/data",
            f"{s3.uri}/data",
        )
    proc = subprocess.run(
        [
            sys.executable, "-m", "modelwatch_monitor", "retrain",
            "--train", f"{s3.uri}/data/reference.csv", "--target", "y",
            "--task", "classification", "--time-budget", "2", "--estimators", "lgbm,rf",
            "--store", s3.uri, "--model", MODEL, "--version", "1", "--id-column", "id",
            "--timestamp-column", "ts", "--termination-log", os.devnull,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=s3.host_env(),
    )  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, f"training v1 failed:\n{proc.stderr[-3000:]}"
    result = contract.parse_result(lines[-1])
    assert result["ok"], result
    sha1 = str(result["sha256"])
    kube.apply(server_deployment(namespace, version=1, sha256=sha1, s3=s3))
    kube.kubectl(
        "rollout", "status", "-n", namespace, "deploy/server", "--timeout=180s", timeout=200
    )
    return s3, sha1


# ---------------------------------------------------------------------------
# Reading state
# ---------------------------------------------------------------------------


def status(kube: Kube, namespace: str, name: str = "iris") -> dict[str, Any]:
    result: dict[str, Any] = kube.get("modelmonitor", name, namespace).get("status") or {}
    return result


def condition(st: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in st.get("conditions") or [] if c["type"] == ctype), {})


def jobs(kube: Kube, namespace: str, kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        kube.kubectl(
            "get", "jobs", "-n", namespace, "-l", f"modelwatch.io/job-kind={kind}", "-o", "json"
        ).stdout
    )["items"]
    return items


def events(kube: Kube, namespace: str, *, reason: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        kube.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    )["items"]
    return [e for e in items if reason is None or e.get("reason") == reason]


def wait_status(
    kube: Kube,
    namespace: str,
    predicate: Callable[[dict[str, Any]], Any],
    *,
    timeout: float,
    what: str,
    name: str = "iris",
) -> dict[str, Any]:
    """Wait until ``predicate(status)``; on timeout show status, jobs and operator logs."""
    try:
        kube.wait_for(
            lambda: predicate(status(kube, namespace, name)),
            timeout=timeout,
            interval=1.0,
            what=what,
        )
    except AssertionError as exc:
        detail = json.dumps(status(kube, namespace, name), indent=1)[-4000:]
        pods = kube.kubectl("get", "pods,jobs", "-n", namespace, check=False).stdout
        raise AssertionError(
            f"{exc}\nstatus: {detail}\n{pods}\noperator log:\n{operator_logs(kube)[-4000:]}"
        ) from None
    return status(kube, namespace, name)


def run_check(kube: Kube, namespace: str, job: str, *, name: str = "iris") -> None:
    """Start one check from the CronJob's own template, as the schedule would."""
    kube.kubectl("create", "job", "-n", namespace, f"--from=cronjob/{name}-check", job)


def setup_model(kube: Kube, namespace: str, *, drifted: bool) -> tuple[pathlib.Path, str]:
    """Store with data and version 1, and the model server serving it, ready."""
    store = make_store(kube, namespace)
    write_data(store, drifted=drifted)
    sha1 = train_version_one(store)
    hand_over(store)
    kube.apply(server_deployment(namespace, version=1, sha256=sha1))
    kube.kubectl(
        "rollout", "status", "-n", namespace, "deploy/server", "--timeout=180s", timeout=200
    )
    return store, sha1


def start_monitor(
    kube: Kube, namespace: str, doc: dict[str, Any], *, data: bool = True
) -> dict[str, Any]:
    """A store (with the test data unless ``data`` is False), a sleeping serving
    Deployment at version 1, and the monitor ``doc``; return its initialised status."""
    store = make_store(kube, namespace)
    if data:
        write_data(store, drifted=False)
    hand_over(store)
    kube.apply(server_deployment(namespace, version=1, sha256="ab" * 32, serve=False))
    kube.apply(doc)
    return wait_status(
        kube,
        namespace,
        lambda s: s.get("observedGeneration") == 1,
        timeout=60,
        what="the status to be initialised",
    )


def served_version(kube: Kube, namespace: str) -> str:
    dep = kube.get("deployment", "server", namespace)
    env = {
        e["name"]: e.get("value")
        for e in dep["spec"]["template"]["spec"]["containers"][0].get("env", [])
    }
    return str(env.get(contract.ENV_MODEL_VERSION))


def wait_seconds(seconds: float) -> None:
    time.sleep(seconds)
