"""The report's history: past checks from the store, retrains and rollouts marked."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor import contract
from modelwatch_monitor.check import history
from modelwatch_monitor.check.drift import Counts
from modelwatch_monitor.check.judge import run_check
from modelwatch_monitor.check.profile import Roles
from modelwatch_monitor.check.settings import CheckSettings

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def _report(i: int, *, version: int, share: float, value: float | None) -> dict[str, Any]:
    return {
        "report_id": f"2026112{i}T120000Z",
        "created": (T0 + dt.timedelta(days=i)).isoformat(),
        "drift_share": share,
        "serving_version": version,
        "performance": {"metric": {"name": "accuracy", "value": value}},
        "estimated": {"name": "accuracy", "value": 0.8, "lower": 0.75, "upper": 0.85},
        "categories": {"color": {"red": 0.5 - 0.1 * i, "blue": 0.5 + 0.1 * i}},
    }


def _store(tmp_path: pathlib.Path) -> str:
    store = str(tmp_path / "store")
    for i, (version, share, value) in enumerate([(1, 0.0, 0.9), (1, 0.6, None), (2, 0.1, 0.88)]):
        doc = _report(i, version=version, share=share, value=value)
        path = pathlib.Path(contract.report_dir(store, "m", doc["report_id"]))
        path.mkdir(parents=True)
        (path / contract.REPORT_JSON).write_text(json.dumps(doc))
    bad = pathlib.Path(contract.report_dir(store, "m", "20261119T000000Z"))
    bad.mkdir(parents=True)
    (bad / contract.REPORT_JSON).write_text("{not json")
    meta = pathlib.Path(contract.version_dir(store, "m", 2)) / contract.METADATA_FILE
    meta.parent.mkdir(parents=True)
    created = (T0 + dt.timedelta(days=1, hours=3)).isoformat()
    meta.write_text(json.dumps({"createdAt": created}))
    return store


def test_load_history_and_markers(tmp_path: pathlib.Path) -> None:
    store = _store(tmp_path)
    points = history.load_history(store, "m")
    assert [p.serving_version for p in points] == [1, 1, 2]  # the unreadable one skipped
    assert points[1].value is None and points[1].estimate == 0.8 and points[1].lower == 0.75
    assert history.load_history(store, "m", limit=2)[0].report_id == points[1].report_id
    retrains = history.retrain_times(store, "m")
    assert [v for v, _ in retrains] == [2]
    marks = history.markers(points, retrains)
    labels = {m.label: m.x for m in marks}
    assert labels["retrain v2"] == 1.5 and labels["v2 serves"] == pytest.approx(1.65)
    page = history.render_history(points, retrains)
    assert "<h2>History</h2>" in page and "retrain v2" in page and "v2 serves" in page
    assert "drift share" in page and "realized" in page and "estimated" in page
    assert "color: category shares" in page and page.count("<svg") == 3
    assert history.render_history(points[:1]) == ""
    assert history.load_history(str(tmp_path / "nothing"), "m") == []


def test_category_shares_keep_the_top_and_the_rest() -> None:
    shares = history.category_shares({"c": Counts({str(i): 10 - i for i in range(10)})}, limit=3)
    assert list(shares["c"]) == ["0", "1", "2", history.OTHER]
    assert sum(shares["c"].values()) == pytest.approx(1.0)


def test_a_check_in_the_store_shows_the_past_checks(tmp_path: pathlib.Path) -> None:
    store = _store(tmp_path)
    rng = np.random.default_rng(0)
    n = 600

    def frame(shift: float) -> pa.Table:
        return pa.table(
            {
                "x0": rng.normal(shift, 1, n),
                "color": rng.choice(["red", "blue", "green"], n),
                "prediction": rng.integers(0, 2, n),
            }
        )

    pq.write_table(frame(0.0), tmp_path / "ref.parquet")
    pq.write_table(frame(1.0), tmp_path / "cur.parquet")
    out = contract.report_dir(store, "m", "20261124T120000Z")
    settings = CheckSettings(
        current=str(tmp_path / "cur.parquet"),
        output=out,
        reference=str(tmp_path / "ref.parquet"),
        roles=Roles(prediction="prediction"),
        store=store,
        model="m",
        report_id="20261124T120000Z",
        now=T0 + dt.timedelta(days=4),
    )
    run_check(settings)
    report = json.loads((pathlib.Path(out) / contract.REPORT_JSON).read_text())
    assert set(report["categories"]["color"]) == {"red", "blue", "green"}
    page = (pathlib.Path(out) / contract.REPORT_HTML).read_text()
    assert "The last 4 checks" in page and "retrain v2" in page
    assert "color: category shares" in page
