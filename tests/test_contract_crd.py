"""The CRD and the contract spell every field, enum and default the same way.

The CRD is what the API server applies; :mod:`modelwatch_monitor.contract` is what the
operator and the jobs read. Each test walks both and fails on the first difference.
"""

from __future__ import annotations

import argparse
import pathlib
import re
from typing import Any

import pytest
import yaml

from modelwatch_monitor import contract

CRD = pathlib.Path(__file__).resolve().parents[1] / "crds" / "modelmonitors.modelwatch.io.yaml"


def crd_spec() -> dict[str, Any]:
    doc = yaml.safe_load(CRD.read_text())
    (version,) = doc["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


MODEL = contract.Spec.model_json_schema(by_alias=True)
DEFS: dict[str, Any] = MODEL.get("$defs", {})
_CEL_BOUNDS = re.compile(r"^self (>=?) (-?[0-9.]+) && self (<=?) (-?[0-9.]+)$")


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """A model property with ``$ref``/``anyOf [X, null]`` unwrapped, its siblings kept."""
    node = dict(node)
    if "anyOf" in node:
        (inner,) = [n for n in node.pop("anyOf") if n.get("type") != "null"]
        node = {**inner, **node}
    if "$ref" in node:
        node = {**DEFS[node.pop("$ref").rsplit("/", 1)[1]], **node}
    return node


def _bounds(prop: dict[str, Any]) -> dict[str, Any]:
    """The CRD's numeric bounds, from minimum/maximum and the ``self > a && self < b`` rules."""
    out = {k: prop[k] for k in ("minimum", "maximum") if k in prop}
    for rule in prop.get("x-kubernetes-validations", []):
        match = _CEL_BOUNDS.match(rule["rule"].strip())
        if match:
            low_op, low, high_op, high = match.groups()
            out["minimum" if low_op == ">=" else "exclusiveMinimum"] = float(low)
            out["maximum" if high_op == "<=" else "exclusiveMaximum"] = float(high)
    return out


FACETS = ("type", "enum", "pattern", "minLength", "maxLength", "maxItems")


def _pairs(model: dict[str, Any], crd: dict[str, Any], path: str) -> list[Any]:
    """Every (path, model property, CRD property) pair, recursively."""
    props: dict[str, Any] = crd.get("properties") or {}
    fields: dict[str, Any] = model.get("properties") or {}
    assert set(fields) == set(props), (
        f"{path}: the CRD has {sorted(set(props) - set(fields))} that the models lack, "
        f"the models have {sorted(set(fields) - set(props))} that the CRD lacks"
    )
    assert set(model.get("required", [])) == set(crd.get("required", [])), path
    out = []
    for key in fields:
        field, prop = _resolve(fields[key]), props[key]
        out.append((f"{path}.{key}", field, prop))
        if field.get("type") == "array" and "$ref" in field.get("items", {}):
            out.extend(_pairs(_resolve(field["items"]), prop["items"], f"{path}.{key}[]"))
        elif "properties" in field:
            out.extend(_pairs(field, prop, f"{path}.{key}"))
    return out


PAIRS = _pairs(_resolve(MODEL), crd_spec(), "spec")
IDS = [p for p, _, _ in PAIRS]


@pytest.mark.parametrize(("path", "field", "prop"), PAIRS, ids=IDS)
def test_default(path: str, field: dict[str, Any], prop: dict[str, Any]) -> None:
    code = field.get("default")
    crd = prop.get("default")
    if isinstance(code, dict):
        # An object whose fields have their own defaults: the CRD spells it {}.
        assert crd == {}, f"{path}: the models default to an object, the CRD to {crd!r}"
    elif code in (None, []):
        assert crd is None or crd == code, f"{path}: the CRD defaults to {crd!r}, the code not"
    else:
        assert crd == code, f"{path}: the CRD defaults to {crd!r}, the code to {code!r}"


@pytest.mark.parametrize(("path", "field", "prop"), PAIRS, ids=IDS)
def test_facets(path: str, field: dict[str, Any], prop: dict[str, Any]) -> None:
    """Type, enum, pattern and length bounds are the same in both."""
    for facet in FACETS:
        code, crd = field.get(facet), prop.get(facet)
        if facet == "type" and "enum" in field:
            continue  # pydantic may leave an enum's type out
        assert code == crd, f"{path}: {facet} is {crd!r} in the CRD, {code!r} in the models"


@pytest.mark.parametrize(("path", "field", "prop"), PAIRS, ids=IDS)
def test_numeric_bounds(path: str, field: dict[str, Any], prop: dict[str, Any]) -> None:
    keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    code = {k: float(field[k]) for k in keys if k in field}
    crd = {k: float(v) for k, v in _bounds(prop).items()}
    assert code == crd, f"{path}: the CRD bounds it {crd}, the models {code}"


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


def _status_names(model: dict[str, Any], crd: dict[str, Any], path: str) -> list[str]:
    """Every difference between the status models' field names and the CRD's, recursively."""
    defs: dict[str, Any] = STATUS_MODEL.get("$defs", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        node = dict(node)
        inner = [n for n in node.pop("anyOf", []) if n.get("type") != "null"]
        if len(inner) == 1:
            node = {**inner[0], **node}
        if "$ref" in node:
            node = {**defs[node.pop("$ref").rsplit("/", 1)[1]], **node}
        return node

    fields: dict[str, Any] = model.get("properties") or {}
    props: dict[str, Any] = crd.get("properties") or {}
    out = [f"{path}.{k}: not in the CRD" for k in sorted(set(fields) - set(props))]
    out += [f"{path}.{k}: not in the models" for k in sorted(set(props) - set(fields))]
    for key in sorted(set(fields) & set(props)):
        field, prop = resolve(fields[key]), props[key]
        if field.get("type") == "array" and "items" in field:
            out += _status_names(resolve(field["items"]), prop.get("items", {}), f"{path}.{key}[]")
        elif "properties" in field:
            out += _status_names(field, prop, f"{path}.{key}")
    return out


STATUS_MODEL = contract.MonitorStatus.model_json_schema(by_alias=True)


def test_the_status_models_and_the_crd_name_the_same_fields() -> None:
    doc = yaml.safe_load(CRD.read_text())
    (version,) = doc["spec"]["versions"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert _status_names(STATUS_MODEL, status, "status") == []
