"""Run the unit tests on the newest releases pyproject.toml allows, and name what breaks.

`make test-latest` (not part of CI): the lock (uv.lock) pins what the venv and the
images install; this asks what happens on the next fresh lock.

1. A scratch venv gets the newest allowed releases of every dependency and extra.
2. The unit tests (``-m 'not cluster'``) run there against this checkout.
3. When some fail, each upgraded package is tried alone on top of the lock, on the
   failing tests only, and the report names the releases that break them by themselves.

Exit status: 0 when the newest releases pass, 1 when some test fails on them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _log(message: str) -> None:
    print(f"[test-latest {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _uv_env() -> dict[str, str]:
    """uv reads no pip configuration: hand over the machine's CA bundle and index."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for key, var in (("cert", "SSL_CERT_FILE"), ("index-url", "UV_DEFAULT_INDEX")):
        value = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", f"global.{key}"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        if value and var not in env:
            env[var] = value
    return env


def _uv(*args: str, env: dict[str, str]) -> None:
    subprocess.run([str(BIN / "uv"), *args], check=True, env=env, cwd=REPO)


def _pins(text: str) -> dict[str, str]:
    """``name==version`` lines that apply to this interpreter (markers evaluated)."""
    from packaging.markers import Marker

    pins = {}
    pattern = r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)(?:\s*;\s*([^\\\n]+))?"
    for name, version, marker in re.findall(pattern, text, flags=re.M):
        if not marker.strip() or Marker(marker.strip()).evaluate():
            pins[_norm(name)] = version
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _venv(path: Path, env: dict[str, str]) -> Path:
    _uv("venv", "--quiet", "--python", sys.executable, str(path), env=env)
    return path / "bin" / "python"


def _installed(python: Path, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        [str(BIN / "uv"), "pip", "freeze", "--python", str(python)],
        capture_output=True, text=True, check=True, env=env,
    ).stdout  # fmt: skip
    return _pins(out)


def _pytest(python: Path, args: list[str], report: Path) -> tuple[int, list[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["operator", "monitor_image"])}
    proc = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not cluster",
         f"--junitxml={report}", *args],
        cwd=REPO, env=env, check=False,
    )  # fmt: skip
    failed: list[str] = []
    if report.exists():
        import xml.etree.ElementTree as ET

        for case in ET.parse(report).iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                module = case.get("classname", "").replace(".", "/")
                failed.append(f"{module}.py::{case.get('name')}")
    return proc.returncode, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pytest_args", nargs="*", help="extra pytest arguments (e.g. tests/monitor)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args, extra = parser.parse_known_args(argv)
    args.pytest_args += extra
    env = _uv_env()
    locked = _pins((REPO / "requirements" / "dev.txt").read_text())
    scratch = Path(tempfile.mkdtemp(prefix="modelwatch-latest-"))
    try:
        _log("resolving the newest allowed releases into a scratch venv")
        python = _venv(scratch / "latest", env)
        _uv("pip", "install", "--quiet", "--python", str(python), "-r", "pyproject.toml",
            "--all-extras", "--group", "dev", env=env)  # fmt: skip
        newest = _installed(python, env)
        upgraded = {
            name: (locked[name], version)
            for name, version in sorted(newest.items())
            if name in locked and locked[name] != version
        }
        if upgraded:
            _log("newer than the lock: " + ", ".join(
                f"{n} {a} -> {b}" for n, (a, b) in upgraded.items()))  # fmt: skip
        else:
            _log("the lock already holds the newest allowed releases")
        rc, failed = _pytest(python, args.pytest_args, scratch / "latest.xml")
        if rc == 0:
            _log("the unit tests pass on the newest allowed releases")
            return 0
        if not failed:
            _log(f"pytest exited {rc} without a failing test (collection error?)")
            return 1
        _log(f"{len(failed)} tests fail on the newest releases; trying each upgrade alone")
        culprits: list[str] = []
        for name, (old, new) in upgraded.items():
            python = _venv(scratch / f"one-{name}", env)
            _uv("pip", "install", "--quiet", "--python", str(python), "--no-deps",
                "-r", "requirements/dev.txt", env=env)  # fmt: skip
            _uv("pip", "install", "--quiet", "--python", str(python), f"{name}=={new}", env=env)
            rc_one, failed_one = _pytest(python, failed, scratch / f"one-{name}.xml")
            verdict = f"breaks {len(failed_one)} tests" if rc_one else "passes"
            _log(f"{name} {old} -> {new} alone: {verdict}")
            if rc_one:
                culprits.append(f"{name} {new} (locked {old}): " + ", ".join(failed_one[:5]))
            shutil.rmtree(scratch / f"one-{name}", ignore_errors=True)
        print("\nfailing on the newest releases:\n  " + "\n  ".join(failed))
        if culprits:
            print("\nreleases that break the project by themselves:\n  " + "\n  ".join(culprits))
        else:
            print("\nno single upgrade breaks them alone: a combination does")
        return 1
    finally:
        if args.keep:
            _log(f"scratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
