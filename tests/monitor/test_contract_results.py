"""``contract.validate_result``: the operator's strict reading of a Job result, table-tested."""

from __future__ import annotations

import ast
import copy
import doctest
import json
import math
import pathlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor import contract
from modelwatch_monitor.check import run as checking
from modelwatch_monitor.cli import main
from modelwatch_monitor.contract import results
from modelwatch_monitor.train import reasons as retrain_reasons

CHECK_OK: dict[str, Any] = {
    "schema": 1,
    "kind": "check",
    "ok": True,
    "reportId": "20261123T120000Z",
    "reportUri": "file:///store/iris/reports/20261123T120000Z",
    "datasetDrift": True,
    "driftShare": 0.5,
    "nDrifted": 2,
    "nFeatures": 4,
    "topFeatures": [
        {"name": "x 1 (€)", "test": "ks", "statistic": 0.4, "pValue": 1e-12},
        {"name": "color", "test": "chi2", "statistic": 3.2, "pValue": None},
    ],
    "qualityFindings": 1,
    "quality": ["column 'x2' has 12% missing values"],
    "metric": {
        "name": "accuracy",
        "value": 0.8,
        "baseline": 0.9,
        "relativeChange": -0.111,
        "degraded": True,
        "undefinedReason": None,
    },
    "rows": {"reference": 500, "current": 300, "labeled": None},
    "message": "2 of 4 features drifted",
}
RETRAIN_OK: dict[str, Any] = {
    "schema": 1,
    "kind": "retrain",
    "ok": True,
    "version": 2,
    "sha256": "0123456789abcdef" * 4,
    "metric": "roc_auc",
    "greaterIsBetter": True,
    "challenger": {"score": 0.91},
    "champion": {"version": 1, "score": 0.7},
    "improvement": 0.21,
    "minImprovement": 0.01,
    "promote": True,
    "reason": "ChallengerBetter",
    "message": "challenger 0.91 beats champion 0.7",
    "reportId": "20261123T120000Z",
    "bestEstimator": "lgbm",
    "rows": {"train": 900, "holdout": 300},
    "uri": "file:///store/iris/versions/2",
    "seconds": 12.5,
}
CHECK_FAILED = {"schema": 1, "kind": "check", "ok": False, "reason": "DataError", "message": "x"}
RETRAIN_FAILED = {
    "schema": 1,
    "kind": "retrain",
    "ok": False,
    "version": 3,
    "reason": "NotEnoughLabels",
    "message": "12 labelled rows; need 50",
    "reportId": "",
    "seconds": 0.4,
}
_DROP = object()


def _with(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``doc`` with ``value`` at dotted ``path`` (``_DROP`` removes it)."""
    doc = copy.deepcopy(doc)
    *parents, leaf = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _DROP:
        del node[leaf]
    elif isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value
    return doc


VALID = [
    ("check ok", CHECK_OK),
    # A metric without a baseline: no verdict (degraded null), and the reason says why.
    (
        "check ok, metric without a baseline",
        CHECK_OK
        | {
            "metric": {
                "name": "roc_auc", "value": 0.81, "baseline": None, "baselineSource": None,
                "relativeChange": None, "degraded": None, "undefinedReason": "NoBaseline",
            }
        },
    ),
    (
        "check ok, baseline from the serving version's holdout",
        CHECK_OK
        | {
            "metric": {
                "name": "accuracy", "value": 0.7, "baseline": 0.9, "baselineSource": "holdout",
                "relativeChange": -0.22, "degraded": True,
            }
        },
    ),
    ("check ok, minimal", {k: CHECK_OK[k] for k in ("schema", "kind", "ok", "reportId")}
     | {"datasetDrift": False, "driftShare": 0, "nDrifted": 0, "nFeatures": 0}),
    ("check ok, no metric", _with(CHECK_OK, "metric", None)),
    ("check ok, undefined metric", _with(CHECK_OK, "metric.value", None)),
    ("check ok, a field a newer image adds", _with(CHECK_OK, "servingVersion", 3)),
    ("check failed", CHECK_FAILED),
    ("check no data", _with(CHECK_FAILED, "reason", "NoData")),
    ("retrain ok", RETRAIN_OK),
    ("retrain ok, first version", _with(_with(RETRAIN_OK, "champion", None), "reason",
                                        "FirstVersion")),
    ("retrain kept", _with(_with(RETRAIN_OK, "promote", False), "reason", "BelowMinImprovement")),
    ("retrain failed", RETRAIN_FAILED),
    ("retrain failed, no reportId", _with(RETRAIN_FAILED, "reportId", None)),
    ("message at the bound", _with(CHECK_FAILED, "message", "m" * contract.MAX_MESSAGE_CHARS)),
]  # fmt: skip


@pytest.mark.parametrize("doc", [row[1] for row in VALID], ids=[row[0] for row in VALID])
def test_valid_results(doc: dict[str, Any]) -> None:
    assert contract.validate_result(doc) == []


INVALID = [
    # Numbers: finite only (json.loads reads NaN and Infinity), in range, integers exact.
    (CHECK_OK, "driftShare", math.nan, "driftShare: must be a finite number, got nan"),
    (CHECK_OK, "driftShare", math.inf, "driftShare: must be a finite number, got inf"),
    (CHECK_OK, "metric.value", -math.inf, "metric.value: must be a finite number"),
    (CHECK_OK, "topFeatures.0.statistic", math.nan, "topFeatures[0].statistic: must be a finite"),
    (RETRAIN_OK, "challenger.score", math.nan, "challenger.score: must be a finite number"),
    (CHECK_OK, "driftShare", 1.5, "driftShare: must be <= 1.0, got 1.5"),
    (CHECK_OK, "topFeatures.0.pValue", -0.1, "topFeatures[0].pValue: must be >= 0.0"),
    (CHECK_OK, "driftShare", "0.5", "driftShare: must be a number, got '0.5'"),
    (CHECK_OK, "nDrifted", 2.5, "nDrifted: must be an integer, got 2.5"),
    (CHECK_OK, "nDrifted", True, "nDrifted: must be an integer, got True"),
    (CHECK_OK, "nFeatures", -1, "nFeatures: must be >= 0, got -1"),
    (CHECK_OK, "rows.current", 2**70, "rows.current: does not fit in 64 bits"),
    (CHECK_OK, "rows.current", 1.5, "rows.current: must be an integer"),
    (RETRAIN_OK, "version", 0, "version: must be >= 1, got 0"),
    (RETRAIN_OK, "champion.version", "1", "champion.version: must be an integer"),
    # Booleans and required fields.
    (CHECK_OK, "datasetDrift", "yes", "datasetDrift: must be true or false, got 'yes'"),
    (CHECK_OK, "ok", "true", "ok: must be true or false, got 'true'"),
    (CHECK_OK, "nFeatures", _DROP, "nFeatures: is required"),
    (RETRAIN_OK, "sha256", _DROP, "sha256: is required"),
    (RETRAIN_OK, "promote", 1, "promote: must be true or false, got 1"),
    # Identifiers: the sha256, a report id that becomes a CLI argument, metric names.
    (RETRAIN_OK, "sha256", "ABCDEF0123456789" * 4, "sha256: must match ^[0-9a-f]{64}$"),
    (RETRAIN_OK, "sha256", "0" * 63, "sha256: must match"),
    (RETRAIN_OK, "sha256", "0" * 64 + "\n", "sha256: must match"),
    (RETRAIN_OK, "sha256", "../../etc/passwd", "sha256: must match"),
    (CHECK_OK, "reportId", "--store=s3://elsewhere", "reportId: must match"),
    (CHECK_OK, "reportId", "../../x", "reportId: must match"),
    (CHECK_OK, "reportId", "", "reportId: must match"),
    (RETRAIN_OK, "reportId", "a b", "reportId: must match"),
    (CHECK_OK, "metric.name", "accuracy; rm -rf", "metric.name: must match"),
    (RETRAIN_OK, "metric", None, "metric: is required"),  # null is absent
    # Reasons: only known ones reach a condition.
    (RETRAIN_OK, "reason", "challenger wins", "reason: must be one of BelowMinImprovement, "),
    (CHECK_FAILED, "reason", "Hacked", "reason: must be one of CheckFailed, ConfigError, "),
    (CHECK_FAILED, "reason", "FirstVersion", "reason: must be one of"),
    (RETRAIN_FAILED, "reason", "NoData", "reason: must be one of"),
    (RETRAIN_FAILED, "reason", _DROP, "reason: is required"),
    # Bounded strings and lists: rejected, not truncated.
    (CHECK_FAILED, "message", "m" * (contract.MAX_MESSAGE_CHARS + 1),
     "message: must be at most 4096 characters, got 4097"),
    (CHECK_OK, "reportUri", "u" * 2000, "reportUri: must be at most 1024 characters, got 2000"),
    (CHECK_OK, "topFeatures.0.name", "n" * 1025, "topFeatures[0].name: must be at most 1024"),
    (CHECK_OK, "quality", ["q"] * 6, "quality: must hold at most 5 items, got 6"),
    (CHECK_OK, "extra", list(range(100)), "extra: must hold at most 64 entries, got 100"),
    (CHECK_OK, "extra", {"a": {"b": {"c": {"d": 1}}}}, "extra: nests deeper than 4"),
    (CHECK_OK, "extra", math.nan, "extra: must be a finite number, got nan"),
    (CHECK_OK, "metric", "accuracy", "metric: must be an object, got 'accuracy'"),
    (CHECK_OK, "topFeatures", {"name": "x"}, "topFeatures: must be a list"),
    # The envelope.
    (CHECK_OK, "schema", 2, "schema: must be 1, got 2"),
    (CHECK_OK, "kind", "deploy", "kind: must be one of check, retrain, got 'deploy'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "path", "value", "problem"),
    INVALID,
    ids=[f"{row[0]['kind']}-{row[0]['ok']}:{row[1]}={row[2]!r}"[:60] for row in INVALID],
)
def test_invalid_results(doc: dict[str, Any], path: str, value: Any, problem: str) -> None:
    problems = contract.validate_result(_with(doc, path, value))
    assert any(p.startswith(problem) for p in problems), problems


def test_every_problem_is_reported_once_with_its_field() -> None:
    doc = _with(_with(RETRAIN_OK, "sha256", "x"), "challenger.score", math.nan)
    assert contract.validate_result(doc) == [
        "challenger.score: must be a finite number, got nan",
        "sha256: must match ^[0-9a-f]{64}$, got 'x'",
    ]


def test_long_values_are_shown_short() -> None:
    (problem,) = contract.validate_result(_with(RETRAIN_OK, "sha256", "z" * 500))
    assert len(problem) < 120


def test_a_result_with_nan_parses_to_null_and_is_then_rejected() -> None:
    """json.loads accepts NaN: parse_result reads it as null, and the validator refuses a
    required number that is null, so no NaN reaches status."""
    text = json.dumps(_with(CHECK_OK, "driftShare", math.nan))
    assert "NaN" in text
    assert contract.validate_result(contract.parse_result(text)) == ["driftShare: is required"]


def test_every_failure_reason_of_the_retrain_is_one_the_operator_accepts() -> None:
    failed = {"schema": 1, "kind": "retrain", "ok": False, "version": 2, "message": "m"}
    for reason in sorted(retrain_reasons.FAILURE_REASONS):
        assert contract.validate_result({**failed, "reason": reason}) == [], reason
    assert retrain_reasons.FAILURE_REASONS == contract.RETRAIN_FAILURE_REASONS


def test_every_promotion_reason_is_one_the_operator_accepts() -> None:
    assert retrain_reasons.SCORE_UNDEFINED in contract.PROMOTION_REASONS


def test_the_check_reasons_are_known_reasons() -> None:
    """Every reason the check CLI passes to ``outcome.failure`` is a known reason; an
    empty window (NoData) is not a failure any more."""
    tree = ast.parse(pathlib.Path(checking.__file__).read_text())
    reasons = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "failure"
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Constant):
                reasons.add(arg.value)
            elif isinstance(arg, ast.Attribute) and arg.attr == "reason":
                continue  # a shard's reason: sharding.ShardError keeps to the known ones
            else:
                pytest.fail(f"a check failure reason the test cannot read: {ast.dump(arg)}")
    assert reasons == {"CheckFailed", "ConfigError", "DataError"}
    assert reasons <= contract.CHECK_FAILURE_REASONS


def _parquet(path: pathlib.Path, n: int, *, seed: int, shift: float = 0.0) -> str:
    rng = np.random.default_rng(seed)
    cols = {
        "x0": rng.normal(shift, 1.0, n),
        "x1": rng.normal(size=n),
        "color": rng.choice(["red", "green"], n),
    }
    pq.write_table(pa.table(cols), path)
    return str(path)


def _check(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    main(["check", *argv])
    return contract.parse_result(capsys.readouterr().out.strip().splitlines()[-1])


def test_real_check_results_are_valid(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = _parquet(tmp_path / "ref.parquet", 400, seed=1)
    cur = _parquet(tmp_path / "cur.parquet", 300, seed=2, shift=1.0)
    out = ["--output", str(tmp_path / "reports" / "r1"), "--result-path", str(tmp_path / "r")]
    ok = _check(["--reference", ref, "--current", cur, *out], capsys)
    assert ok["ok"] is True and ok["nDrifted"] >= 1
    assert contract.validate_result(ok) == []
    missing = str(tmp_path / "missing.parquet")
    failed = _check(["--reference", ref, "--current", missing, *out], capsys)
    assert failed["ok"] is False
    assert contract.validate_result(failed) == []


def test_docstring_examples() -> None:
    result = doctest.testmod(results)
    assert result.failed == 0 and result.attempted > 0
