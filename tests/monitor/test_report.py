"""report.json and a self-contained report.html, written atomically."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import numpy as np
import pytest

from modelwatch_monitor.check.drift import Counts, Distribution
from modelwatch_monitor.check.report import clean, histogram, plot_feature, write_report


def _report() -> dict[str, Any]:
    return {
        "report_id": "20260101T000000Z",
        "model": "m",
        "dataset_drift": True,
        "drift_share": 0.5,
        "n_drifted": 1,
        "n_features": 2,
        "settings": {"driftShareThreshold": 0.5},
        "rows": {"reference": 10, "current": 10},
        "features": [
            {"name": "x<1>", "type": "numeric", "test": "ks", "statistic": 0.4,
             "p_value": 1e-9, "adjusted_p_value": 2e-9, "effect": 0.4, "drift": True},
            {"name": "c", "type": "categorical", "test": "chi2", "statistic": float("nan"),
             "p_value": None, "effect": 0.0, "drift": False},
        ],
        "quality": [{"kind": "new_column", "column": "z", "message": "column 'z' is new"}],
        "performance": None,
    }  # fmt: skip


def _summaries() -> dict[str, tuple[Distribution | Counts, Distribution | Counts]]:
    rng = np.random.default_rng(0)
    return {
        "x<1>": (
            Distribution.from_sample(rng.normal(size=1000)),
            Distribution.from_sample(rng.normal(1, 1, size=1000)),
        )
    }


def test_write_report(tmp_path: pathlib.Path) -> None:
    dest = tmp_path / "reports" / "r1"
    write_report(str(dest), _report(), _summaries())
    doc = json.loads((dest / "report.json").read_text())
    assert doc["features"][1]["statistic"] is None  # NaN is not JSON
    page = (dest / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1
    assert "x&lt;1&gt;" in page and "x<1>" not in page  # escaped
    assert "column &#x27;z&#x27; is new" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["r1"]


def test_existing_output_folder_is_filled(tmp_path: pathlib.Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    write_report(str(dest), _report(), _summaries())
    assert sorted(p.name for p in dest.iterdir()) == ["report.html", "report.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failure_leaves_nothing(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", boom)
    with pytest.raises(OSError, match="disk full"):
        write_report(str(tmp_path / "reports" / "r1"), _report(), _summaries())
    assert list((tmp_path / "reports").iterdir()) == []


def test_plots() -> None:
    (ref, cur) = _summaries()["x<1>"]
    assert isinstance(ref, Distribution) and isinstance(cur, Distribution)
    edges, pr, pc = histogram(ref, cur)
    assert edges.shape == (31,) and pr.sum() == pytest.approx(0.99, abs=0.01)
    assert np.argmax(pc) > np.argmax(pr)
    svg = plot_feature("c", Counts({"a": 3, "b": 1}), Counts({"a": 1, "b": 1, "new": 2}))
    assert svg.startswith("<svg") and svg.count("<rect") >= 6 and "new" in svg


def test_clean() -> None:
    assert clean({"a": [np.float64(1.5), float("inf")], "b": np.int64(3)}) == {
        "a": [1.5, None],
        "b": 3,
    }
