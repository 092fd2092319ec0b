"""Library releases recorded with a version, and refusing pickles that do not survive."""

from __future__ import annotations

import json
import pathlib

import pytest

from modelwatch_monitor.store import compat
from modelwatch_monitor.store.registry import IncompatibleLibrariesError, Registry

INSTALLED = {
    "python": "3.11.7", "flaml": "2.8.0", "scikit-learn": "1.9.1", "lightgbm": "4.7.0",
    "xgboost": "2.1.4", "numpy": "2.4.6", "pandas": "3.1.1",
}  # fmt: skip


@pytest.mark.parametrize(
    ("library", "trained", "refused", "warned"),
    [
        ("scikit-learn", "1.9.1", False, False),
        ("scikit-learn", "1.9.0", False, True),
        ("scikit-learn", "1.8.2", True, False),
        ("flaml", "2.7.0", True, False),
        ("flaml", "2.8.1", False, True),
        ("numpy", "1.26.4", True, False),
        ("numpy", "2.3.0", False, True),
        ("pandas", "2.2.3", True, False),
        ("pandas", "3.0.0", False, True),
        ("lightgbm", "3.3.5", True, False),
        ("lightgbm", "4.6.0", False, True),
        ("xgboost", "3.0.0", True, False),
        ("xgboost", "2.1.1", False, True),
        ("python", "3.12.1", False, True),
        ("python", "4.0.0", True, False),
        ("pyarrow", "1.0.0", False, False),  # not part of the pickle
    ],
)
def test_compare_table(library: str, trained: str, refused: bool, warned: bool) -> None:
    result = compat.compare({**INSTALLED, library: trained}, INSTALLED)
    assert bool(result.refused) is refused
    assert bool(result.warnings) is warned
    for line in result.refused + result.warnings:
        assert line.startswith(f"{library}: the version was trained with {trained}, ")
        assert f"this image has {INSTALLED[library]}" in line


def test_versions_without_a_record_load_with_a_warning() -> None:
    result = compat.compare(None, INSTALLED)
    assert result.ok and result.warnings


def test_library_versions_names_xgboost_whichever_wheel() -> None:
    libs = compat.library_versions()
    for lib in ("python", "flaml", "scikit-learn", "lightgbm", "xgboost", "numpy", "pandas"):
        assert libs.get(lib), lib


def _publish(tmp_path: pathlib.Path, libraries: dict[str, str]) -> Registry:
    registry = Registry(str(tmp_path / "store"), "m")
    registry.publish(1, {"weights": [1, 2, 3]}, {"libraries": libraries})
    return registry


def test_registry_refuses_a_version_trained_with_another_minor_scikit_learn(
    tmp_path: pathlib.Path,
) -> None:
    installed = compat.library_versions()
    major, minor = installed["scikit-learn"].split(".")[:2]
    other = f"{major}.{int(minor) + 1}.0"
    registry = _publish(tmp_path, {**installed, "scikit-learn": other})
    with pytest.raises(IncompatibleLibrariesError) as info:
        registry.load(1)
    message = str(info.value)
    assert f"scikit-learn: the version was trained with {other}" in message
    assert f"this image has {installed['scikit-learn']}" in message
    # Nothing was changed: the version is still there, whole.
    meta = json.loads((tmp_path / "store" / "m" / "versions" / "1" / "metadata.json").read_text())
    assert meta["libraries"]["scikit-learn"] == other


def test_registry_loads_a_patch_difference_with_a_warning(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    installed = compat.library_versions()
    release = installed["numpy"].split(".")
    patched = ".".join([release[0], release[1], str(int(release[2]) + 1)])
    registry = _publish(tmp_path, {**installed, "numpy": patched})
    with caplog.at_level("WARNING"):
        loaded = registry.load(1)
    assert loaded.model == {"weights": [1, 2, 3]}
    assert any(
        f"numpy: the version was trained with {patched}" in r.getMessage() for r in caplog.records
    )
