"""The store on ``s3://``, against a real S3-compatible server (SeaweedFS), never a mock.

The server is the ``s3_server`` fixture (``tests/s3_server.py``): these tests skip, with
the reason, where the ``weed`` binary is not built (``hack/build-seaweedfs.sh``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import fsspec
import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor import cli, contract
from modelwatch_monitor.check import report
from modelwatch_monitor.check.profile import Profile, build_profile
from modelwatch_monitor.store.dataio import read_table
from modelwatch_monitor.store.registry import (
    TEMP_PREFIX,
    IntegrityError,
    Registry,
    VersionExistsError,
    VersionNotFoundError,
)
from tests.monitor import mw_synth as synth

MODEL = {"weights": [1.0, 2.0, 3.0]}


def _fs() -> Any:
    fs, _ = fsspec.core.url_to_fs("s3://")
    fs.invalidate_cache()
    return fs


def _path(uri: str) -> str:
    return uri.removeprefix("s3://")


def _objects(root: str) -> list[str]:
    """Every object under ``root``, relative to it (empty prefixes are not objects)."""
    return sorted(p[len(root) + 1 :] for p in _fs().find(root))


# -- the registry: a marker object publishes a version ----------------------------------


def test_publish_list_load_on_s3(s3_store: str) -> None:
    reg = Registry(s3_store, "churn")
    assert not reg.is_local
    assert reg.versions() == [] and reg.latest() is None
    meta = reg.publish(1, MODEL, {"note": "first"}, extra_files={"profile.json": b"{}"})
    reg.publish(3, {"weights": [0.0]}, {})
    assert reg.versions() == [1, 3]
    assert reg.latest() == 3 and reg.latest(below=3) == 1
    assert reg.exists(1) and not reg.exists(2)
    loaded = reg.load(1, expected_sha256=meta["sha256"])
    assert loaded.model == MODEL and loaded.metadata["note"] == "first"
    assert reg.metadata(1)["files"]["profile.json"] == meta["files"]["profile.json"]
    root = _path(contract.versions_dir(s3_store, "churn"))
    assert _objects(root) == [
        f"1/{contract.METADATA_FILE}",
        f"1/{contract.MODEL_FILE}",
        "1/profile.json",
        f"3/{contract.METADATA_FILE}",
        f"3/{contract.MODEL_FILE}",
    ], "the staged objects are gone"
    with pytest.raises(IntegrityError):
        reg.load(1, expected_sha256="0" * 64)


def test_versions_are_immutable_on_s3(s3_store: str) -> None:
    reg = Registry(s3_store, "churn")
    reg.publish(1, MODEL, {})
    with pytest.raises(VersionExistsError, match="immutable"):
        reg.publish(1, {"other": True}, {})
    assert reg.load(1).model == MODEL


def test_the_marker_is_written_only_once(s3_store: str) -> None:
    """The server refuses a second marker (If-None-Match: *): one writer publishes N."""
    reg = Registry(s3_store, "churn")
    meta = reg.publish(1, MODEL, {})
    with pytest.raises(VersionExistsError, match="another writer"):
        reg._write_marker(1, b'{"sha256": "forged"}')
    assert reg.metadata(1)["sha256"] == meta["sha256"]


KILLED_BEFORE_MARKER = textwrap.dedent(
    """
    import os, signal, sys
    from modelwatch_monitor.store.registry import Registry

    def killed(self, version, text):  # the process dies before it writes the marker
        os.kill(os.getpid(), signal.SIGKILL)

    Registry._write_marker = killed
    Registry(sys.argv[1], "churn").publish(1, {"w": list(range(1000))}, {})
    """
)


def test_a_publish_killed_before_the_marker_is_invisible(s3_store: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_MARKER, s3_store],
        capture_output=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    root = _path(contract.versions_dir(s3_store, "churn"))
    # The files were written (staged, and copied into versions/1/) ...
    objects = _objects(root)
    assert f"1/{contract.MODEL_FILE}" in objects
    staged = sorted({o.split("/")[0] for o in objects if o.startswith(TEMP_PREFIX)})
    assert len(staged) == 1 and f"1/{contract.METADATA_FILE}" not in objects
    # ... but without the marker no reader sees a version.
    reg = Registry(s3_store, "churn")
    assert reg.versions() == [] and reg.latest() is None and not reg.exists(1)
    with pytest.raises(VersionNotFoundError):
        reg.load(1)
    # A retry publishes the version, and the crash's staging prefix can be swept.
    meta = reg.publish(1, MODEL, {})
    assert reg.versions() == [1]
    assert reg.load(1, expected_sha256=meta["sha256"]).model == MODEL
    assert reg.remove_stale_temps(older_than_seconds=3600) == []
    assert reg.remove_stale_temps(older_than_seconds=0) == staged
    assert _objects(root) == [f"1/{contract.METADATA_FILE}", f"1/{contract.MODEL_FILE}"]


def test_a_reader_sees_a_version_another_process_published(s3_store: str) -> None:
    reader = Registry(s3_store, "churn")
    reader.publish(1, MODEL, {})
    assert reader.versions() == [1]  # the listing is now cached in this process
    script = "import sys; from modelwatch_monitor.store.registry import Registry; "
    script += "Registry(sys.argv[1], 'churn').publish(2, {'w': 2}, {})"
    subprocess.run([sys.executable, "-c", script, s3_store], check=True, timeout=120)
    assert reader.versions() == [1, 2]
    assert reader.latest() == 2 and reader.load(2).model == {"w": 2}


# -- reports and profiles ---------------------------------------------------------------


def test_report_and_profile_on_s3(s3_store: str) -> None:
    destination = contract.report_dir(s3_store, "churn", "20261101T000000Z")
    feature = {"name": "x", "type": "numeric", "test": "ks", "statistic": 0.01}
    doc = {"features": [{**feature, "p_value": 0.9, "drift": False}], "dataset_drift": False}
    assert report.write_report(destination, doc, {}) == destination
    fs = _fs()
    assert json.loads(fs.cat_file(f"{_path(destination)}/{contract.REPORT_JSON}")) == doc
    assert b"<html" in fs.cat_file(f"{_path(destination)}/{contract.REPORT_HTML}").lower()

    frame = pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    source = _upload(f"{s3_store}/data/ref.parquet", frame)
    profile = build_profile(source)  # read from s3 too
    assert set(profile.columns) == {"x", "c"}
    uri = contract.reference_profile_path(s3_store, "churn")
    profile.save(uri)
    again = Profile.load(uri)
    assert again.to_dict() == profile.to_dict()


# -- the loop on s3: retrain publishes, the server serves and logs, the check reads -----


def _retrain(store: str, train: str) -> dict[str, Any]:
    code = cli.main(
        ["retrain", "--train", train, "--target", "y", "--task", "classification",
         "--time-budget", "1", "--estimators", "lgbm", "--store", store, "--model", "churn",
         "--version", "1", "--id-column", "id", "--timestamp-column", "ts",
         "--termination-log", os.devnull]
    )  # fmt: skip
    assert code == 0
    return Registry(store, "churn").metadata(1)


def _upload(uri: str, frame: pd.DataFrame) -> str:
    with fsspec.open(uri, "wb") as fh:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), fh)
    return uri


@pytest.mark.slow
def test_retrain_serve_log_and_check_on_s3(s3_store: str, tmp_path: Any) -> None:
    from tests.monitor.test_serve import records, start_server, stop

    train = _upload(f"{s3_store}/data/train.parquet", synth.frame(400, seed=7))
    meta = _retrain(s3_store, train)

    env = {
        contract.ENV_MODEL_NAME: "churn",
        contract.ENV_MODEL_VERSION: "1",
        contract.ENV_MODEL_SHA256: meta["sha256"],
        contract.ENV_STORE_URI: s3_store,
    }
    server = start_server(tmp_path, env, "--log-flush-seconds", "600")
    for i in range(3):
        r = httpx.post(server.url + "/predict", json=records(200, seed=20 + i), timeout=60)
        assert r.status_code == 200, r.text
    assert stop(server) == 0, server.log()
    assert "prediction log closed: 600 rows" in server.log()
    logged = read_table(contract.predictions_dir(s3_store, "churn"))
    assert len(logged) == 600 and (logged[contract.LOG_MODEL_VERSION] == 1).all()

    doc = synth.job_config(s3_store)
    doc["spec"]["data"] = {"reference": {"uri": train}, "current": {"window": "3650d"}}
    config = synth.write_config(tmp_path / "config.json", doc)
    code, result, stderr = synth.run_cli(
        "check", "--config", config, "--result-path", str(tmp_path / "result")
    )
    assert code == 0, stderr
    assert result["ok"] and result["rows"]["current"] == 600
    assert result["reportUri"].startswith(s3_store)
    fs = _fs()
    assert fs.exists(f"{_path(result['reportUri'])}/{contract.REPORT_JSON}")
    assert fs.exists(_path(contract.reference_profile_path(s3_store, "churn")))
    for secret in (os.environ["AWS_SECRET_ACCESS_KEY"], os.environ["AWS_ACCESS_KEY_ID"]):
        assert secret not in stderr and secret not in json.dumps(result)
        assert secret not in server.log()


def test_a_wrong_secret_fails_the_check_without_showing_it(
    s3_store: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-" + os.environ["AWS_SECRET_ACCESS_KEY"])
    doc = synth.job_config(s3_store)
    doc["spec"]["data"] = {"reference": {"uri": f"{s3_store}/data/train.parquet"}}
    config = synth.write_config(tmp_path / "config.json", doc)
    code, result, stderr = synth.run_cli(
        "check", "--config", config, "--result-path", str(tmp_path / "result")
    )
    assert code != 0
    assert result["ok"] is False
    assert result["message"].startswith("PermissionError: The request signature")
    assert "wrong-" not in stderr and "wrong-" not in json.dumps(result)


def test_timestamps_in_the_log_are_utc(s3_store: str) -> None:
    # The prediction log written by the logger reads back with its UTC timestamps.
    from modelwatch_monitor.serve.prediction_log import PredictionLogger
    from tests.monitor.test_serve import _batch

    logger = PredictionLogger(store=s3_store, model="m", version=2, flush_seconds=600)
    logger.offer(_batch(25, "r1"))
    assert logger.flush(timeout=60)
    logger.close()
    logged = read_table(contract.predictions_dir(s3_store, "m"))
    assert len(logged) == 25 and str(logged[contract.LOG_TIMESTAMP].dt.tz) == "UTC"
    assert logged[contract.LOG_TIMESTAMP].max() <= pd.Timestamp(dt.datetime.now(dt.UTC))
