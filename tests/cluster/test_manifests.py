"""Every manifest a user applies is valid against the real apiserver (server-side dry-run),
and the kind workflow file lints clean."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO, Kube

KUSTOMIZATIONS = [
    "crds",
    "manifests/rbac",
    "manifests/operator",
    "manifests/store",
    "manifests/default",
]


@pytest.mark.cluster
@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_kustomization_passes_server_side_dry_run(kube: Kube, path: str) -> None:
    # The CRDs must exist (ModelMonitor, and kopf's peering for manifests/operator); the
    # namespaces for namespaced objects.
    kube.kubectl("apply", "--server-side", "-k", str(REPO / "crds"))
    kube.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/modelmonitors.modelwatch.io",
        "crd/clusterkopfpeerings.kopf.dev",
    )
    kube.kubectl("create", "namespace", "modelwatch-system", check=False)
    args = [
        "apply",
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",
        "-k",
        str(REPO / path),
    ]
    if path == "manifests/store":
        args += ["-n", "default"]
    out = kube.kubectl(*args).stdout
    assert "(server dry run)" in out


@pytest.mark.cluster
def test_samples_pass_server_side_dry_run(kube: Kube) -> None:
    kube.kubectl(
        "apply", "--server-side", "-f", str(REPO / "crds" / "modelmonitors.modelwatch.io.yaml")
    )
    kube.kubectl(
        "apply", "--server-side", "-f", str(REPO / "manifests" / "samples" / "namespace.yaml")
    )
    # --force-conflicts: once the demo has rolled the sample server, the operator owns
    # MODEL_VERSION; this checks the manifests against the schemas, not field ownership.
    out = kube.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
        "-k",
        str(REPO / "manifests" / "samples"),
    ).stdout
    for obj in (
        "modelmonitor.modelwatch.io/churn",
        "deployment.apps/churn-server",
        "service/model-server",
        "persistentvolumeclaim/modelwatch-store",
    ):
        assert obj in out


def actionlint() -> str:
    """actionlint, built once from its Go module into the cache (no binary downloads here)."""
    found = shutil.which("actionlint")
    if found:
        return found
    root = os.environ.get("MODELWATCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "modelwatch"
    )
    cache = os.path.join(root, "tools")
    binary = os.path.join(cache, "actionlint")
    if not os.path.exists(binary):
        subprocess.run(
            ["go", "install", "github.com/rhysd/actionlint/cmd/actionlint@v1.7.7"],
            env={**os.environ, "GOBIN": cache},
            check=True,
            capture_output=True,
        )
    return binary


def test_kind_workflow_lints_clean() -> None:
    workflow = REPO / ".github" / "workflows" / "e2e-kind.yml"
    proc = subprocess.run([actionlint(), str(workflow)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yl = subprocess.run(
        [
            os.path.join(os.path.dirname(os.sys.executable), "yamllint"),
            "-d",
            "{extends: relaxed, rules: {line-length: {max: 120}}}",
            str(workflow),
        ],
        capture_output=True,
        text=True,
    )
    assert yl.returncode == 0, yl.stdout + yl.stderr
