"""The CRD and the contract spell every field, enum and default the same way.

The CRD is what the API server applies; :mod:`modelwatch_monitor.contract` is what the
operator and the jobs read. Each test walks both and fails on the first difference.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import typing
from typing import Any

import pytest
import yaml

from modelwatch_monitor import contract
from modelwatch_monitor.contract import Spec, camel

CRD = pathlib.Path(__file__).resolve().parents[1] / "crds" / "modelmonitors.modelwatch.io.yaml"


def crd_spec() -> dict[str, Any]:
    doc = yaml.safe_load(CRD.read_text())
    (version,) = doc["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(tp) in (typing.Union, __import__("types").UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return inner
    return tp


def _pairs(cls: type, schema: dict[str, Any], path: str) -> list[tuple[str, Any, dict[str, Any]]]:
    """Every (path, dataclass field, CRD property) pair under ``cls``, recursively."""
    fields = {camel(f.name): f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    props: dict[str, Any] = schema.get("properties") or {}
    assert set(fields) == set(props), (
        f"{path}: the CRD has {sorted(set(props) - set(fields))} that the contract lacks, "
        f"the contract has {sorted(set(fields) - set(props))} that the CRD lacks"
    )
    hints = typing.get_type_hints(cls)
    out = []
    for key, f in fields.items():
        prop = props[key]
        if prop.get("type") == "array" and "properties" in prop.get("items", {}):
            prop = {**prop["items"], **({"default": prop["default"]} if "default" in prop else {})}
        tp = _unwrap(hints[f.name])
        if typing.get_origin(tp) is tuple and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            tp = typing.get_args(tp)[0]
        out.append((f"{path}.{key}", (f, tp), prop))
        if dataclasses.is_dataclass(tp):
            out.extend(_pairs(tp, prop, f"{path}.{key}"))  # type: ignore[arg-type]
    return out


PAIRS = _pairs(Spec, crd_spec(), "spec")
IDS = [p for p, _, _ in PAIRS]


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return dataclasses.MISSING
    if dataclasses.is_dataclass(value):
        return {}  # an object whose fields have their own defaults: the CRD's {}
    if isinstance(value, tuple):
        return list(value)
    return value


@pytest.mark.parametrize(("path", "field", "prop"), PAIRS, ids=IDS)
def test_default(path: str, field: tuple[Any, Any], prop: dict[str, Any]) -> None:
    f, _ = field
    code = _default(f)
    crd = prop.get("default", dataclasses.MISSING)
    if code is None or code == []:
        assert crd is dataclasses.MISSING, f"{path}: the CRD defaults to {crd!r}, the code not"
    else:
        assert crd == code, f"{path}: the CRD defaults to {crd!r}, the code to {code!r}"


@pytest.mark.parametrize(("path", "field", "prop"), PAIRS, ids=IDS)
def test_enum(path: str, field: tuple[Any, Any], prop: dict[str, Any]) -> None:
    _, tp = field
    code = typing.get_args(tp) if typing.get_origin(tp) is typing.Literal else None
    crd = tuple(prop["enum"]) if "enum" in prop else None
    assert crd == code, f"{path}: the CRD allows {crd}, the code {code}"


@pytest.mark.parametrize(("path", "field", "prop"), PAIRS, ids=IDS)
def test_duration_pattern(path: str, field: tuple[Any, Any], prop: dict[str, Any]) -> None:
    f, _ = field
    if f.metadata.get("duration"):
        assert prop.get("pattern") == contract.DURATION_PATTERN, path
    elif prop.get("pattern") == contract.DURATION_PATTERN:
        pytest.fail(f"{path} is a duration in the CRD; mark it so in the contract")


def test_required_fields() -> None:
    def walk(cls: type, schema: dict[str, Any], path: str) -> None:
        hints = typing.get_type_hints(cls)
        needed = {
            camel(f.name)
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        assert needed == set(schema.get("required") or []), path
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            tp = _unwrap(hints[f.name])
            if typing.get_origin(tp) is tuple:
                tp = typing.get_args(tp)[0]
                sub = schema["properties"][camel(f.name)]["items"]
            else:
                sub = schema["properties"][camel(f.name)]
            if dataclasses.is_dataclass(tp):
                walk(tp, sub, f"{path}.{camel(f.name)}")  # type: ignore[arg-type]

    walk(Spec, crd_spec(), "spec")


def test_the_metric_rule_follows_the_metric_table() -> None:
    """The CRD's CEL rule (metric suits task) and its message name the same metrics."""
    schema = crd_spec()
    rule = next(r for r in schema["x-kubernetes-validations"] if "performance.metric" in r["rule"])
    regression = [m for m in contract.PERFORMANCE_METRICS if contract.METRICS[m][0] == "regression"]
    listed = re.findall(r"'(\w+)'", rule["rule"].split("in [")[1])
    assert listed == regression
    assert all(m in contract.METRICS for m in contract.PERFORMANCE_METRICS)
    for m in contract.PERFORMANCE_METRICS:
        assert m in rule["message"], m


def test_the_id_column_rule_is_in_both() -> None:
    rules = [r["rule"] for r in crd_spec()["x-kubernetes-validations"]]
    assert "!has(self.data.labels) || has(self.model.idColumn)" in rules
    spec = {
        "model": {"name": "m", "target": "y"},
        "data": {"reference": {"uri": "r"}, "labels": {"uri": "l", "idColumn": "id"}},
        "store": {"uri": "/s"},
    }
    with pytest.raises(contract.ContractError, match=r"spec\.model\.idColumn is required"):
        contract.parse_spec(spec)


def test_drift_tests_are_registered() -> None:
    from modelwatch_monitor.check.drift import registry

    for name in contract.NUMERIC_TESTS:
        registry.get_test(name, "numeric")
    for name in contract.CATEGORICAL_TESTS:
        registry.get_test(name, "categorical")


def test_every_correction_runs() -> None:
    from modelwatch_monitor.check.verdicts import DriftSettings, adjust_pvalues

    for name in contract.CORRECTIONS:
        assert DriftSettings.from_spec({"correction": name}).correction == name
        assert adjust_pvalues([0.01, 0.2], name).shape == (2,)  # type: ignore[arg-type]


def test_metric_directions_are_one_table() -> None:
    from modelwatch_monitor.check import performance
    from modelwatch_monitor.train import automl
    from modelwatch_operator import policies

    assert automl.METRICS is contract.METRICS
    assert {m for m, (_, g) in contract.METRICS.items() if not g} == performance.LOWER_IS_BETTER
    assert not hasattr(policies, "LOWER_IS_BETTER")
    for m in ("accuracy", "f1", "roc_auc", "r2"):
        assert contract.greater_is_better(m)
    for m in ("log_loss", "rmse", "mae", "mse", "mape"):
        assert not contract.greater_is_better(m)


def test_one_duration_parser() -> None:
    from modelwatch_monitor.store import dataio
    from modelwatch_operator import policies

    assert policies.parse_duration is contract.parse_duration
    assert dataio.parse_window("90m").total_seconds() == contract.parse_duration("90m") == 5400


def _parser(add: Any) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser


def test_command_line_defaults_are_the_contracts() -> None:
    from modelwatch_monitor.check import run as checking

    args = _parser(checking.add_arguments).parse_args([])
    drift, perf = contract.DriftSpec(), contract.PerformanceSpec()
    assert args.min_effect_size == drift.min_effect_size
    assert args.p_value_threshold == drift.p_value_threshold
    assert args.correction == drift.correction
    assert args.drift_share_threshold == drift.drift_share_threshold
    assert args.max_degradation == perf.max_degradation
    assert args.min_labeled_rows == perf.min_labeled_rows


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("7d", 604800)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert contract.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1w", "-1h", "1.5h", "7 d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="The duration must be"):
        contract.parse_duration(text)
