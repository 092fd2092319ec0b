"""Shared fixtures. Cluster tests use the real local cluster (make cluster-up)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
KUBECTL = str(REPO / "hack" / "kubectl")
MONITOR_IMAGE = os.environ.get("MODELWATCH_MONITOR_IMAGE", "modelwatch/monitor:dev")
OPERATOR_IMAGE = os.environ.get("MODELWATCH_OPERATOR_IMAGE", "modelwatch/operator:dev")


@dataclass
class Kube:
    """A handle on the real cluster: kubectl with the admin kubeconfig."""

    kubeconfig: str

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": self.kubeconfig}
        proc = subprocess.run(
            [KUBECTL, *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def apply(self, manifest: dict[str, Any] | str, *, namespace: str | None = None) -> None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        args = ["apply", "--server-side", "--force-conflicts", "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        self.kubectl(*args, input=text)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        args = ["get", kind, name, "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        return json.loads(self.kubectl(*args).stdout)  # type: ignore[no-any-return]

    def wait_for(
        self,
        predicate: Callable[[], Any],
        *,
        timeout: float = 120,
        interval: float = 1.0,
        what: str = "condition",
    ) -> Any:
        """Poll ``predicate`` until it returns a truthy value; fail with ``what`` on timeout."""
        deadline = time.monotonic() + timeout
        last_exc: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                value = predicate()
                if value:
                    return value
            except (AssertionError, subprocess.SubprocessError, KeyError, ValueError) as exc:
                last_exc = exc
            time.sleep(interval)
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}; last error: {last_exc}"
        )


@pytest.fixture(scope="session")
def kube() -> Kube:
    """Bring the local cluster up, or reuse it (or the cluster KUBECONFIG points at)."""
    if os.environ.get("MODELWATCH_USE_CURRENT_CONTEXT") and os.environ.get("KUBECONFIG"):
        return Kube(os.environ["KUBECONFIG"])
    proc = subprocess.run(
        ["bash", str(REPO / "hack" / "cluster-up.sh")], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.fail(f"make cluster-up failed:\n{proc.stderr[-4000:]}")
    kubeconfig = proc.stdout.strip().splitlines()[-1].removeprefix("export KUBECONFIG=")
    return Kube(kubeconfig)


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    """A fresh namespace, deleted (without waiting) after the test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", name)
    kube.wait_for(
        lambda: (
            kube.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode
            == 0
        ),
        what=f"the default ServiceAccount in {name}",
    )
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


# --- a real S3-compatible server (SeaweedFS), for tests of the store on s3:// ---------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """One ``weed server -s3`` for the session; skipped (with the reason) when not built."""
    from tests.s3_server import missing_reason, start_s3_server

    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with start_s3_server() as server:
        yield server


@pytest.fixture
def s3_store(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh ``s3://`` store URI; the process env carries the endpoint and key pair."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return str(s3_server.uri(f"store-{uuid.uuid4().hex[:12]}"))
