"""``modelwatch serve``: real HTTP round trips to a real server subprocess."""

from __future__ import annotations

import json
import pathlib
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelwatch_monitor import contract
from modelwatch_monitor.serve.prediction_log import LoggedBatch, PredictionLogger
from modelwatch_monitor.serve.server import ServerConfig
from modelwatch_monitor.store.dataio import read_table
from modelwatch_monitor.store.registry import Registry
from tests.monitor import mw_synth as synth
from tests.monitor.mw_server import Server, model_env, records, start_server, stop, train_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store with version 1 of ``churn``, trained by the real retrain command."""
    return train_store(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def server(store: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("api")
    s = start_server(tmp, model_env(store), "--no-prediction-log")
    yield s
    stop(s)


# -- the healthy server ---------------------------------------------------------------


def test_predict_round_trip(server: Server, store: dict[str, Any]) -> None:
    batch = records(50, seed=1)
    r = httpx.post(server.url + "/predict", json=batch, headers={"X-Request-Id": "req-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["X-Request-Id"] == "req-1" and body["requestId"] == "req-1"
    assert body["model"] == "churn" and body["version"] == 1
    assert body["classes"] == [0, 1]
    model = Registry(store["uri"], "churn").load(1).model
    expected = model.predict(pd.DataFrame(batch))
    assert body["predictions"] == expected.tolist()
    proba = np.asarray(body["probabilities"])
    assert proba.shape == (50, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(proba, model.predict_proba(pd.DataFrame(batch)), atol=1e-5)
    # {"records": [...]} works too, and a single record.
    r = httpx.post(server.url + "/predict", json={"records": batch[:1]})
    assert r.status_code == 200 and r.json()["predictions"] == expected[:1].tolist()


def test_big_batch_is_predicted_off_the_event_loop(server: Server, store: dict[str, Any]) -> None:
    batch = records(6000, seed=5, with_id=False)
    r = httpx.post(server.url + "/predict", json={"records": batch}, timeout=60)
    assert r.status_code == 200, r.text
    model = Registry(store["uri"], "churn").load(1).model
    assert r.json()["predictions"] == model.predict(pd.DataFrame(batch)).tolist()


def test_unseen_category_and_nulls_are_missing_values(server: Server) -> None:
    row = records(1, seed=2)[0] | {"color": "purple", "x3": None}
    r = httpx.post(server.url + "/predict", json=[row])
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0] in (0, 1)


@pytest.mark.parametrize(
    ("change", "column", "text"),
    [
        ({"x2": None, "drop": "x2"}, "x2", "missing column 'x2' in record 1"),
        ({"x1": "1.5"}, "x1", "column 'x1' must be a number; got str in record 1"),
        ({"x3": True}, "x3", "column 'x3' must be a number; got bool"),
        ({"color": 2.5}, "color", "column 'color' must be a string (categorical); got float"),
        ({"x1": {"a": 1}}, "x1", "got dict"),
    ],
)
def test_bad_records_get_422_naming_the_column(
    server: Server, change: dict[str, Any], column: str, text: str
) -> None:
    batch = records(3, seed=3)
    bad = dict(batch[1])
    drop = change.pop("drop", None)
    bad.update(change)
    if drop:
        del bad[drop]
    batch[1] = bad
    r = httpx.post(server.url + "/predict", json=batch)
    assert r.status_code == 422
    assert r.json()["column"] == column
    assert text in r.json()["error"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_get_422_naming_the_column(server: Server, literal: str) -> None:
    """JSON parsers read NaN, Infinity and 1e999 as floats; the model must not see them,
    nor the prediction log, where they would poison the next check's statistics."""
    batch = records(3, seed=3)
    batch[2]["x1"] = "@@"
    body = json.dumps(batch).replace('"@@"', literal).encode()
    r = httpx.post(server.url + "/predict", content=body)
    assert r.status_code == 422, r.text
    assert r.json()["column"] == "x1"
    assert r.json()["error"].startswith("column 'x1' must be a finite number; got ")
    assert "in record 2" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b"[]", 422), (b'{"rows": 1}', 422), (b"[1, 2]", 422)],
)
def test_malformed_bodies(server: Server, body: bytes, status: int) -> None:
    r = httpx.post(server.url + "/predict", content=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]


def test_health_metadata_and_metrics(server: Server, store: dict[str, Any]) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz").json()
    assert ready == {"ready": True, "version": 1, "sha256": store["sha256"]}
    meta = httpx.get(server.url + "/metadata").json()
    assert meta["model"] == "churn" and meta["version"] == 1
    assert meta["sha256"] == store["sha256"]
    assert meta["metrics"]["challenger"]["roc_auc"] > 0.8
    assert meta["metrics"]["champion"] is None
    assert [f["name"] for f in meta["features"]] == synth.FEATURES
    httpx.post(server.url + "/predict", json=records(2, seed=4))
    httpx.post(server.url + "/predict", json=[{"x1": 1}])
    text = httpx.get(server.url + "/metrics").text
    labels = 'model="churn",model_version="1"'
    assert f'modelwatch_requests_total{{code="200",endpoint="/predict",{labels}}}' in text
    assert f'modelwatch_requests_total{{code="422",endpoint="/predict",{labels}}}' in text
    assert (
        f'modelwatch_request_duration_seconds_bucket{{endpoint="/predict",le="0.01",{labels}}}'
        in text
    )
    assert f'modelwatch_request_errors_total{{{labels},reason="bad_request"}}' in text
    assert f'modelwatch_model_info{{{labels},sha256="{store["sha256"]}"}} 1.0' in text
    assert f"modelwatch_model_ready{{{labels}}} 1.0" in text


# -- prediction logs and SIGTERM ------------------------------------------------------


def test_prediction_logs_survive_sigterm(store: dict[str, Any], tmp_path: pathlib.Path) -> None:
    s = start_server(tmp_path, model_env(store), "--log-flush-seconds", "600")
    sent: dict[str, tuple[list[dict[str, Any]], list[Any]]] = {}
    for i, n in enumerate([1, 7, 1000, 3]):
        batch = records(n, seed=10 + i)
        rid = f"batch-{i}"
        r = httpx.post(s.url + "/predict", json=batch, headers={"X-Request-Id": rid})
        assert r.status_code == 200
        sent[rid] = (batch, r.json()["predictions"])
    before = datetime.now(UTC)
    pred_dir = pathlib.Path(contract.predictions_dir(store["uri"], "churn"))
    assert not list(pred_dir.rglob("*.parquet")), "nothing is written before the flush"
    assert stop(s) == 0, s.log()
    assert "prediction log closed: 1011 rows in 1 files, 0 rows dropped" in s.log()

    files = list(pred_dir.rglob("*"))
    assert not [f for f in files if f.name.endswith(".tmp")]
    day = before.strftime("%Y-%m-%d")
    assert {f.parent.name for f in files if f.is_file()} == {f"date={day}"}
    logged = read_table(str(pred_dir))
    assert len(logged) == 1011
    meta_columns = ["prediction", "proba_0", "proba_1", "request_id", "timestamp", "model_version"]
    assert set(logged.columns) >= {*synth.FEATURES, "id", "ts", *meta_columns}
    assert (logged["model_version"] == 1).all()
    assert str(logged["timestamp"].dt.tz) == "UTC"
    for rid, (batch, predictions) in sent.items():
        rows = logged[logged["request_id"] == rid]
        expect = pd.DataFrame(batch)
        assert rows["prediction"].tolist() == predictions
        # Ids are logged as strings (one log schema, whatever type clients send).
        assert rows["id"].tolist() == expect["id"].astype(str).tolist()
        np.testing.assert_allclose(rows["x1"].to_numpy(), expect["x1"].to_numpy())
        assert rows["color"].tolist() == expect["color"].tolist()
    shutil.rmtree(pred_dir)


# -- refusing a bad artifact ----------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["wrong-sha", "tampered", "missing-version", "bad-env", "no-sha", "no-sha-tampered"]
)
def test_bad_artifact_is_never_ready(
    case: str, store: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    copy = tmp_path / "store"
    shutil.copytree(store["uri"], copy)
    env = model_env(store, **{contract.ENV_STORE_URI: str(copy)})
    reason = "IntegrityError"
    if case == "wrong-sha":
        env[contract.ENV_MODEL_SHA256] = "0" * 64
    elif case == "tampered":
        artifact = pathlib.Path(contract.version_dir(str(copy), "churn", 1)) / contract.MODEL_FILE
        artifact.chmod(0o644)
        artifact.write_bytes(artifact.read_bytes()[:-1] + b"\x00")
    elif case == "missing-version":
        env[contract.ENV_MODEL_VERSION] = "7"
        reason = "VersionNotFound"
    elif case == "no-sha":  # no hash from outside the store, no first-deploy flag
        env[contract.ENV_MODEL_SHA256] = ""
        reason = "ConfigError"
    elif case == "no-sha-tampered":  # the flag trusts metadata.json, which still catches this
        env[contract.ENV_MODEL_SHA256] = ""
        env[contract.ENV_ALLOW_UNVERIFIED] = "true"
        artifact = pathlib.Path(contract.version_dir(str(copy), "churn", 1)) / contract.MODEL_FILE
        artifact.chmod(0o644)
        artifact.write_bytes(artifact.read_bytes()[:-1] + b"\x00")
    else:
        env[contract.ENV_MODEL_VERSION] = "latest"
        reason = "ConfigError"
    s = start_server(tmp_path, env, "--retry-seconds", "0.2", wait_ready=False)
    try:
        deadline = time.monotonic() + 30
        while f"model not ready: {reason}" not in s.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"model not ready: {reason}" in s.log()
        time.sleep(0.5)  # several retries
        assert s.log().count("model not ready") == 1, "the reason is logged once, not per retry"
        r = httpx.get(s.url + "/readyz")
        assert r.status_code == 503
        assert r.json()["reason"] == reason
        assert httpx.get(s.url + "/healthz").status_code == 200
        r = httpx.post(s.url + "/predict", json=records(1, seed=1))
        assert r.status_code == 503
        assert s.proc.poll() is None, "the server stays alive"
    finally:
        assert stop(s) == 0


def test_an_empty_sha256_needs_the_first_deploy_flag(
    store: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    env = model_env(store, **{contract.ENV_MODEL_SHA256: ""})
    problem = ServerConfig.from_env(env).config_problem
    assert problem.startswith("MODEL_SHA256 is not set: refusing to load an artifact")
    assert contract.ENV_ALLOW_UNVERIFIED in problem
    bad = ServerConfig.from_env({**env, contract.ENV_ALLOW_UNVERIFIED: "yes"}).config_problem
    assert bad == f"{contract.ENV_ALLOW_UNVERIFIED} must be true or false, got 'yes'"
    env[contract.ENV_ALLOW_UNVERIFIED] = "true"
    assert ServerConfig.from_env(env).config_problem == ""
    s = start_server(tmp_path, env)  # ready: metadata.json's hash matches the artifact
    try:
        assert httpx.get(s.url + "/readyz").json()["sha256"] == store["sha256"]
        assert "verifying against metadata.json only" in s.log()
    finally:
        assert stop(s) == 0


# -- the logger on its own ------------------------------------------------------------


def _batch(n: int, rid: str = "r") -> LoggedBatch:
    return LoggedBatch(
        features={"x": np.arange(n, dtype=float)},
        predictions=np.zeros(n, dtype=int),
        proba=None,
        request_id=rid,
        timestamp=datetime.now(UTC),
    )


def test_logger_drops_and_counts_when_full_without_blocking(tmp_path: pathlib.Path) -> None:
    logger = PredictionLogger(
        store=str(tmp_path), model="m", version=3, max_rows=100, flush_rows=10**9,
        flush_seconds=600,
    )  # fmt: skip
    start = time.perf_counter()
    accepted = [logger.offer(_batch(30, f"r{i}")) for i in range(10)]
    assert time.perf_counter() - start < 0.5
    assert accepted == [True, True, True] + [False] * 7
    assert logger.dropped_batches == 7 and logger.dropped_rows == 210
    assert logger.flush(timeout=30)
    assert logger.written_rows == 90
    logger.close()
    logged = read_table(str(tmp_path / "m" / "predictions"))
    assert len(logged) == 90 and sorted(set(logged["request_id"])) == ["r0", "r1", "r2"]
    assert not logger.offer(_batch(1)), "a closed logger takes nothing"


def test_logger_writes_on_size_and_close(tmp_path: pathlib.Path) -> None:
    logger = PredictionLogger(
        store=str(tmp_path), model="m", version=1, flush_rows=50, flush_seconds=600
    )
    for _ in range(6):
        logger.offer(_batch(10))
    deadline = time.monotonic() + 10
    while logger.written_rows < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert logger.written_rows >= 50
    logger.offer(_batch(5))
    logger.close()
    assert logger.written_rows == 65 and logger.dropped_rows == 0
    assert len(read_table(str(tmp_path / "m" / "predictions"))) == 65


def test_write_failure_is_counted_not_raised(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    logger = PredictionLogger(store=str(blocker), model="m", version=1, flush_seconds=600)
    logger.offer(_batch(4))
    logger.close()
    assert logger.write_errors == 1 and logger.dropped_rows == 4


# -- the serving fast path matches FLAML's own transform ------------------------------


def _fitted(estimator: str, task: str) -> tuple[Any, Any]:
    from modelwatch_monitor.store.feature_schema import coerce_frame, infer_schema
    from modelwatch_monitor.train.automl import AutoMLSettings, fit

    data = synth.frame(300, seed=9)
    if task == "regression":
        data["y"] = data["x1"] * 3 + data["x3"]
    schema = infer_schema(data, synth.FEATURES)
    settings = AutoMLSettings(time_budget=1, estimators=(estimator,), n_jobs=1)
    model = fit(
        coerce_frame(data, schema), data["y"], schema=schema, task=task,
        metric="roc_auc" if task == "classification" else "r2", settings=settings,
    ).model  # fmt: skip
    probe = synth.frame(200, seed=10)
    probe.loc[::7, "color"] = "purple"  # a category never seen in training
    probe.loc[::5, "x1"] = np.nan
    probe.loc[::11, "color"] = None
    return model, coerce_frame(probe, schema)


@pytest.mark.parametrize(
    ("estimator", "task"),
    [("lgbm", "classification"), ("rf", "classification"), ("extra_tree", "classification"),
     ("lgbm", "regression")],
)  # fmt: skip
def test_fast_transform_matches_flaml(estimator: str, task: str) -> None:
    """The fast path's output equals FLAML's own transform, value for value, and so do the
    predictions, for the FLAML release in the lock."""
    import warnings

    model, X = _fitted(estimator, task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FLAML warns about the unseen category
        expected = model.transformer.transform(X.copy())
    pd.testing.assert_frame_equal(model._fast_transform(X), expected)
    model._fast = False
    slow = model.predict_both(X, coerce=False)
    model._fast = True
    fast = model.predict_both(X, coerce=False)
    if task == "regression":
        np.testing.assert_array_equal(fast[0], slow[0])
        assert fast[1] is None and slow[1] is None
    else:
        assert fast[0].tolist() == slow[0].tolist()
        np.testing.assert_array_equal(fast[1], slow[1])
    # The serving path chooses the fast one by itself for the locked release.
    model._fast = None
    model.predict_both(X, coerce=False)
    assert model._fast is True


def test_unknown_flaml_layout_falls_back_once_and_serves_correctly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A FLAML release that keeps its categories elsewhere: one warning with the reason,
    then FLAML's own transform, with the same predictions."""
    model, X = _fitted("lgbm", "classification")
    model._fast = False
    expected = model.predict_both(X, coerce=False)
    t = model.transformer
    for attr in ("_ordinal_encoder", "_cat_categories"):
        if hasattr(t, attr):
            setattr(t, f"_moved{attr}", getattr(t, attr))
            delattr(t, attr)
    # FLAML's own transform reads the moved state back through this shim.
    cls = type(t)
    original = cls.transform

    def transform(self: Any, frame: Any) -> Any:
        for attr in ("_ordinal_encoder", "_cat_categories"):
            if hasattr(self, f"_moved{attr}"):
                object.__setattr__(self, attr, getattr(self, f"_moved{attr}"))
        try:
            return original(self, frame)
        finally:
            for attr in ("_ordinal_encoder", "_cat_categories"):
                if hasattr(self, f"_moved{attr}"):
                    delattr(self, attr)

    model._fast = None
    with caplog.at_level("WARNING"), pytest.MonkeyPatch.context() as mp:
        mp.setattr(cls, "transform", transform)
        first = model.predict_both(X, coerce=False)
        second = model.predict_both(X, coerce=False)
    assert model._fast is False
    warnings_seen = [r for r in caplog.records if "FLAML's own transform" in r.getMessage()]
    assert len(warnings_seen) == 1
    assert "neither '_ordinal_encoder' nor '_cat_categories'" in warnings_seen[0].getMessage()
    for got in (first, second):
        assert got[0].tolist() == expected[0].tolist()
        np.testing.assert_array_equal(got[1], expected[1])


# -- the loop: the server's logs are the next retrain's data --------------------------


@pytest.mark.slow
def test_retrain_learns_from_the_servers_logs(
    store: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    copy = tmp_path / "store"
    shutil.copytree(store["uri"], copy)
    s = start_server(tmp_path, model_env(store, **{contract.ENV_STORE_URI: str(copy)}))
    drifted = synth.frame(300, concept="b", seed=21, start_id=50_000)
    rows = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in drifted[["id", *synth.FEATURES]].to_dict("records")
    ]
    for i in range(0, len(rows), 25):
        assert httpx.post(s.url + "/predict", json=rows[i : i + 25]).status_code == 200
    assert stop(s) == 0
    drifted[["id", "y"]].to_parquet(tmp_path / "labels.parquet")
    doc = synth.job_config(str(copy), trainingData="recent")
    doc["spec"]["model"]["timestampColumn"] = "timestamp"
    doc["spec"]["data"] = {
        "reference": {"uri": synth.UNUSED_REFERENCE},
        "labels": {"uri": str(tmp_path / "labels.parquet")},
    }
    cfg = synth.write_config(tmp_path / "config.json", doc)
    code, result, err = synth.run_cli(
        "retrain", "--config", cfg, "--version", "2", "--termination-log", str(tmp_path / "t")
    )
    assert code == 0, err
    assert result["rows"] == {"train": 210, "holdout": 90}
    assert result["champion"]["version"] == 1
    assert result["promote"] is True and result["reason"] == "ChallengerBetter", result


def test_logger_merges_batches_with_different_columns_and_types(tmp_path: pathlib.Path) -> None:
    from modelwatch_monitor.serve.prediction_log import to_arrow

    def batch(ids: Any, rid: str) -> LoggedBatch:
        features = {"x": to_arrow(np.arange(2, dtype=float))}
        if ids is not None:
            features["id"] = to_arrow(np.asarray(ids, dtype=object))
        return LoggedBatch(features, to_arrow(np.array(["a", "b"])), None, rid, datetime.now(UTC))

    logger = PredictionLogger(store=str(tmp_path), model="m", version=2, flush_seconds=600)
    for ids, rid in (([1, 2], "ints"), (["k-3", None], "strs"), (None, "none")):
        assert logger.offer(batch(ids, rid))
    logger.close()
    assert logger.write_errors == 0
    logged = read_table(str(tmp_path / "m" / "predictions")).set_index("request_id")
    assert logged.loc["ints", "id"].tolist() == ["1", "2"]
    assert logged.loc["strs", "id"].tolist()[0] == "k-3"
    assert logged.loc["none", "id"].isna().all()
    assert logged["prediction"].tolist() == ["a", "b"] * 3
