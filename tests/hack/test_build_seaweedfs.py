"""hack/build-seaweedfs.sh: a no-op on a warm cache, a named cause when it cannot build."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.s3_server import pinned_version

SCRIPT = REPO / "hack" / "build-seaweedfs.sh"


def run(cache: Path) -> subprocess.CompletedProcess[str]:
    # PATH without Go: a build would fail, so success means nothing was built.
    env = {**os.environ, "MODELWATCH_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env)


def test_a_warm_cache_is_a_no_op(tmp_path: Path) -> None:
    binary = tmp_path / f"seaweedfs-{pinned_version()}" / "bin" / "weed"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"seaweedfs {pinned_version()} already built" in proc.stderr


def test_go_missing_is_named(tmp_path: Path) -> None:
    probe = {"PATH": "/usr/bin:/bin"}
    if subprocess.run(["bash", "-c", "command -v go"], env=probe).returncode == 0:
        pytest.skip("go is installed in /usr/bin on this machine")
    proc = run(tmp_path)
    assert proc.returncode != 0
    assert "Go is missing" in proc.stderr
    assert not list(tmp_path.glob("seaweedfs-*/bin/weed"))
