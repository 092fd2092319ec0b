"""The model registry: atomic, immutable, verified versions."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor

import pytest

from modelwatch_monitor import contract
from modelwatch_monitor.store.registry import (
    IntegrityError,
    Registry,
    VersionExistsError,
    VersionNotFoundError,
)

MODEL = {"weights": [1.0, 2.0, 3.0]}


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_publish_list_load_roundtrip(tmp_path: pathlib.Path, scheme: str) -> None:
    reg = Registry(scheme + str(tmp_path), "churn")
    assert reg.is_local
    assert reg.versions() == []
    meta = reg.publish(1, MODEL, {"metrics": {"challenger": {"roc_auc": 0.9}, "champion": None}})
    reg.publish(3, {"weights": [0.0]}, {})

    assert reg.versions() == [1, 3]
    assert reg.latest() == 3
    assert reg.latest(below=3) == 1
    assert reg.latest(below=1) is None
    folder = pathlib.Path(contract.version_dir(str(tmp_path), "churn", 1))
    data = (folder / contract.MODEL_FILE).read_bytes()
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    on_disk = json.loads((folder / contract.METADATA_FILE).read_text())
    assert on_disk["sha256"] == meta["sha256"]
    assert on_disk["version"] == 1
    assert on_disk["metrics"]["challenger"]["roc_auc"] == 0.9

    loaded = reg.load(1, expected_sha256=meta["sha256"])
    assert loaded.model == MODEL
    assert loaded.version == 1
    assert loaded.sha256 == meta["sha256"]


def test_versions_are_immutable(tmp_path: pathlib.Path) -> None:
    reg = Registry(str(tmp_path), "churn")
    reg.publish(1, MODEL, {})
    with pytest.raises(VersionExistsError, match="immutable"):
        reg.publish(1, {"other": True}, {})
    assert reg.load(1).model == MODEL
    model_file = pathlib.Path(reg.uri(1)) / contract.MODEL_FILE
    assert not os.stat(model_file).st_mode & 0o222, "artifacts are read-only"


def test_tampered_artifact_is_refused(tmp_path: pathlib.Path) -> None:
    reg = Registry(str(tmp_path), "churn")
    meta = reg.publish(1, MODEL, {})
    model_file = pathlib.Path(reg.uri(1)) / contract.MODEL_FILE
    model_file.chmod(0o644)
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        reg.load(1)
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        reg.load(1, expected_sha256=meta["sha256"])


def test_expected_hash_must_match_even_when_metadata_agrees(tmp_path: pathlib.Path) -> None:
    reg = Registry(str(tmp_path), "churn")
    reg.publish(1, MODEL, {})
    with pytest.raises(IntegrityError, match="expected"):
        reg.load(1, expected_sha256="0" * 64)


def test_missing_version(tmp_path: pathlib.Path) -> None:
    reg = Registry(str(tmp_path), "churn")
    with pytest.raises(VersionNotFoundError, match="no version 4"):
        reg.load(4)


def test_listing_ignores_temp_and_uncommitted_folders(tmp_path: pathlib.Path) -> None:
    reg = Registry(str(tmp_path), "churn")
    reg.publish(2, MODEL, {})
    root = pathlib.Path(contract.versions_dir(str(tmp_path), "churn"))
    (root / ".tmp-3-deadbeef").mkdir()
    (root / ".tmp-3-deadbeef" / contract.METADATA_FILE).write_text("{}")
    (root / "4").mkdir()  # no metadata.json: not committed
    (root / "notes").mkdir()
    assert reg.versions() == [2]
    assert not reg.exists(4)


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from modelwatch_monitor.store.registry import Registry

    def killed(src, dst):  # the process dies between writing and committing
        os.kill(os.getpid(), signal.SIGKILL)

    os.rename = killed
    Registry(sys.argv[1], "churn").publish(1, {"w": list(range(1000))}, {})
    """
)


def test_killed_writer_leaves_no_visible_version(tmp_path: pathlib.Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(tmp_path)], capture_output=True, timeout=60
    )
    assert proc.returncode == -9, proc.stderr
    reg = Registry(str(tmp_path), "churn")
    root = pathlib.Path(contract.versions_dir(str(tmp_path), "churn"))
    leftovers = os.listdir(root)
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-1-"), leftovers
    assert reg.versions() == []
    assert not reg.exists(1)
    with pytest.raises(VersionNotFoundError):
        reg.load(1)
    # A retry of the same version succeeds, and the crash's debris can be swept.
    reg.publish(1, MODEL, {})
    assert reg.versions() == [1]
    assert reg.remove_stale_temps(older_than_seconds=0) == leftovers
    assert sorted(os.listdir(root)) == ["1"]


def test_object_store_commits_with_metadata_last() -> None:
    store = "memory://mw-registry-test"
    reg = Registry(store, "churn")
    assert not reg.is_local
    # A crashed writer wrote the artifact but not the commit marker.
    reg._fs.pipe_file(f"{reg._root_path}/1/{contract.MODEL_FILE}", b"partial")
    assert reg.versions() == []
    meta = reg.publish(1, MODEL, {})
    assert reg.versions() == [1]
    assert reg.load(1, expected_sha256=meta["sha256"]).model == MODEL
    with pytest.raises(VersionExistsError):
        reg.publish(1, MODEL, {})
    reg._fs.rm(reg._root_path, recursive=True)


def _publish(args: tuple[str, int]) -> str:
    store, version = args
    meta = Registry(store, "churn").publish(version, {"version": version, "pad": "x" * 100_000}, {})
    return str(meta["sha256"])


def test_concurrent_writers_of_different_versions(tmp_path: pathlib.Path) -> None:
    versions = [1, 2, 3, 4, 5, 6]
    with ProcessPoolExecutor(max_workers=3) as pool:
        hashes = list(pool.map(_publish, [(str(tmp_path), v) for v in versions]))
    reg = Registry(str(tmp_path), "churn")
    assert reg.versions() == versions
    for v, sha in zip(versions, hashes, strict=True):
        loaded = reg.load(v, expected_sha256=sha)
        assert loaded.model["version"] == v
