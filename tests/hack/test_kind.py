"""The kind tooling's pieces that run without Docker: the runc wrapper that drops withheld
capabilities, the bridge CNI manifest of the locally built node image, and the Kubernetes
build cache that now includes kubeadm. These run the real scripts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

WRAPPER = REPO / "hack" / "kind-runc-bounded.sh"
CNI_MANIFEST = REPO / "hack" / "kind-node" / "default-cni.yaml"
CAPS = ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"]


@pytest.fixture
def fake_runc(tmp_path: Path) -> Path:
    """A `runc` on PATH that records its arguments, one per line."""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (hack/kind-docker.sh installs it with the wrapper)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    runc = bin_dir / "runc"
    runc.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "runc-args"}\n')
    runc.chmod(0o755)
    return bin_dir


def run_wrapper(
    bin_dir: Path, args: list[str], drop: str | None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("RUNC_DROP_CAPS", None)
    if drop is not None:
        env["RUNC_DROP_CAPS"] = drop
    return subprocess.run(
        ["bash", str(WRAPPER), *args], capture_output=True, text=True, env=env, timeout=60
    )


def cap_sets() -> dict[str, list[str]]:
    return {name: list(CAPS) for name in ("bounding", "effective", "permitted", "inheritable")}


def test_wrapper_drops_the_withheld_caps_from_a_bundle(tmp_path: Path, fake_runc: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(
        json.dumps({"process": {"args": ["/sbin/init"], "capabilities": cap_sets()}})
    )
    args = ["--root", "/run/x", "create", "--bundle", str(bundle), "--pid-file", "p", "node"]
    proc = run_wrapper(fake_runc, args, "CAP_SYS_RESOURCE")
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((bundle / "config.json").read_text())
    for name, caps in spec["process"]["capabilities"].items():
        assert caps == ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"], name
    assert spec["process"]["args"] == ["/sbin/init"]
    # runc itself gets exactly the arguments the shim passed.
    assert (tmp_path / "runc-args").read_text().splitlines() == args


def test_wrapper_drops_the_withheld_caps_from_an_exec(tmp_path: Path, fake_runc: Path) -> None:
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["cat"], "capabilities": cap_sets()}))
    args = ["--root", "/run/x", "exec", "--process", str(process), "--detach", "node"]
    proc = run_wrapper(fake_runc, args, "CAP_SYS_RESOURCE CAP_SYS_ADMIN")
    assert proc.returncode == 0, proc.stderr
    for caps in json.loads(process.read_text())["capabilities"].values():
        assert caps == ["CAP_CHOWN", "CAP_NET_ADMIN"]
    assert (tmp_path / "runc-args").read_text().splitlines() == args


def test_wrapper_without_a_drop_list_leaves_the_spec_alone(tmp_path: Path, fake_runc: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    text = json.dumps({"process": {"capabilities": cap_sets()}})
    (bundle / "config.json").write_text(text)
    proc = run_wrapper(fake_runc, ["create", "--bundle", str(bundle), "node"], None)
    assert proc.returncode == 0, proc.stderr
    assert (bundle / "config.json").read_text() == text


def cni_daemonset() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(CNI_MANIFEST.read_text()) if d]
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    assert isinstance(ds, dict)
    return ds


def test_cni_manifest_takes_kinds_control_plane_patch() -> None:
    text = CNI_MANIFEST.read_text()
    # kind adds CONTROL_PLANE_ENDPOINT by a JSON patch on /spec/template/spec/containers/0/env/-
    # only to a manifest with this phrase; the env list must exist for the patch to apply.
    assert "would you kindly patch this file" in text
    container = cni_daemonset()["spec"]["template"]["spec"]["containers"][0]
    assert isinstance(container["env"], list)
    assert container["image"] == "@TOOLS_IMAGE@"  # filled in by hack/kind-node-image.sh


def test_cni_config_written_per_node_is_valid_json() -> None:
    script = cni_daemonset()["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    match = re.search(r"<<JSON\n(.*?)\nJSON\n", script, re.S)
    assert match, "the conflist heredoc is missing from the DaemonSet's script"
    conflist = json.loads(match.group(1).replace("${cidr}", "10.244.1.0/24"))
    bridge, portmap = conflist["plugins"]
    assert bridge["type"] == "bridge" and portmap["type"] == "portmap"
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]


def kube_bin(cache: Path) -> Path:
    lib = REPO / "hack" / "lib.sh"
    out = subprocess.run(
        ["bash", "-c", f'source {lib}; echo "$KUBE_BIN_DIR"'],
        capture_output=True,
        text=True,
        env={**os.environ, "MODELWATCH_CACHE": str(cache)},
        check=True,
    )
    return Path(out.stdout.strip())


def build_kubernetes(cache: Path) -> subprocess.CompletedProcess[str]:
    # PATH without Go: a build would fail, so success means nothing was built.
    env = {**os.environ, "MODELWATCH_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        ["bash", str(REPO / "hack" / "build-kubernetes.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def fill(bin_dir: Path, names: list[str]) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)


LOCAL_CLUSTER_BINARIES = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
]


def test_a_cache_with_kubeadm_is_complete(tmp_path: Path) -> None:
    fill(kube_bin(tmp_path), [*LOCAL_CLUSTER_BINARIES, "kubeadm"])
    proc = build_kubernetes(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "already built" in proc.stderr


def test_a_cache_without_kubeadm_is_not(tmp_path: Path) -> None:
    # The local cluster's older cache: kubeadm must be built, so without Go this fails.
    if shutil.which("go", path="/usr/bin:/bin"):
        pytest.skip("go is installed in /usr/bin on this machine")
    fill(kube_bin(tmp_path), LOCAL_CLUSTER_BINARIES)
    proc = build_kubernetes(tmp_path)
    assert proc.returncode != 0
    assert "Go is missing" in proc.stderr
