"""A real Prometheus (Debian's binary) scrapes the operator and a model server on the local
cluster with the jobs of manifests/monitoring/prometheus-scrape.yaml, evaluates the rules,
and answers every dashboard query.

Debian's Prometheus is built without Kubernetes service discovery, so the test stands in
for it: it lists the pods with kubectl and writes, for every container port, the target and
the ``__meta_kubernetes_*`` labels Kubernetes discovery would give it into a file_sd file.
The shipped relabelling then picks the targets, as in a cluster.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.cluster.mw_operator_env import (
    MODEL,
    hand_over,
    make_store,
    monitor,
    run_check,
    server_deployment,
    status,
    train_version_one,
    wait_status,
    write_data,
)
from tests.monitoring.promql import MONITORING, RULES, exported_metrics, metric_names
from tests.monitoring.test_dashboard import queries

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="no prometheus binary"),
]

# A stand-in for ModelwatchMonitorDrifted on the drift share of the last check: the path
# from one drifted check to a firing alert, beside the real alert's three in a row.
STAND_IN_NAME = "TestDriftShareHigh"
STAND_IN: dict[str, Any] = {
    "alert": STAND_IN_NAME,
    "expr": "max by (namespace, monitor) (modelwatch_drift_share) > 0.3",
    "labels": {"severity": "warning"},
}


def _label(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def pod_targets(kube: Any, namespaces: list[str] | None) -> list[dict[str, Any]]:
    """file_sd groups like Kubernetes pod discovery's: one per container port."""
    args = ["get", "pods", "-o", "json"]
    pods: list[dict[str, Any]] = []
    scopes = [["-n", ns] for ns in namespaces] if namespaces else [["-A"]]
    for scope in scopes:
        pods += json.loads(kube.kubectl(*args, *scope).stdout)["items"]
    groups = []
    for pod in pods:
        ip = pod.get("status", {}).get("podIP")
        if not ip or pod["metadata"].get("deletionTimestamp"):
            continue
        meta = pod["metadata"]
        labels = {
            "__meta_kubernetes_namespace": meta["namespace"],
            "__meta_kubernetes_pod_name": meta["name"],
            **{
                f"__meta_kubernetes_pod_label_{_label(k)}": v
                for k, v in (meta.get("labels") or {}).items()
            },
        }
        for container in pod["spec"]["containers"]:
            for port in container.get("ports", []):
                groups.append(
                    {
                        "targets": [f"{ip}:{port['containerPort']}"],
                        "labels": {
                            **labels,
                            "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                        },
                    }
                )
    return groups


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A Prometheus server on 127.0.0.1 and its HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expr)["result"]
        return result

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.get("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == name]


@pytest.fixture(scope="module")
def scenario(operator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A namespace with a model server labelled as a model server and a monitor on it."""
    kube = operator
    namespace = f"t-prom-{int(time.time()) % 100000}"
    kube.kubectl("create", "namespace", namespace)
    kube.wait_for(
        lambda: kube.kubectl("get", "sa", "default", "-n", namespace, check=False).returncode == 0,
        what="the default ServiceAccount",
    )
    try:
        store = make_store(kube, namespace)
        write_data(store, drifted=True)
        sha1 = train_version_one(store)
        hand_over(store)
        server = server_deployment(namespace, version=1, sha256=sha1)
        server["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = (
            "model-server"
        )
        kube.apply(server)
        kube.kubectl("rollout", "status", "-n", namespace, "deploy/server", "--timeout=180s")
        kube.apply(monitor(namespace, retrain={"enabled": False}))
        wait_status(
            kube, namespace, lambda s: s.get("currentVersion") == 1, timeout=60, what="takeover"
        )
        yield kube, namespace, store
    finally:
        kube.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def prometheus(scenario: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    kube = scenario[0]
    work = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((MONITORING / "prometheus-scrape.yaml").read_text())
    config["global"] = {"scrape_interval": "2s", "evaluation_interval": "2s"}
    sd_namespaces: dict[str, list[str] | None] = {}
    for job in config["scrape_configs"]:
        (sd,) = job.pop("kubernetes_sd_configs")
        sd_namespaces[job["job_name"]] = (sd.get("namespaces") or {}).get("names")
        job["file_sd_configs"] = [
            {"files": [str(work / f"{job['job_name']}.json")], "refresh_interval": "2s"}
        ]
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:  # the same expressions; no waiting minutes for `for`
        for rule in group["rules"]:
            rule["for"] = "0s"
    rules["groups"].append({"name": "test", "rules": [STAND_IN]})
    (work / "modelwatch.rules.yaml").write_text(yaml.safe_dump(rules))
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    stop = threading.Event()

    def discover() -> None:
        while not stop.is_set():
            for job, names in sd_namespaces.items():
                path = work / f"{job}.json"
                try:
                    groups = pod_targets(kube, names)
                except (AssertionError, subprocess.SubprocessError):  # a kubectl hiccup
                    continue  # keep the last targets; try again next round
                path.with_suffix(".tmp").write_text(json.dumps(groups))
                path.with_suffix(".tmp").rename(path)
            stop.wait(3)

    for job, names in sd_namespaces.items():
        (work / f"{job}.json").write_text(json.dumps(pod_targets(kube, names)))
    thread = threading.Thread(target=discover, daemon=True)
    thread.start()
    port = _free_port()
    log = (work / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        kube.wait_for(lambda: _ready(server), timeout=60, what="Prometheus to be ready")
        yield server
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        if proc.returncode not in (0, -15):
            print((work / "prometheus.log").read_text()[-3000:])


def _ready(server: Prometheus) -> bool:
    try:
        with urllib.request.urlopen(f"{server.url}/-/ready", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _predict(kube: Any, namespace: str) -> None:
    """A few /predict requests straight to the server pod, for the latency panels."""
    pods = json.loads(
        kube.kubectl("get", "pods", "-n", namespace, "-l", "app=server", "-o", "json").stdout
    )["items"]
    body = json.dumps([{"x1": 0.1, "x2": -0.2, "x3": 0.3, "color": "red"}]).encode()
    for pod in pods:
        for _ in range(5):
            request = urllib.request.Request(
                f"http://{pod['status']['podIP']}:8080/predict",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            # A 4xx is observed as well: enough for the latency panels.
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(scope="module")
def drift_timeline(scenario: Any, prometheus: Prometheus) -> dict[str, Any]:
    """Drifted checks, then a check back in distribution; the alerts seen after each."""
    kube, namespace, store = scenario
    seen: dict[str, Any] = {}
    alerts = (STAND_IN_NAME, "ModelwatchMonitorDrifted")

    def states() -> dict[str, list[str]]:
        return {
            name: [
                a["state"]
                for a in prometheus.alerts(name)
                if a["labels"].get("namespace") == namespace
            ]
            for name in alerts
        }

    def checks_done(n: int) -> Any:
        return lambda s: len(s.get("history") or []) >= n

    for i in range(3):
        run_check(kube, namespace, f"iris-check-drift-{i}")
        wait_status(kube, namespace, checks_done(i + 1), timeout=240, what=f"drifted check {i}")
    _predict(kube, namespace)
    kube.wait_for(
        lambda: all("firing" in s for s in states().values()),
        timeout=60,
        what="the alerts to fire",
    )
    time.sleep(6)  # a few more evaluations
    seen["drifted"] = states()
    seen["drifted_series"] = prometheus.query(
        f'modelwatch_drift_share{{namespace="{namespace}", monitor="iris"}}'
    )
    write_data(store, drifted=False)
    run_check(kube, namespace, "iris-check-calm")
    wait_status(kube, namespace, checks_done(4), timeout=240, what="the check in distribution")
    kube.wait_for(lambda: not any(states().values()), timeout=60, what="the alerts to resolve")
    time.sleep(6)
    seen["calm"] = states()
    return seen


def test_prometheus_scrapes_the_operator_and_the_model_server(
    scenario: Any, prometheus: Prometheus
) -> None:
    kube, namespace, _ = scenario
    kube.wait_for(
        lambda: (
            prometheus.query('up{job="modelwatch-operator"} == 1')
            and prometheus.query(
                f'up{{job="modelwatch-model-server", namespace="{namespace}"}} == 1'
            )
        ),
        timeout=60,
        what="both jobs up",
    )
    ready = kube.wait_for(
        lambda: prometheus.query(f'modelwatch_model_ready{{namespace="{namespace}"}}'),
        timeout=60,
        what="the server's readiness series",
    )
    assert {s["metric"]["model"] for s in ready} == {MODEL}
    assert all(s["value"][1] == "1" for s in ready)


def test_drift_share_alert_fires_and_resolves(drift_timeline: dict[str, Any]) -> None:
    """The operator's drift share, scraped with honor_labels (the monitor's own namespace),
    fires an alert after drifted checks and resolves after one in distribution."""
    assert drift_timeline["drifted_series"], "no modelwatch_drift_share for the monitor"
    assert float(drift_timeline["drifted_series"][0]["value"][1]) > 0.3
    assert drift_timeline["drifted"][STAND_IN_NAME] == ["firing"]
    assert drift_timeline["calm"][STAND_IN_NAME] == []


def test_drift_alert_fires_and_resolves(drift_timeline: dict[str, Any]) -> None:
    assert drift_timeline["drifted"]["ModelwatchMonitorDrifted"] == ["firing"]
    assert drift_timeline["calm"]["ModelwatchMonitorDrifted"] == []


def test_dashboard_queries_run_on_prometheus(
    scenario: Any, prometheus: Prometheus, drift_timeline: dict[str, Any]
) -> None:
    """Every query parses on the server, and returns data for the monitor unless it shows
    an event that did not happen here."""
    kube, namespace, _ = scenario
    # The operator sets its gauges from status at each event of the monitor; a monitor
    # without a check yet has no drift share: run one.
    drift = f'modelwatch_drift_share{{namespace="{namespace}", monitor="iris"}}'
    if not prometheus.query(drift):
        done = len(status(kube, namespace).get("history") or [])
        run_check(kube, namespace, "iris-check-dashboard")
        wait_status(
            kube,
            namespace,
            lambda s: len(s.get("history") or []) > done,
            timeout=240,
            what="a check for the dashboard",
        )
    kube.wait_for(lambda: prometheus.query(drift), timeout=30, what="the monitor's series")
    exported = exported_metrics() | {"up"}
    empty = []
    for where, expr in queries():
        # The dashboard test's values for the variables, made this test's monitor's.
        expr = expr.replace('"modelwatch-demo"', f'"{namespace}"').replace('"churn"', '"iris"')
        result = prometheus.query(expr)  # raises on a parse error
        names = metric_names(expr)
        if names <= exported and not result:
            empty.append(f"{where}: {expr}")
    # Counters of events that did not happen here (rollbacks, promotions, retrains, 5xx)
    # have no series; nor has the serving version before a version serves, nor the
    # estimate when the check made none.
    allowed = [
        "'Promotions and rollbacks'",
        "'Retrains'",
        "'Server requests and error rate' B",
        "'Serving version'",
    ]
    estimate = (status(kube, namespace).get("lastCheck") or {}).get("estimatedMetric") or {}
    if estimate.get("value") is None:  # e.g. NoProbabilities: the test data has none
        allowed += [f"'Performance: realized and estimated' {ref}:" for ref in "BCD"]
    unexpected = [e for e in empty if not any(a in e for a in allowed)]
    assert not unexpected, "\n".join(unexpected)
