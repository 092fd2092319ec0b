"""The reference profile: contents, JSON round trip, sketch mode, CLI."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor.check.drift import Counts, Distribution
from modelwatch_monitor.check.profile import Profile, Roles, build_profile, choose_mode
from modelwatch_monitor.cli import main
from modelwatch_monitor.store.dataio import DataError


@pytest.fixture
def ref(tmp_path: pathlib.Path) -> str:
    rng = np.random.default_rng(0)
    n = 30_000
    x = rng.normal(size=n)
    x[:300] = np.nan
    table = pa.table(
        {
            "x": x,
            "k": rng.integers(0, 5, n),
            "flag": rng.random(n) < 0.3,
            "city": pa.array(rng.choice(["a", "b", None], n, p=[0.6, 0.3, 0.1])),
            "ts": pa.array(np.arange(n).astype("datetime64[s]")),
            "y": rng.integers(0, 2, n),
            "prediction": rng.integers(0, 2, n),
        }
    )
    path = tmp_path / "ref.parquet"
    pq.write_table(table, path)
    return str(path)


def test_profile_contents(ref: str) -> None:
    p = build_profile(ref, roles=Roles(target="y", prediction="prediction"), task="classification")
    assert p.rows == 30_000 and p.mode == "exact"
    assert p.features == ["x", "k", "flag", "city"]  # ts has no feature type
    x = p.columns["x"]
    assert x.type == "numeric" and x.dtype == "double" and x.nulls == 300
    assert x.null_rate == pytest.approx(0.01)
    assert isinstance(x.summary, Distribution)
    assert x.summary.support.shape[0] <= 10_001 and 0 < x.summary.rank_error <= 2e-4
    k = p.columns["k"]
    assert isinstance(k.summary, Distribution) and k.summary.rank_error == 0.0  # 5 values: exact
    assert p.columns["flag"].type == "categorical"
    assert set(p.columns["flag"].summary.counts) == {"true", "false"}  # type: ignore[union-attr]
    city = p.columns["city"]
    assert isinstance(city.summary, Counts) and set(city.summary.counts) == {"a", "b"}
    assert city.nulls == city.rows - city.summary.n
    assert p.performance is not None
    assert p.performance["metrics"]["accuracy"] == pytest.approx(0.5, abs=0.02)


def test_type_overrides_and_feature_list(ref: str) -> None:
    p = build_profile(ref, features=["x", "k"], overrides={"k": "categorical"})
    assert p.features == ["x", "k"] and p.columns["k"].type == "categorical"
    with pytest.raises(DataError, match="'nope'"):
        build_profile(ref, features=["x", "nope"])


def test_json_round_trip(ref: str, tmp_path: pathlib.Path) -> None:
    p = build_profile(ref, roles=Roles(target="y", prediction="prediction"))
    path = str(tmp_path / "sub" / "profile.json")
    p.save(path)
    q = Profile.load(path)
    assert q.to_dict() == p.to_dict()
    a, b = p.columns["x"].summary, q.columns["x"].summary
    assert isinstance(a, Distribution) and isinstance(b, Distribution)
    assert np.array_equal(a.support, b.support) and np.array_equal(a.cdf_values(), b.cdf_values())
    with pytest.raises(DataError, match="not found"):
        Profile.load(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text(json.dumps({"kind": "other"}))
    with pytest.raises(DataError, match="not a modelwatch profile"):
        Profile.load(str(tmp_path / "bad.json"))


def test_sketch_mode_is_close_to_exact(ref: str) -> None:
    exact = build_profile(ref, mode="exact").columns["x"].summary
    sketch = build_profile(ref, mode="sketch").columns["x"].summary
    assert isinstance(exact, Distribution) and isinstance(sketch, Distribution)
    assert sketch.n == exact.n and sketch.mean == pytest.approx(exact.mean, abs=1e-9)
    assert sketch.std == pytest.approx(exact.std, rel=1e-9)
    grid = np.linspace(-3, 3, 61)
    err = np.abs(sketch.at(grid) - exact.at(grid)).max()
    assert err <= sketch.rank_error + exact.rank_error
    assert sketch.min == exact.min and sketch.max == exact.max


def test_choose_mode() -> None:
    assert choose_mode(1_000_000, 50, budget=1 << 30) == "exact"
    assert choose_mode(20_000_000, 20, budget=1 << 30) == "sketch"
    assert choose_mode(10, 1, "sketch") == "sketch"
    with pytest.raises(ValueError, match="'mode' parameter"):
        choose_mode(10, 1, "fast")


def test_profile_cli(ref: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.json"
    code = main(["profile", ref, "--output", str(out), "--target", "y", "--categorical", "k"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["ok"] and summary["rows"] == 30_000 and summary["features"] == 4
    assert Profile.load(str(out)).columns["k"].type == "categorical"
    code = main(["profile", str(tmp_path / "none.parquet"), "--output", str(out)])
    assert code != 0
    assert "not found" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["message"]
