"""report.json and a self-contained report.html, written atomically."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import json
import os
import pathlib
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest

from modelwatch_monitor.check import history
from modelwatch_monitor.check.drift import Counts, Distribution
from modelwatch_monitor.check.report import clean, histogram, plot_feature, write_report

HOSTILE = "<script>alert(1)</script>"
VOID = {"meta", "br", "hr", "img", "input", "link"}


class StrictParser(HTMLParser):
    """Records every tag that is closed out of order or never, and the page's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.svgs += tag == "svg"
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    return parser


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
    assert "column &#39;z&#39; is new" in page  # the quote escaped, once
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


def test_a_hostile_name_is_escaped_and_the_page_is_well_formed(tmp_path: pathlib.Path) -> None:
    doc = _report()
    doc["model"] = HOSTILE
    doc["features"][0]["name"] = HOSTILE
    doc["features"][1].update(name=f"c{HOSTILE}", drift=True)
    doc["quality"] = [{"kind": HOSTILE, "column": HOSTILE, "message": f"column {HOSTILE!r}"}]
    doc["serving"] = {"version": 2, "basis": HOSTILE, "rows": 5, "byVersion": [{"version": 2}]}
    doc["estimated"] = {"name": HOSTILE, "value": None, "undefinedReason": HOSTILE}
    (ref, cur) = _summaries()["x<1>"]
    summaries: dict[str, tuple[Distribution | Counts, Distribution | Counts]] = {
        HOSTILE: (ref, cur),
        f"c{HOSTILE}": (Counts({HOSTILE: 3, "b": 1}), Counts({HOSTILE: 1, "b": 3})),
    }
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    points = [
        history.Point(
            f"r{i}{HOSTILE}", t0 + dt.timedelta(days=i), 0.1 * i, HOSTILE, 0.9, 0.8, 0.7, 0.9,
            serving_version=1 + i, categories={HOSTILE: {HOSTILE: 0.6, "b": 0.4}},
        )
        for i in range(3)
    ]  # fmt: skip
    section = history.history_section(points, [(2, t0 + dt.timedelta(hours=12))])
    dest = tmp_path / "r"
    write_report(str(dest), doc, summaries, history=section)
    page = (dest / "report.html").read_text()

    assert "<script" not in page and "alert(1)</script>" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<td>{escaped}</td>" in page  # the feature table
    assert f'aria-label="{escaped}"' in page  # a plot's label, an attribute
    assert f"<title>{escaped}: reference" in page  # a bar's tooltip: a category
    assert f"<h1>modelwatch check: {escaped}</h1>" in page
    assert "<h2>History</h2>" in page and f"{escaped} categories" in page

    parsed = parse(page)
    assert parsed.errors == [] and parsed.open == []  # every tag closed, in order
    assert parsed.svgs == page.count("</svg>") == 2 + 3  # two features, three history plots
    text = "".join(parsed.text)
    assert HOSTILE in text and "&lt;" not in text  # escaped exactly once


def test_the_templates_are_package_data() -> None:
    templates = importlib.resources.files("modelwatch_monitor") / "templates"
    assert {"report.html", "history.html", "svg.html"} <= {t.name for t in templates.iterdir()}


def test_plots() -> None:
    (ref, cur) = _summaries()["x<1>"]
    assert isinstance(ref, Distribution) and isinstance(cur, Distribution)
    edges, pr, pc = histogram(ref, cur)
    assert edges.shape == (31,) and pr.sum() == pytest.approx(0.99, abs=0.01)
    assert np.argmax(pc) > np.argmax(pr)
    svg = plot_feature("c", Counts({"a": 3, "b": 1}), Counts({"a": 1, "b": 1, "new": 2}))
    assert svg.startswith("<svg") and svg.count("<rect") >= 6 and "new" in svg
    parsed = parse(svg)
    assert parsed.errors == [] and parsed.open == [] and parsed.svgs == 1
    assert plot_feature("c", ref, Counts({"a": 1})) == ""  # a numeric and a categorical side


def test_clean() -> None:
    assert clean({"a": [np.float64(1.5), float("inf")], "b": np.int64(3)}) == {
        "a": [1.5, None],
        "b": 3,
    }
