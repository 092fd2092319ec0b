"""Scraping: the ServiceMonitor, PodMonitor, plain scrape jobs and pod annotations agree
with the operator's and the sample server's manifests."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.monitoring.promql import MONITORING, promtool

OPERATOR = REPO / "manifests" / "operator"
SAMPLE_SERVER = REPO / "manifests" / "samples" / "model-server.yaml"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _one(path: Path, kind: str) -> dict[str, Any]:
    (doc,) = [d for d in _docs(path) if d["kind"] == kind]
    return doc


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _pod_template(path: Path) -> dict[str, Any]:
    template: dict[str, Any] = _one(path, "Deployment")["spec"]["template"]
    return template


def _port_names(template: Mapping[str, Any]) -> dict[str, int]:
    return {
        p["name"]: p["containerPort"]
        for container in template["spec"]["containers"]
        for p in container.get("ports", [])
    }


def test_service_monitor_selects_the_operator_metrics_service() -> None:
    monitor = _one(MONITORING / "servicemonitor.yaml", "ServiceMonitor")
    service = _one(OPERATOR / "service.yaml", "Service")
    spec = monitor["spec"]
    assert _selects(spec["selector"]["matchLabels"], service["metadata"]["labels"])
    assert service["metadata"]["namespace"] in spec["namespaceSelector"]["matchNames"]
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["honorLabels"] is True  # the monitors' own namespace label wins
    assert service["metadata"]["labels"][spec["jobLabel"]] == "modelwatch-operator"


def test_pod_monitor_selects_model_servers_only() -> None:
    spec = _one(MONITORING / "podmonitor.yaml", "PodMonitor")["spec"]
    selector = spec["selector"]["matchLabels"]
    server = _pod_template(SAMPLE_SERVER)
    operator = _pod_template(OPERATOR / "deployment.yaml")
    assert _selects(selector, server["metadata"]["labels"])
    assert not _selects(selector, operator["metadata"]["labels"])
    assert spec["namespaceSelector"] == {"any": True}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert endpoint["port"] in _port_names(server)
    assert endpoint["path"] == "/metrics"


@pytest.mark.parametrize(
    ("path", "port_name"),
    [(OPERATOR / "deployment.yaml", "metrics"), (SAMPLE_SERVER, "http")],
    ids=["operator", "model-server"],
)
def test_pod_templates_carry_the_scrape_annotations(path: Path, port_name: str) -> None:
    template = _pod_template(path)
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == _port_names(template)[port_name]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_kustomization_lists_every_prometheus_operator_object() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [
        "podmonitor.yaml",
        "prometheusrule.yaml",
        "servicemonitor.yaml",
    ]


@pytest.mark.skipif(promtool() is None, reason="promtool not found (make promtool)")
def test_plain_scrape_config_is_valid(tmp_path: Path) -> None:
    """promtool checks the jobs; Debian's Prometheus is built without Kubernetes service
    discovery, so the check swaps it for a static target and keeps every relabelling."""
    config = yaml.safe_load((MONITORING / "prometheus-scrape.yaml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"modelwatch-operator", "modelwatch-model-server"}
    assert jobs["modelwatch-operator"]["honor_labels"] is True
    for job in jobs.values():
        assert job.pop("kubernetes_sd_configs")[0]["role"] == "pod"
        job["static_configs"] = [{"targets": ["localhost:9090"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "modelwatch.rules.yaml").write_text(
        (MONITORING / "modelwatch.rules.yaml").read_text()
    )
    proc = subprocess.run(
        [str(promtool()), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
