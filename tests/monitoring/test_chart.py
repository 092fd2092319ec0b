"""The Helm chart: lint-clean, the same objects as manifests/default, values that work."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import KUBECTL, REPO
from tests.monitoring.promql import CHART, MONITORING, helm

HELM = helm()
pytestmark = pytest.mark.skipif(
    HELM is None, reason="helm is not built: run make helm (hack/build-helm.sh)"
)

Key = tuple[str, str, str]


def _objects(text: str) -> dict[Key, dict[str, Any]]:
    objects: dict[Key, dict[str, Any]] = {}
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        meta = doc["metadata"]
        key = (doc["kind"], meta.get("namespace", ""), meta["name"])
        assert key not in objects, f"twice: {key}"
        objects[key] = doc
    return objects


def _template(*args: str) -> dict[Key, dict[str, Any]]:
    proc = subprocess.run(
        [str(HELM), "template", "modelwatch", str(CHART), *args],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return _objects(proc.stdout)


def _kustomize(path: str) -> dict[Key, dict[str, Any]]:
    proc = subprocess.run([KUBECTL, "kustomize", str(REPO / path)], capture_output=True, text=True)
    if proc.returncode != 0 and "kubectl not found" in proc.stderr:
        pytest.skip("kubectl is not built: run make cluster-up (hack/build-kubernetes.sh)")
    assert proc.returncode == 0, proc.stderr
    return _objects(proc.stdout)


def _container(objects: dict[Key, dict[str, Any]]) -> dict[str, Any]:
    deployment = objects["Deployment", "modelwatch-system", "modelwatch-operator"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_helm_lint() -> None:
    proc = subprocess.run([str(HELM), "lint", str(CHART)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("with_crds", [True, False], ids=["include-crds", "templates"])
def test_default_values_render_manifests_default(with_crds: bool) -> None:
    kustomized = _kustomize("manifests/default")
    rendered = _template(*(["--include-crds"] if with_crds else []))
    if not with_crds:  # the CRDs come only from crds/
        kustomized = {k: v for k, v in kustomized.items() if k[0] != "CustomResourceDefinition"}
    assert sorted(rendered) == sorted(kustomized)
    for key, obj in kustomized.items():
        assert rendered[key] == obj, key


def test_monitoring_renders_manifests_monitoring() -> None:
    base = set(_template())
    rendered = _template("--set", "monitoring.enabled=true")
    extra = {k: v for k, v in rendered.items() if k not in base}
    assert extra == _kustomize("manifests/monitoring")


def test_monitoring_values() -> None:
    rendered = _template(
        "--set",
        "monitoring.enabled=true",
        "--set",
        "monitoring.podMonitor=false",
        "--set",
        "monitoring.labels.release=kube-prometheus",
        "--set",
        "monitoring.runbookBaseURL=https://docs.example/modelwatch",
    )
    kinds = {k[0] for k in rendered}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    assert "PodMonitor" not in kinds
    rule = rendered["PrometheusRule", "modelwatch-system", "modelwatch"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    urls = {r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "https://docs.example/modelwatch#modelwatchmonitordrifted" in urls
    assert all(url.startswith("https://docs.example/modelwatch#") for url in urls)


def test_operator_values() -> None:
    rendered = _template(
        "--set",
        "image.repository=registry.example/modelwatch/operator",
        "--set",
        "image.tag=0.2.0",
        "--set",
        "replicas=3",
        "--set",
        "resources.limits.memory=1Gi",
        "--set",
        "allowedMonitorImages={registry.example/modelwatch/monitor:*,modelwatch/monitor:dev}",
    )
    deployment = rendered["Deployment", "modelwatch-system", "modelwatch-operator"]
    assert deployment["spec"]["replicas"] == 3
    container = _container(rendered)
    assert container["image"] == "registry.example/modelwatch/operator:0.2.0"
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert _env(container)["MODELWATCH_ALLOWED_MONITOR_IMAGES"] == (
        "registry.example/modelwatch/monitor:*,modelwatch/monitor:dev"
    )


def test_watched_namespaces() -> None:
    rendered = _template("--set", "watchNamespaces={team-a,team-b}")
    args = _container(rendered)["args"]
    assert "--all-namespaces" not in args
    assert {"--namespace=team-a", "--namespace=team-b"} <= set(args)
    peerings = {k for k in rendered if k[0] in {"KopfPeering", "ClusterKopfPeering"}}
    assert peerings == {
        ("KopfPeering", "team-a", "modelwatch"),
        ("KopfPeering", "team-b", "modelwatch"),
    }
    role = rendered["ClusterRole", "", "modelwatch-operator"]
    assert any("kopfpeerings" in rule["resources"] for rule in role["rules"])


def test_namespace_values() -> None:
    rendered = _template("--set", "namespace.create=false", "--set", "namespace.name=ops")
    assert not [k for k in rendered if k[0] == "Namespace"]
    assert {k[1] for k in rendered if k[1]} == {"ops"}
    binding = rendered["ClusterRoleBinding", "", "modelwatch-operator"]
    assert binding["subjects"][0]["namespace"] == "ops"


def test_chart_copies_are_fresh() -> None:
    for name in ("modelmonitors.modelwatch.io.yaml", "kopf-peerings.yaml"):
        assert (CHART / "crds" / name).read_text() == (REPO / "crds" / name).read_text()
    assert (CHART / "files" / "modelwatch.rules.yaml").read_text() == (
        MONITORING / "modelwatch.rules.yaml"
    ).read_text()
