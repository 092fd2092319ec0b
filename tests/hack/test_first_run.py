"""A first run does only what it needs: no S3 store for the demo, and long steps that say
how far they are. The progress helper runs for real in bash, on a short interval."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import REPO
from tests.hack.test_tooling import bash

HACK = REPO / "hack"


def run_timed(cache: Path, command: str, every: int = 1) -> subprocess.CompletedProcess[str]:
    env = {"MODELWATCH_CACHE": str(cache), "MODELWATCH_PROGRESS_SECONDS": str(every)}
    script = f'run_timed step "building step" "{cache}/step.log" "a hint" -- {command}'
    return bash(script, env)


def progress(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if re.search(r"building step: \d+s", line)]


def test_a_first_run_shows_progress_and_caches_its_time(tmp_path: Path) -> None:
    proc = run_timed(tmp_path, "sleep 3.5")
    assert proc.returncode == 0, proc.stderr
    lines = progress(proc.stderr)
    assert len(lines) >= 2, proc.stderr  # one a second here, one every 30 s by default
    assert all("(a hint)" in line for line in lines)
    assert "of about" not in proc.stderr  # nothing to estimate from yet
    assert (tmp_path / "step-seconds").read_text().strip() in {"3", "4"}


def test_a_later_run_estimates_from_the_cached_time(tmp_path: Path) -> None:
    (tmp_path / "step-seconds").write_text("600\n")
    proc = run_timed(tmp_path, "sleep 2.5")
    assert proc.returncode == 0, proc.stderr
    assert "the last run took 600s" in proc.stderr
    lines = progress(proc.stderr)
    assert lines and all("s of about 600s, 10 min left" in line for line in lines)
    (tmp_path / "step-seconds").write_text("1\n")
    proc = run_timed(tmp_path, "sleep 2.5")
    assert "past the 1s of the last run" in proc.stderr


def test_a_failed_step_prints_its_log_and_keeps_the_cached_time(tmp_path: Path) -> None:
    (tmp_path / "step-seconds").write_text("42\n")
    proc = run_timed(tmp_path, "bash -c 'echo go: module not found; exit 3'")
    assert proc.returncode == 3
    assert "go: module not found" in proc.stderr
    assert "building step failed" in proc.stderr
    assert (tmp_path / "step-seconds").read_text().strip() == "42"


def recipe(target: str) -> str:
    """``make -n TARGET`` with the venv taken as built (the recipe, not its prerequisites)."""
    proc = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", target],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def scripts_run_by(script: Path, seen: set[Path] | None = None) -> set[Path]:
    """Every hack script ``script`` runs, transitively (``bash "${HACK_DIR}/x.sh"``)."""
    seen = set() if seen is None else seen
    for name in re.findall(r'bash "\$\{HACK_DIR\}/([\w.-]+\.sh)"', script.read_text()):
        child = HACK / name
        if child not in seen:
            seen.add(child)
            scripts_run_by(child, seen)
    return seen


def test_the_demo_neither_builds_nor_starts_the_s3_store() -> None:
    demo = recipe("demo")
    assert "hack/demo.sh" in demo and "s3-up" not in demo
    reached = {p.name for p in scripts_run_by(HACK / "demo.sh")}
    assert {"cluster-up.sh", "images.sh", "build-kubernetes.sh"} <= reached
    assert not reached & {"s3-up.sh", "build-seaweedfs.sh"}


def test_what_asks_for_an_s3_store_starts_it() -> None:
    for target in ("test", "bench", "s3-up"):
        assert "hack/s3-up.sh" in recipe(target), target
    assert "build-seaweedfs.sh" in {p.name for p in scripts_run_by(HACK / "s3-up.sh")}
