"""The check benchmarks' set-up (bench_check, bench_store) at a small size."""

from __future__ import annotations

import json
import pathlib

from bench import bench_check


def test_the_reference_profile_of_the_benchmark_data(tmp_path: pathlib.Path) -> None:
    ref, cur = bench_check.write_data(tmp_path, 500, 3)
    profile = bench_check.write_profile(tmp_path, ref)
    assert profile == str(tmp_path / "profile.json")
    doc = json.loads(pathlib.Path(profile).read_text())
    assert doc["rows"] == 500
    assert sorted(doc["columns"]) == ["f00", "f01", "f02"]
    assert pathlib.Path(cur).exists()
