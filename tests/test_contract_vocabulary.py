"""One vocabulary: every reason a Job can emit is one the operator accepts.

The Jobs' reasons are read from their source (every CamelCase string constant, every
``reason=`` literal, every reason a failure is raised or built with, and every
``contract.REASON_*`` they name, in ``train/`` and ``check/``), so a reason added to a Job
without the vocabulary fails here, not as ``InvalidResult`` on a cluster.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

from modelwatch_monitor import contract

PACKAGE = pathlib.Path(contract.__file__).resolve().parents[1]
# Reasons inside a check's report that never become a result reason (metric notes).
METRIC_NOTES = {"NoCalibration", "NoProbabilities", "NotEstimable", "NoBaseline", "NoLossModel"}


def _reasons(folder: str) -> set[str]:
    """CamelCase constants and ``reason=...`` literals in the modules of ``folder``."""
    found: set[str] = set()
    for path in (PACKAGE / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                value = node.value
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if (
                    isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                    and value.value[:1].isupper()
                    and value.value.isalpha()
                    and any(isinstance(t, ast.Name) and t.id.isupper() for t in targets)
                ):
                    found.add(value.value)
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "contract"
                and node.attr.startswith(("REASON_", "PROMOTE_"))
            ):
                found.add(getattr(contract, node.attr))  # a reason named through the contract
            if (
                isinstance(node, ast.Call)
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and getattr(node.func, "id", getattr(node.func, "attr", "")).endswith(
                    ("Error", "failure", "_failure")
                )
                and node.args[0].value[:1].isupper()
                and node.args[0].value.isalpha()
            ):
                found.add(node.args[0].value)  # RetrainError("Reason", ...), failure("Reason")
            if (
                isinstance(node, ast.keyword)
                and node.arg == "reason"
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                found.add(node.value.value)
    return found


def test_every_retrain_reason_is_accepted() -> None:
    emitted = _reasons("train")
    assert emitted, "no reason found in train/: the scan is broken"
    accepted = contract.RETRAIN_FAILURE_REASONS | contract.PROMOTION_REASONS
    assert emitted - accepted == set()


def test_every_check_reason_is_accepted() -> None:
    emitted = _reasons("check") - METRIC_NOTES
    accepted = contract.CHECK_FAILURE_REASONS | contract.CHECK_NO_VERDICT_REASONS
    assert emitted - accepted == set()


@pytest.mark.parametrize("reason", sorted(contract.RETRAIN_FAILURE_REASONS))
def test_the_retrain_failure_model_takes_every_failure_reason(reason: str) -> None:
    doc = {"schema": 1, "kind": "retrain", "ok": False, "reason": reason, "message": "m"}
    result = contract.read_result(doc)
    assert isinstance(result, contract.RetrainFailed) and result.reason == reason


def test_champion_hash_mismatch_is_a_retrain_reason() -> None:
    """The defect behind the one vocabulary: this reason was refused as InvalidResult."""
    doc = {
        "schema": 1,
        "kind": "retrain",
        "ok": False,
        "reason": "ChampionHashMismatch",
        "message": "champion v1: sha256 mismatch",
    }
    assert contract.validate_result(doc) == []


@pytest.mark.parametrize("reason", sorted(contract.CHECK_NO_VERDICT_REASONS))
def test_a_check_without_verdict_is_ok(reason: str) -> None:
    doc = {"schema": 1, "kind": "check", "ok": True, "reason": reason, "message": "m"}
    result = contract.read_result(doc)
    assert isinstance(result, contract.CheckNoVerdict) and result.reason == reason


def test_promotion_words_are_the_vocabulary() -> None:
    decided = {
        contract.decide_promotion(
            version=2,
            metric="accuracy",
            challenger_score=challenger,
            champion_version=champion_version,
            champion_score=champion,
            min_improvement=0.01,
        ).reason
        for challenger, champion_version, champion in [
            (0.9, None, None),
            (0.9, 1, 0.5),
            (0.5, 1, 0.9),
            (0.9, 1, None),
            (None, 1, 0.9),
        ]
    }
    assert decided == contract.PROMOTION_REASONS
