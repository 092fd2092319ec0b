"""Bad inputs, one table: specs, data, requests, job results and artifacts.

Each row names the input, the exact message a user sees (where a path or a hash
varies, ``{store}``, ``{tmp}`` and ``{sha}`` stand for it) and checks that nothing was
lost or half-written: the store holds the same files with the same bytes afterwards
(``allowed`` lists the files a row may add, such as the reusable reference profile),
and inputs handed in are unchanged.

The README's troubleshooting table is this table (``test_readme_lists_every_row``).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pathlib
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor import contract
from modelwatch_monitor.cli import main
from modelwatch_monitor.serve.server import ServerConfig
from modelwatch_monitor.store.feature_schema import Feature, SchemaError, frames_from_records
from modelwatch_monitor.store.registry import Registry, RegistryError

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
README_SHOWS = {"store": "/store", "tmp": "/data", "sha": "<sha256>"}


@dataclasses.dataclass
class Ctx:
    tmp: pathlib.Path
    store: pathlib.Path
    capsys: pytest.CaptureFixture[str]
    sha: str = ""
    before: dict[str, str] = dataclasses.field(default_factory=dict)

    def mark(self) -> None:
        """The store as set up, before the bad input: what must be there afterwards."""
        self.before = _snapshot(self.store)

    def spec(self, **over: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "model": {"name": "churn", "target": "y", "idColumn": "id"},
            "data": {"reference": {"uri": f"{self.tmp}/ref.parquet"}},
            "store": {"uri": str(self.store)},
        }
        for key, value in over.items():
            section, _, field = key.partition("__")
            if field:
                spec.setdefault(section, {})[field] = value
            else:
                spec[section] = value
        return spec

    def cli(self, *argv: str, ok: bool = False) -> str:
        """Run the CLI; its result's reason and message. ``ok`` for an outcome that is
        not a failure (a check that found no traffic: exit 0, ``ok: true``)."""
        code = main(list(argv))
        result = json.loads(self.capsys.readouterr().out.strip().splitlines()[-1])
        assert result["ok"] is ok and code == (0 if ok else 1), result
        return f"{result['reason']}: {result['message']}"

    def check(
        self, spec: dict[str, Any], *, schema: int = contract.SCHEMA_VERSION, ok: bool = False
    ) -> str:
        doc = {**contract.build_job_config(name="churn", namespace="ml", spec=spec)}
        doc["schema"] = schema
        config = self.tmp / "config.json"
        config.write_text(json.dumps(doc))
        result = str(self.tmp / "r")
        return self.cli("check", "--config", str(config), "--result-path", result, ok=ok)

    def retrain(self, spec: dict[str, Any]) -> str:
        config = self.tmp / "config.json"
        config.write_text(
            json.dumps(contract.build_job_config(name="churn", namespace="ml", spec=spec))
        )
        return self.cli(
            "retrain", "--config", str(config), "--version", "2",
            "--termination-log", str(self.tmp / "t"),
        )  # fmt: skip

    def version_one(self) -> None:
        self.sha = Registry(str(self.store), "churn").publish(1, {"a": "model"}, {})["sha256"]
        self.mark()


def _request(records: list[dict[str, Any]]) -> Callable[[Ctx], str]:
    schema = [Feature("x1", "numeric"), Feature("color", "categorical", categories=("red",))]

    def run(ctx: Ctx) -> str:
        before = copy.deepcopy(records)
        with pytest.raises(SchemaError) as info:
            frames_from_records(records, schema)
        assert records == before or json.dumps(records) == json.dumps(before)
        return f"422 {info.value.column}: {info.value}"

    return run


def _result(text: str) -> Callable[[Ctx], str]:
    def run(ctx: Ctx) -> str:
        with pytest.raises(contract.ContractError) as info:
            contract.parse_result(text)
        return str(info.value)

    return run


def _server(**env: str) -> Callable[[Ctx], str]:
    def run(ctx: Ctx) -> str:
        ctx.version_one()
        base = {
            contract.ENV_MODEL_NAME: "churn",
            contract.ENV_STORE_URI: str(ctx.store),
            contract.ENV_MODEL_VERSION: "1",
            contract.ENV_MODEL_SHA256: ctx.sha,
        }
        return f"ConfigError: {ServerConfig.from_env({**base, **env}).config_problem}"

    return run


def _load(expected: str | None, *, tamper: bool = False) -> Callable[[Ctx], str]:
    def run(ctx: Ctx) -> str:
        ctx.version_one()
        if tamper:
            artifact = ctx.store / "churn" / "versions" / "1" / contract.MODEL_FILE
            artifact.chmod(0o644)
            artifact.write_bytes(b"not the pickle that was published")
            ctx.mark()
        with pytest.raises(RegistryError) as info:
            Registry(str(ctx.store), "churn").load(1, expected_sha256=expected)
        return f"{type(info.value).__name__}: {info.value}"

    return run


def _champion_mismatch(ctx: Ctx) -> str:
    ctx.version_one()
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    pq.write_table(pa.table({"x": x, "y": (x > 0).astype(np.int64)}), ctx.tmp / "train.parquet")
    return ctx.cli(
        "retrain", "--train", str(ctx.tmp / "train.parquet"), "--target", "y",
        "--task", "classification", "--time-budget", "1", "--store", str(ctx.store),
        "--model", "churn", "--version", "2", "--champion-version", "1",
        "--champion-sha256", "0" * 64, "--termination-log", str(ctx.tmp / "t"),
    )  # fmt: skip


def _encode_nan(ctx: Ctx) -> str:
    result = {"kind": "check", "ok": True, "driftShare": float("nan"), "nDrifted": 2}
    text = contract.encode_result(result)
    assert json.loads(text)["nDrifted"] == 2  # nothing else is lost
    return text


def _labels(ctx: Ctx, columns: dict[str, Any]) -> str:
    pq.write_table(pa.table(columns), ctx.tmp / "labels.parquet")
    return f"{ctx.tmp}/labels.parquet"


NO_STORE_CHANGE: tuple[str, ...] = ()
PROFILE = ("churn/profiles/reference.json",)

#: (id, what the input is, run, the message, files the row may add to the store)
ROWS: list[tuple[str, str, Callable[[Ctx], str], str, tuple[str, ...]]] = [
    # -- specs ------------------------------------------------------------------------
    (
        "correction",
        "`spec.drift.correction: fdr`",
        lambda c: c.check(c.spec(drift__correction="fdr")),
        "ConfigError: spec.drift.correction: must be one of holm, bonferroni, fdr_bh, none, "
        "got 'fdr'",
        NO_STORE_CHANGE,
    ),
    (
        "window",
        "`spec.data.current.window: 2w`",
        lambda c: c.check(c.spec(data={"reference": {"uri": "r"}, "current": {"window": "2w"}})),
        "ConfigError: spec.data.current.window: must be a number followed by s, m, h or d "
        "(e.g. '7d'), got '2w'",
        NO_STORE_CHANGE,
    ),
    (
        "labels-without-id",
        "`spec.data.labels` without `spec.model.idColumn`",
        lambda c: c.check(
            {
                **c.spec(data={"reference": {"uri": "r"}, "labels": {"uri": "l"}}),
                "model": {"name": "churn", "target": "y"},
            }
        ),
        "ConfigError: spec.model.idColumn is required when spec.data.labels is set: it names "
        "the column that joins each prediction with its label",
        NO_STORE_CHANGE,
    ),
    (
        "min-effect-string",
        '`spec.drift.minEffectSize: "0.1"` (a string)',
        lambda c: c.check(c.spec(drift__minEffectSize="0.1")),
        "ConfigError: spec.drift.minEffectSize: must be a number, got '0.1'",
        NO_STORE_CHANGE,
    ),
    (
        "p-value-nan",
        "`spec.drift.pValueThreshold: NaN` in the job config",
        lambda c: c.check(c.spec(drift__pValueThreshold=float("nan"))),
        "ConfigError: spec.drift.pValueThreshold: must be a finite number, got nan",
        NO_STORE_CHANGE,
    ),
    (
        "metric-task",
        "`spec.performance.metric: rmse` for a classifier",
        lambda c: c.check(c.spec(performance__metric="rmse")),
        "ConfigError: spec.performance.metric 'rmse' does not suit spec.model.task "
        "'classification'",
        NO_STORE_CHANGE,
    ),
    (
        "numeric-test",
        "`spec.drift.numericTest: chi2`",
        lambda c: c.check(c.spec(drift__numericTest="chi2")),
        "ConfigError: spec.drift.numericTest: must be one of ks, psi, wasserstein, "
        "jensenshannon, got 'chi2'",
        NO_STORE_CHANGE,
    ),
    (
        "model-name",
        "`spec.model.name: Churn`",
        lambda c: c.check({**c.spec(), "model": {"name": "Churn", "target": "y"}}),
        "ConfigError: spec.model.name: must be a DNS-1123 label (lowercase letters, digits "
        "and '-'), got 'Churn'",
        NO_STORE_CHANGE,
    ),
    (
        "config-schema",
        "a job config of another schema (an operator newer than the image)",
        lambda c: c.check(c.spec(), schema=2),
        "ConfigError: job config schema 2 is not supported; this image reads schema 1",
        NO_STORE_CHANGE,
    ),
    (
        "training-data",
        "`spec.retrain.trainingData: latest`",
        lambda c: c.retrain(c.spec(retrain__trainingData="latest")),
        "ConfigError: spec.retrain.trainingData: must be one of reference, recent, both, "
        "got 'latest'",
        NO_STORE_CHANGE,
    ),
    (
        "rollout-strategy",
        "`spec.rollout.strategy: blue-green`",
        lambda c: c.check(c.spec(rollout__strategy="blue-green")),
        "ConfigError: spec.rollout.strategy: must be one of replace, shadow, canary, "
        "got 'blue-green'",
        NO_STORE_CHANGE,
    ),
    (
        "canary-weight",
        "`spec.rollout.weight: 80` (a canary takes at most half the traffic)",
        lambda c: c.check(c.spec(rollout={"strategy": "canary", "weight": 80})),
        "ConfigError: spec.rollout.weight: must be <= 50, got 80",
        NO_STORE_CHANGE,
    ),
    (
        "shadow-without-deployment",
        "`spec.rollout.strategy: shadow` without `spec.deployment`",
        lambda c: c.check(c.spec(rollout__strategy="shadow")),
        "ConfigError: spec.deployment is required when spec.rollout.strategy is shadow or "
        "canary: the challenger runs in a Deployment built from the serving Deployment's pod "
        "template",
        NO_STORE_CHANGE,
    ),
    # -- data -------------------------------------------------------------------------
    (
        "labels-target",
        "labels without the target column",
        lambda c: c.check(
            c.spec(
                data={
                    "reference": {"uri": f"{c.tmp}/ref.parquet"},
                    "labels": {"uri": _labels(c, {"id": [1], "label": [0]})},
                }
            )
        ),
        "DataError: the target column 'y' (spec.model.target) is not in the labels "
        "'{tmp}/labels.parquet'; their columns: 'id', 'label'",
        NO_STORE_CHANGE,
    ),
    (
        "no-traffic",
        "no prediction logged yet",
        lambda c: c.check(c.spec(), ok=True),
        "NoData: no predictions logged yet under '{store}/churn/predictions': the model "
        "server has had no traffic, or is not logging to the store",
        PROFILE,
    ),
    (
        "reference-missing",
        "`spec.data.reference.uri` names no file",
        lambda c: c.check(c.spec(data={"reference": {"uri": f"{c.tmp}/nope.parquet"}})),
        "DataError: file not found: '{tmp}/nope.parquet' matches no Parquet or CSV file",
        NO_STORE_CHANGE,
    ),
    # -- requests to /predict -----------------------------------------------------------
    (
        "request-nan",
        '`{"x1": NaN}` in a request',
        _request([{"x1": float("nan"), "color": "red"}]),
        "422 x1: column 'x1' must be a finite number; got nan in record 0 (NaN, Infinity and "
        "numbers beyond 1.8e308 are refused; send null for a missing value)",
        NO_STORE_CHANGE,
    ),
    (
        "request-1e999",
        '`{"x1": 1e999}` in a request',
        _request(json.loads('[{"x1": 1, "color": "red"}, {"x1": 1e999, "color": "red"}]')),
        "422 x1: column 'x1' must be a finite number; got inf in record 1 (NaN, Infinity and "
        "numbers beyond 1.8e308 are refused; send null for a missing value)",
        NO_STORE_CHANGE,
    ),
    (
        "request-infinity",
        '`{"x1": -Infinity}` in a request',
        _request(json.loads('[{"x1": -Infinity, "color": "red"}]')),
        "422 x1: column 'x1' must be a finite number; got -inf in record 0 (NaN, Infinity and "
        "numbers beyond 1.8e308 are refused; send null for a missing value)",
        NO_STORE_CHANGE,
    ),
    (
        "request-missing",
        "a record without a feature",
        _request([{"x1": 1.0, "color": "red"}, {"color": "red"}]),
        "422 x1: missing column 'x1' in record 1",
        NO_STORE_CHANGE,
    ),
    (
        "request-string",
        '`{"x1": "1.5"}` in a request',
        _request([{"x1": "1.5", "color": "red"}]),
        "422 x1: column 'x1' must be a number; got str in record 0",
        NO_STORE_CHANGE,
    ),
    (
        "request-category",
        '`{"color": 2.5}` in a request',
        _request([{"x1": 1.0, "color": 2.5}]),
        "422 color: column 'color' must be a string (categorical); got float in record 0",
        NO_STORE_CHANGE,
    ),
    # -- job results, as the operator reads them ------------------------------------------
    (
        "result-empty",
        "a job that left no termination message",
        _result(""),
        "the job left no termination message",
        NO_STORE_CHANGE,
    ),
    (
        "result-log-tail",
        "a job killed before it wrote its result (the log tail)",
        _result("Traceback (most recent call last):\n  ...\nMemoryError\n"),
        "the job did not write a result: Traceback (most recent call last):\n  ...\nMemoryError",
        NO_STORE_CHANGE,
    ),
    (
        "result-kind",
        "a termination message that is JSON but no modelwatch result",
        _result('{"kind": "train", "ok": true}'),
        "the termination message is not a modelwatch result",
        NO_STORE_CHANGE,
    ),
    (
        "result-schema",
        "a result of another schema",
        _result('{"schema": 2, "kind": "check", "ok": true}'),
        "result schema 2 is not supported",
        NO_STORE_CHANGE,
    ),
    (
        "result-nan",
        "a statistic that is NaN in a result",
        _encode_nan,
        '{{"driftShare":null,"kind":"check","nDrifted":2,"notFinite":["driftShare=nan"],'
        '"ok":true,"schema":1}}',
        NO_STORE_CHANGE,
    ),
    # -- artifacts ----------------------------------------------------------------------
    (
        "sha-mismatch",
        "`MODEL_SHA256` that differs from the artifact",
        _load("0" * 64),
        "IntegrityError: sha256 mismatch for {store}/churn/versions/1/model.joblib: expected "
        + "0" * 64
        + ", artifact {sha}; refusing to load it",
        NO_STORE_CHANGE,
    ),
    (
        "tampered",
        "an artifact changed after it was published",
        _load(None, tamper=True),
        "IntegrityError: sha256 mismatch for {store}/churn/versions/1/model.joblib: metadata "
        "{sha}, artifact "
        + hashlib.sha256(b"not the pickle that was published").hexdigest()
        + "; refusing to load it",
        NO_STORE_CHANGE,
    ),
    (
        "sha-empty",
        "an empty `MODEL_SHA256` on the model server",
        _server(**{contract.ENV_MODEL_SHA256: ""}),
        "ConfigError: MODEL_SHA256 is not set: refusing to load an artifact whose hash nobody "
        "vouches for; set it to the version's sha256 (status.versions of the ModelMonitor, or "
        "the sha256 the training Job printed), or set MODELWATCH_ALLOW_UNVERIFIED_FIRST_DEPLOY"
        "=true for a first deploy",
        NO_STORE_CHANGE,
    ),
    (
        "version-latest",
        "`MODEL_VERSION: latest`",
        _server(**{contract.ENV_MODEL_VERSION: "latest"}),
        "ConfigError: MODEL_VERSION must be a version >= 1, got 'latest'",
        NO_STORE_CHANGE,
    ),
    (
        "champion-sha",
        "a champion whose artifact differs from the sha256 in status",
        _champion_mismatch,
        "ChampionHashMismatch: champion v1: sha256 mismatch for "
        "{store}/churn/versions/1/model.joblib: expected " + "0" * 64 + ", artifact {sha}; "
        "refusing to load it (the operator recorded sha256 " + "0" * 64 + " for it in "
        "status.versions)",
        NO_STORE_CHANGE,
    ),
]


def _snapshot(root: pathlib.Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("what", "run", "expected", "allowed"),
    [r[1:] for r in ROWS],
    ids=[r[0] for r in ROWS],
)
def test_bad_input(
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    what: str,
    run: Callable[[Ctx], str],
    expected: str,
    allowed: tuple[str, ...],
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    rng = np.random.default_rng(1)
    pq.write_table(
        pa.table({"x1": rng.normal(size=300), "color": rng.choice(["red", "blue"], 300),
                  "y": rng.integers(0, 2, 300)}),
        tmp_path / "ref.parquet",
    )  # fmt: skip
    ctx = Ctx(tmp_path, store, capsys)
    ctx.mark()
    message = run(ctx)
    assert message == expected.format(store=store, tmp=tmp_path, sha=ctx.sha)
    after = _snapshot(store)
    assert {k: after.get(k) for k in ctx.before} == ctx.before, "a file was lost or changed"
    added = set(after) - set(ctx.before) - set(allowed)
    assert not added, f"{what}: left {sorted(added)}"
    assert not [p for p in store.rglob("*") if p.name.endswith((".tmp", ".partial"))]
    assert not (store / "churn" / "reports").exists(), "a failed check left a report"
    assert not (store / "churn" / "versions" / "2").exists(), "a failed retrain left v2"


def _readme_line(what: str, expected: str) -> str:
    shown = expected.format(**README_SHOWS).replace("\n", " ").replace("|", "\\|")
    return f"| {what} | `{shown}` |"


def test_readme_lists_every_row() -> None:
    text = README.read_text()
    block = re.search(r"<!-- bad-inputs:begin -->\n(.*?)<!-- bad-inputs:end -->", text, re.S)
    assert block, "README.md has no bad-inputs block"
    lines = [_readme_line(what, expected) for _, what, _, expected, _ in ROWS]
    assert block.group(1).strip().splitlines()[2:] == lines, (
        "the README's bad-inputs table is out of date; expected rows:\n" + "\n".join(lines)
    )


def test_the_table_has_at_least_twenty_rows_of_every_kind() -> None:
    assert len(ROWS) >= 20
    assert len({r[0] for r in ROWS}) == len(ROWS)
