"""Data-quality findings name their column."""

from __future__ import annotations

import numpy as np
import pytest

from modelwatch_monitor.check.drift import Counts, Distribution
from modelwatch_monitor.check.profile import ColumnProfile
from modelwatch_monitor.check.quality import column_findings, schema_findings


def _num(name: str, x: np.ndarray, nulls: int = 0) -> ColumnProfile:
    return ColumnProfile(
        name, "numeric", "double", len(x) + nulls, nulls, Distribution.from_sample(x)
    )


def test_schema_findings() -> None:
    ref = {"a": "double", "b": "int64", "c": "string", "y": "int64"}
    cur = {"a": "double", "b": "double", "d": "string", "prediction": "int64"}
    found = schema_findings(ref, cur, ignore=["y", "prediction"])
    kinds = {(f["kind"], f["column"]) for f in found}
    assert kinds == {("dtype_change", "b"), ("missing_column", "c"), ("new_column", "d")}
    b = next(f for f in found if f["column"] == "b")
    assert "'b'" in b["message"] and "int64" in b["message"] and "double" in b["message"]


def test_null_rate_jump_and_out_of_range() -> None:
    rng = np.random.default_rng(0)
    ref = _num("x", rng.uniform(0, 1, 10_000), nulls=100)
    same = _num("x", rng.uniform(0, 1, 10_000), nulls=150)
    assert column_findings(ref, same) == []
    cur = _num("x", np.concatenate([rng.uniform(0, 1, 9_000), np.full(50, 7.0)]), nulls=1_000)
    found = {f["kind"]: f for f in column_findings(ref, cur)}
    assert set(found) == {"null_rate_jump", "out_of_range"}
    assert "'x'" in found["null_rate_jump"]["message"]
    assert found["out_of_range"]["details"]["above"] == pytest.approx(50 / 9050)
    assert found["out_of_range"]["details"]["below"] < 0.001


def test_unseen_categories() -> None:
    ref = ColumnProfile("c", "categorical", "string", 100, 0, Counts({"a": 60, "b": 40}))
    cur = ColumnProfile("c", "categorical", "string", 100, 0, Counts({"a": 50, "z": 30, "q": 20}))
    (f,) = column_findings(ref, cur)
    assert f["kind"] == "unseen_categories" and f["column"] == "c"
    assert f["details"]["categories"] == ["z", "q"] and f["details"]["share"] == 0.5
    assert "'z'" in f["message"]
