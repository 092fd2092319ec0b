"""The cluster tooling fails with a message naming the cause, and never touches
processes it did not start. These run the real scripts in bash."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

LIB = REPO / "hack" / "lib.sh"


def bash(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"source {LIB}\n{script}"],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_go_missing_is_named(tmp_path: Path) -> None:
    # An empty cache forces a build; a PATH without go must stop it with the cause.
    env = {"MODELWATCH_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    if (
        subprocess.run(["bash", "-c", "command -v go"], env=env, capture_output=True).returncode
        == 0
    ):
        pytest.skip("go is installed in /usr/bin on this machine")
    proc = subprocess.run(
        ["bash", str(REPO / "hack" / "build-kubernetes.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.returncode != 0
    assert "Go is missing" in proc.stderr


def test_disk_full_is_named(tmp_path: Path) -> None:
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        proc = bash(f"require_disk {mount} 500")
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert proc.returncode != 0
    assert f"disk full: {mount} has" in proc.stderr and "500 MB needed" in proc.stderr


def test_port_in_use_names_the_owner(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = bash(f"require_port_free {port} kube-apiserver", {"MODELWATCH_STATE": str(tmp_path)})
    assert proc.returncode != 0
    assert (
        f"port {port} (needed by kube-apiserver) is already in use by pid {os.getpid()}"
        in proc.stderr
    )


def test_unhealthy_component_prints_its_log_tail(tmp_path: Path) -> None:
    script = """
start_component fake /bin/sh -c 'echo "fake: listening failed: bind: permission denied"; sleep 30'
COMPONENT_BINARY=dash wait_healthy fake 2 false
"""
    proc = bash(script, {"MODELWATCH_STATE": str(tmp_path)})
    pid = int((tmp_path / "pids" / "fake.pid").read_text())
    os.kill(pid, 9)
    assert proc.returncode != 0
    assert "fake did not become healthy within 2s" in proc.stderr
    assert "bind: permission denied" in proc.stderr


def test_a_pid_file_naming_another_process_is_not_ours(tmp_path: Path) -> None:
    # A pid file that points at a process which is not the recorded component
    # (pid reuse, or a hand-edited file) must be ignored, not killed.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "pids").mkdir()
        (tmp_path / "pids" / "etcd.pid").write_text(str(stranger.pid))
        proc = bash(
            "component_alive etcd && echo alive || echo not-ours",
            {"MODELWATCH_STATE": str(tmp_path)},
        )
        assert proc.stdout.strip() == "not-ours"
        time.sleep(0.2)
        assert stranger.poll() is None, "a process the tooling did not start was signalled"
    finally:
        stranger.kill()
