"""The lock is in step with pyproject.toml, and the venv and both images install from it."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent


def _lock_check(repo: pathlib.Path) -> subprocess.CompletedProcess[str]:
    # Offline: whether the lock satisfies pyproject.toml needs no registry.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "UV_OFFLINE": "1"}
    return subprocess.run(
        ["bash", str(repo / "hack" / "lock.sh"), "--check"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_lock_matches_pyproject() -> None:
    proc = _lock_check(REPO)
    assert proc.returncode == 0, proc.stderr
    assert "match pyproject.toml" in proc.stdout


def _copy(tmp_path: pathlib.Path) -> pathlib.Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(REPO / name, repo / name)
    shutil.copytree(REPO / "requirements", repo / "requirements")
    shutil.copytree(REPO / "hack", repo / "hack", ignore=shutil.ignore_patterns("pause"))
    return repo


def test_lock_check_fails_when_pyproject_moves(tmp_path: pathlib.Path) -> None:
    repo = _copy(tmp_path)
    text = (repo / "pyproject.toml").read_text()
    # A bound the locked FLAML release does not satisfy.
    moved = re.sub(r'"flaml>=[^"]*"', '"flaml>=2.3,<2.4"', text)
    assert moved != text
    (repo / "pyproject.toml").write_text(moved)
    proc = _lock_check(repo)
    assert proc.returncode != 0
    assert "uv.lock is out of step with pyproject.toml; run 'make lock'" in proc.stderr


def test_lock_check_fails_when_an_export_is_edited(tmp_path: pathlib.Path) -> None:
    repo = _copy(tmp_path)
    path = repo / "requirements" / "monitor.txt"
    path.write_text(re.sub(r"^flaml==\S+", "flaml==2.7.0", path.read_text(), flags=re.M))
    proc = _lock_check(repo)
    assert proc.returncode != 0
    assert "requirements/monitor.txt is out of step with uv.lock" in proc.stderr


@pytest.mark.parametrize(
    ("dockerfile", "export"),
    [("monitor_image/Dockerfile", "monitor"), ("operator/Dockerfile", "operator")],
)
def test_images_install_from_the_lock(dockerfile: str, export: str) -> None:
    text = (REPO / dockerfile).read_text()
    assert f"--require-hashes --no-deps -r requirements/{export}.txt" in text
    # The project itself goes in without resolving anything beyond the lock.
    installs = re.findall(r"pip install[^;]*", text)
    assert all("--no-deps" in line for line in installs), installs


def test_exports_pin_every_package_with_hashes() -> None:
    for export in ("operator", "monitor", "dev"):
        text = (REPO / "requirements" / f"{export}.txt").read_text()
        pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, flags=re.M)
        assert pins, export
        blocks = re.split(r"^(?=[A-Za-z0-9_.-]+==)", text, flags=re.M)[1:]
        assert all("--hash=sha256:" in block for block in blocks), export
    operator_pins = dict(
        re.findall(
            r"^([A-Za-z0-9_.-]+)==(\S+)",
            (REPO / "requirements/operator.txt").read_text(),
            flags=re.M,
        )
    )
    assert "kopf" in operator_pins
    # The operator image carries no numerical stack.
    assert not {"numpy", "pandas", "scikit-learn", "flaml"} & set(operator_pins)
