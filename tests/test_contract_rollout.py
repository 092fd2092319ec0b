"""The rollout contract: ``spec.rollout``, ``status.challenger`` and their words.

Only the contract: the fields, their defaults and bounds, the rule across fields in the
models and the CRD, and the job config and status documents that carry them.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
import yaml

from modelwatch_monitor import contract
from modelwatch_operator import constants as c

CRD = pathlib.Path(__file__).resolve().parents[1] / "crds" / "modelmonitors.modelwatch.io.yaml"
BASE: dict[str, Any] = {
    "model": {"name": "m", "target": "y"},
    "data": {"reference": {"uri": "r"}},
    "store": {"uri": "/s"},
}
DEPLOYMENT = {"name": "srv"}


def _version() -> dict[str, Any]:
    (version,) = yaml.safe_load(CRD.read_text())["spec"]["versions"]
    return dict(version)


def test_a_spec_without_rollout_is_todays_replace() -> None:
    rollout = contract.parse_spec(BASE).rollout
    assert rollout == contract.RolloutSpec()
    assert (rollout.strategy, rollout.evaluates) == ("replace", False)
    assert (rollout.weight, rollout.alpha, rollout.on_timeout) == (10, 0.05, "abort")
    assert (rollout.min_improvement, rollout.max_degradation) == (0.0, 0.02)
    assert rollout.min_labeled_rows == 200 and rollout.mirror_queue == 1000
    assert (rollout.max_error_rate_increase, rollout.max_latency_p99_ratio) == (0.01, 1.5)
    assert rollout.max_duration == "24h" and rollout.max_duration_seconds == 86400


@pytest.mark.parametrize("strategy", ["shadow", "canary"])
def test_shadow_and_canary_read_with_a_deployment(strategy: str) -> None:
    doc = {"strategy": strategy, "weight": 25, "maxDuration": "6h", "onTimeout": "promote"}
    spec = contract.parse_spec({**BASE, "deployment": DEPLOYMENT, "rollout": doc})
    assert spec.rollout.strategy == strategy and spec.rollout.evaluates
    assert spec.rollout.weight == 25 and spec.rollout.max_duration_seconds == 6 * 3600
    assert spec.rollout.on_timeout == "promote"


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        ({"strategy": "shadow"}, contract.ROLLOUT_NEEDS_DEPLOYMENT),
        ({"strategy": "canary"}, contract.ROLLOUT_NEEDS_DEPLOYMENT),
        ({"weight": 0}, "spec.rollout.weight: must be >= 1, got 0"),
        ({"weight": 51}, "spec.rollout.weight: must be <= 50, got 51"),
        ({"weight": 10.0}, "spec.rollout.weight: must be an integer, got 10.0"),
        ({"alpha": 0.0}, "spec.rollout.alpha: must be > 0.0, got 0.0"),
        ({"alpha": 0.6}, "spec.rollout.alpha: must be <= 0.5, got 0.6"),
        ({"minImprovement": 1.5}, "spec.rollout.minImprovement: must be <= 1.0, got 1.5"),
        ({"maxDegradation": -0.1}, "spec.rollout.maxDegradation: must be >= 0.0, got -0.1"),
        ({"minLabeledRows": 0}, "spec.rollout.minLabeledRows: must be >= 1, got 0"),
        (
            {"maxDuration": "1w"},
            "spec.rollout.maxDuration: must be a number followed by s, m, h or d (e.g. '7d'), "
            "got '1w'",
        ),
        (
            {"onTimeout": "wait"},
            "spec.rollout.onTimeout: must be one of abort, promote, got 'wait'",
        ),
        (
            {"maxErrorRateIncrease": 2.0},
            "spec.rollout.maxErrorRateIncrease: must be <= 1.0, got 2.0",
        ),
        ({"maxLatencyP99Ratio": 0.9}, "spec.rollout.maxLatencyP99Ratio: must be >= 1.0, got 0.9"),
        ({"mirrorQueue": 100_001}, "spec.rollout.mirrorQueue: must be <= 100000, got 100001"),
    ],
)
def test_bad_rollouts_name_their_field(rollout: dict[str, Any], message: str) -> None:
    with pytest.raises(contract.ContractError) as info:
        contract.parse_spec({**BASE, "rollout": rollout})
    assert str(info.value) == message


def test_the_deployment_rule_is_in_the_crd_with_the_models_message() -> None:
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    (rule,) = [r for r in spec["x-kubernetes-validations"] if "rollout" in r["rule"]]
    assert " ".join(rule["rule"].split()) == (
        "!has(self.rollout) || !has(self.rollout.strategy) || "
        "self.rollout.strategy == 'replace' || has(self.deployment)"
    )
    assert " ".join(rule["message"].split()) == contract.ROLLOUT_NEEDS_DEPLOYMENT


@pytest.mark.parametrize(
    "rollout",
    [None, {"strategy": "shadow", "mirrorQueue": 50}, {"strategy": "canary", "weight": 5}],
)
def test_the_job_config_carries_the_rollout_both_ways(rollout: dict[str, Any] | None) -> None:
    doc = {**BASE, "deployment": DEPLOYMENT}
    if rollout is not None:
        doc["rollout"] = rollout
    spec = contract.parse_spec(doc)
    text = json.dumps(contract.build_job_config(name="m", namespace="ns", spec=spec))
    written = json.loads(text)["spec"]["rollout"]
    assert set(written) == {f.alias for f in contract.RolloutSpec.model_fields.values()}
    assert written == spec.rollout.to_doc()
    assert contract.parse_job_config(text).spec == spec


CHALLENGER = {
    "version": 3,
    "sha256": "ab" * 32,
    "strategy": "canary",
    "deployment": "mm-challenger",
    "championVersion": 2,
    "since": "2026-11-29T12:00:00Z",
    "evaluatedAt": "2026-11-29T13:00:00Z",
    "rows": 4000,
    "labeledRows": 1200,
    "share": 0.098,
    "metric": "accuracy",
    "estimated": False,
    "championMetric": 0.80,
    "challengerMetric": 0.83,
    "difference": 0.03,
    "lower": 0.01,
    "upper": 0.05,
    "decision": "Continue",
    "reason": "Undecided",
    "message": "not decided yet",
}


def test_status_reads_and_writes_the_challenger() -> None:
    status = contract.MonitorStatus.model_validate({"currentVersion": 2, "challenger": CHALLENGER})
    challenger = status.challenger
    assert challenger is not None
    assert (challenger.version, challenger.strategy, challenger.decision) == (
        3,
        "canary",
        "Continue",
    )
    assert (challenger.lower, challenger.difference, challenger.upper) == (0.01, 0.03, 0.05)
    assert challenger.to_doc() == CHALLENGER
    assert contract.MonitorStatus.model_validate({}).challenger is None


def test_status_names_the_crds_challenger_fields() -> None:
    status = _version()["schema"]["openAPIV3Schema"]["properties"]["status"]
    props = status["properties"]["challenger"]["properties"]
    assert set(props) == set(CHALLENGER)
    assert props["decision"]["enum"] == list(contract.EVALUATION_DECISIONS)
    assert props["strategy"]["enum"] == list(contract.ROLLOUT_STRATEGIES)


def test_a_decision_outside_the_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="Promote"):
        contract.ChallengerStatus.model_validate({"version": 3, "decision": "Maybe"})


def test_the_challenger_shows_in_wide_output() -> None:
    columns = {col["name"]: col for col in _version()["additionalPrinterColumns"]}
    assert columns["Challenger"]["jsonPath"] == ".status.challenger.version"
    assert columns["Evaluation"]["jsonPath"] == ".status.challenger.decision"
    assert columns["Challenger"]["priority"] == columns["Evaluation"]["priority"] == 1


def test_the_operator_knows_the_evaluating_condition() -> None:
    assert c.COND_EVALUATING == "Evaluating"
    assert c.COND_EVALUATING in c.CONDITION_TYPES
    assert c.challenger_deployment_name("mm") == "mm-challenger"


def test_the_evaluation_words_are_distinct() -> None:
    words = [
        contract.EVALUATING_IDLE,
        contract.EVALUATING_STARTED,
        contract.EVALUATING_CHALLENGER_NOT_READY,
        contract.EVALUATING_CHALLENGER_DELETED,
        contract.EVALUATING_CANCELLED,
    ]
    assert set(words) == contract.EVALUATING_LIFECYCLE_REASONS
    assert not contract.EVALUATING_LIFECYCLE_REASONS & contract.PROMOTION_REASONS
    assert (contract.DECISION_PROMOTE, contract.DECISION_ABORT, contract.DECISION_CONTINUE) == (
        contract.EVALUATION_DECISIONS
    )
