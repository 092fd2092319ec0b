"""The contract's pure parts: promotion, results without NaN, the typed spec."""

from __future__ import annotations

import datetime as dt
import doctest
import importlib
import json
import math
import pkgutil
from typing import Any

import pytest

from modelwatch_monitor import contract
from modelwatch_monitor.contract import decide_promotion

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("metric", "challenger", "champion_version", "champion", "min_gain", "promote", "reason"),
    [
        # greater is better
        ("accuracy", 0.90, 1, 0.80, 0.01, True, "ChallengerBetter"),
        ("accuracy", 0.805, 1, 0.80, 0.01, False, "BelowMinImprovement"),
        ("accuracy", 0.81, 1, 0.80, 0.01, True, "ChallengerBetter"),  # exactly the minimum
        ("roc_auc_ovr", 0.70, 1, 0.80, 0.0, False, "BelowMinImprovement"),
        ("r2", 0.50, 1, 0.60, -0.2, True, "ChallengerBetter"),  # a negative minimum allows a loss
        # lower is better: a smaller loss wins
        ("log_loss", 0.20, 1, 0.30, 0.05, True, "ChallengerBetter"),
        ("rmse", 0.40, 1, 0.30, 0.01, False, "BelowMinImprovement"),
        ("mape", 0.10, 1, 0.25, 0.01, True, "ChallengerBetter"),
        ("mse", 0.50, 1, 0.45, 0.01, False, "BelowMinImprovement"),
        # no champion, or one that cannot be scored
        ("accuracy", 0.60, None, None, 0.5, True, "FirstVersion"),
        ("accuracy", 0.60, 1, None, 0.5, True, "ChampionUnusable"),
        ("rmse", 0.60, 1, NAN, 0.5, True, "ChampionUnusable"),
        # a challenger without a finite score never wins
        ("accuracy", NAN, 1, 0.80, 0.01, False, "ChallengerScoreUndefined"),
        ("rmse", INF, None, None, 0.01, False, "ChallengerScoreUndefined"),
        ("accuracy", None, 1, 0.8, 0.01, False, "ChallengerScoreUndefined"),
    ],
)
def test_decide_promotion(
    metric: str,
    challenger: float | None,
    champion_version: int | None,
    champion: float | None,
    min_gain: float,
    promote: bool,
    reason: str,
) -> None:
    decision = decide_promotion(
        version=2,
        metric=metric,
        challenger_score=challenger,
        champion_version=champion_version,
        champion_score=champion,
        min_improvement=min_gain,
    )
    assert (decision.promote, decision.reason) == (promote, reason), decision.message
    assert decision.message
    if reason in ("ChallengerBetter", "BelowMinImprovement"):
        assert decision.improvement is not None
        assert (decision.improvement >= min_gain) is promote


def test_decide_promotion_message() -> None:
    decision = decide_promotion(
        version=3,
        metric="rmse",
        challenger_score=0.2,
        champion_version=2,
        champion_score=0.3,
        min_improvement=0.05,
    )
    assert decision.message == (
        "challenger v3 rmse 0.2000 vs champion v2 0.3000: improvement +0.1000 clears "
        "minImprovement 0.05"
    )
    assert decision.improvement == pytest.approx(0.1)


def test_an_unknown_metric_has_no_direction() -> None:
    with pytest.raises(contract.ContractError, match="The metric must be one of"):
        contract.greater_is_better("speed")


UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-29T12:00:00Z", dt.datetime(2026, 11, 29, 12, tzinfo=UTC)),
        ("2026-11-29T12:00:00.250Z", dt.datetime(2026, 11, 29, 12, 0, 0, 250_000, tzinfo=UTC)),
        ("2026-11-29T12:00:00+00:00", dt.datetime(2026, 11, 29, 12, tzinfo=UTC)),
        (
            "2026-11-29T13:30:00+01:30",
            dt.datetime(2026, 11, 29, 13, 30, tzinfo=dt.timezone(dt.timedelta(hours=1.5))),
        ),
        (
            "2026-11-29T07:00:00-05:00",
            dt.datetime(2026, 11, 29, 7, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        ),
        ("  2026-11-29T12:00:00Z\n", dt.datetime(2026, 11, 29, 12, tzinfo=UTC)),
        # Without an offset the time is UTC, as the command lines always read it.
        ("2026-11-29T12:00:00", dt.datetime(2026, 11, 29, 12, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_reads_rfc3339(text: str, expected: dt.datetime) -> None:
    value = contract.parse_timestamp(text, "--since")
    assert value == expected
    assert value.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text", ["yesterday", "", "   ", "2026-13-01T00:00:00Z", "2026-11-29T25:00:00Z", "12:00", None]
)
def test_parse_timestamp_names_the_option_when_the_time_is_bad(text: Any) -> None:
    with pytest.raises(contract.ContractError) as info:
        contract.parse_timestamp(text, "--serving-since")
    assert str(info.value) == (
        "The '--serving-since' parameter must be an RFC 3339 time such as "
        f"2026-11-29T12:00:00Z. Got {text!r} instead."
    )


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (1, None),
        (500, None),
        (0, "--min-rows: must be >= 1, got 0"),
        (-3, "--min-rows: must be >= 1, got -3"),
        (True, "--min-rows: must be an integer, got True"),
        (2.5, "--min-rows: must be an integer, got 2.5"),
    ],
)
def test_parse_field_checks_an_option_as_the_spec_checks_its_field(
    value: Any, error: str | None
) -> None:
    """``--min-rows`` takes what ``spec.data.current.minRows`` takes, no more."""
    if error is None:
        assert contract.parse_field(contract.CurrentSpec, "min_rows", value, "--min-rows") == value
        doc = {"minRows": value}
        assert contract.parse_section(contract.CurrentSpec, doc, "current").min_rows == value
        return
    with pytest.raises(contract.ContractError) as info:
        contract.parse_field(contract.CurrentSpec, "min_rows", value, "--min-rows")
    assert str(info.value) == error
    with pytest.raises(contract.ContractError, match=r"current\.minRows: must be"):
        contract.parse_section(contract.CurrentSpec, {"minRows": value}, "current")


@pytest.mark.parametrize(
    ("result", "nulls"),
    [
        ({"driftShare": NAN}, ["driftShare=nan"]),
        (
            {"topFeatures": [{"name": "x", "statistic": INF, "pValue": 0.1}]},
            ["topFeatures[0].statistic=inf"],
        ),
        ({"metric": {"name": "rmse", "value": -INF}}, ["metric.value=-inf"]),
        ({"challenger": {"score": NAN}, "champion": {"score": 0.5}}, ["challenger.score=nan"]),
        ({"driftShare": 0.5}, []),
    ],
)
def test_results_never_carry_non_finite_numbers(result: dict[str, Any], nulls: list[str]) -> None:
    text = contract.encode_result({"kind": "check", "ok": True, **result})
    doc = json.loads(text)  # strict JSON: json.loads would accept NaN, the API server not
    assert "NaN" not in text and "Infinity" not in text
    assert doc.get("notFinite", []) == nulls
    if "metric" in result:
        assert doc["metric"] == {
            "name": "rmse",
            "value": None,
            "undefinedReason": "the value is not finite",
        }
    # Everything else is kept.
    assert {k for k in doc if k != "notFinite"} == {"schema", "kind", "ok", *result}


def test_numpy_values_are_sanitized_too() -> None:
    np = pytest.importorskip("numpy")
    text = contract.encode_result({"kind": "check", "driftShare": np.float64("nan")})
    assert json.loads(text)["driftShare"] is None


def test_parse_result_reads_non_finite_as_null() -> None:
    doc = contract.parse_result('{"schema":1,"kind":"check","a":NaN,"b":-Infinity,"c":1e999}')
    assert (doc["a"], doc["b"], doc["c"]) == (None, None, None)


def test_parse_spec_applies_every_default_once() -> None:
    spec = contract.parse_spec(
        {"model": {"name": "m", "target": "y"}, "data": {"reference": {"uri": "r"}},
         "store": {"uri": "/s"}}
    )  # fmt: skip
    assert spec.drift == contract.DriftSpec()
    assert spec.drift.correction == "holm" and spec.drift.min_effect_size == 0.02
    assert spec.data.current.window == "7d" and spec.data.current.retention is None
    assert spec.data.current.retention_seconds == 28 * 86400
    assert spec.retrain.automl.estimators == ("lgbm", "rf", "extra_tree")
    assert spec.labels_id_column is None and spec.deployment is None


def test_parse_spec_reads_the_crds_spelling_and_the_old_one() -> None:
    base = {"model": {"name": "m", "target": "y"}, "data": {"reference": {"uri": "r"}},
            "store": {"uri": "/s"}}  # fmt: skip
    for spelling in ("fdr_bh", "bh"):
        spec = contract.parse_spec({**base, "drift": {"correction": spelling}})
        assert spec.drift.correction == "fdr_bh"


def test_the_contract_is_importable_without_numpy() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numpy'] = None; sys.modules['pandas'] = None\n"
        "from modelwatch_monitor import contract; print(contract.DriftSpec().correction)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "holm"


def test_docstring_examples() -> None:
    attempted = 0
    for module in CONTRACT_MODULES:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted > 0


CONTRACT_MODULES = [
    importlib.import_module(f"modelwatch_monitor.contract.{info.name}")
    for info in pkgutil.iter_modules(contract.__path__)
]
