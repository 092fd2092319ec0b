"""Library versions of a model version, and whether this process can unpickle it.

``model.joblib`` is a pickle of FLAML, scikit-learn, LightGBM and XGBoost objects. A
pickle written by one release of these libraries is not guaranteed to load, or to
predict the same, under another: scikit-learn supports unpickling only with the release
that wrote it, FLAML's fitted ``DataTransformer`` changes layout between minor releases,
and NumPy 2 cannot read some NumPy 1 pickles. So each version records the releases it
was trained with (``metadata.json`` ``libraries``), and :func:`compare` decides, before
anything is unpickled, whether the installed releases may load it.

The rules, per library (``major.minor.patch``):

=============  ======================  ==================
library        refused when differs    warned when differs
=============  ======================  ==================
python         major                   minor
scikit-learn   major or minor          patch
flaml          major or minor          patch
lightgbm       major                   minor or patch
xgboost        major                   minor or patch
numpy          major                   minor or patch
pandas         major                   minor or patch
=============  ======================  ==================

>>> compare({"scikit-learn": "1.9.1"}, {"scikit-learn": "1.8.0"}).refused
['scikit-learn: the version was trained with 1.9.1, this image has 1.8.0 (a pickle does not \
survive a minor release)']
>>> compare({"numpy": "2.4.6"}, {"numpy": "2.4.1"}).refused
[]
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import re
from dataclasses import dataclass, field
from typing import Final

# Library -> number of leading release components that must be equal for a pickle to
# load (1: major, 2: major.minor). Any other difference is a warning.
MUST_MATCH: Final[dict[str, int]] = {
    "python": 1,
    "scikit-learn": 2,
    "flaml": 2,
    "lightgbm": 1,
    "xgboost": 1,
    "numpy": 1,
    "pandas": 1,
}
_PART_NAMES: Final = ("major", "minor", "patch")

# Distributions to record, in order. XGBoost may be installed as ``xgboost`` or as the
# CPU-only wheel ``xgboost-cpu``; both record as "xgboost".
_DISTRIBUTIONS: Final = (
    ("modelwatch", ("modelwatch",)),
    ("flaml", ("flaml",)),
    ("scikit-learn", ("scikit-learn",)),
    ("lightgbm", ("lightgbm",)),
    ("xgboost", ("xgboost", "xgboost-cpu")),
    ("numpy", ("numpy",)),
    ("pandas", ("pandas",)),
    ("pyarrow", ("pyarrow",)),
    ("joblib", ("joblib",)),
)


def library_versions() -> dict[str, str]:
    """Return the installed releases that a pickled model depends on, by library name."""
    libs = {"python": platform.python_version()}
    for name, dists in _DISTRIBUTIONS:
        for dist in dists:
            try:
                libs[name] = md.version(dist)
                break
            except md.PackageNotFoundError:
                continue
    return libs


@dataclass(frozen=True)
class Compatibility:
    """The outcome of :func:`compare`: reasons to refuse, and differences to warn about."""

    refused: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused


def _release(text: str) -> tuple[int, ...]:
    parts = []
    for piece in str(text).split(".")[:3]:
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def compare(trained: dict[str, str] | None, installed: dict[str, str]) -> Compatibility:
    """Decide whether releases ``installed`` may unpickle a model trained with ``trained``.

    Parameters
    ----------
    trained : dict or None
        ``metadata.json`` ``libraries`` of the version; None for a version written before
        they were recorded (loaded, with a warning).
    installed : dict
        :func:`library_versions` of this process.
    """
    if not trained:
        return Compatibility(
            warnings=["the version records no library versions; loading it unchecked"]
        )
    refused: list[str] = []
    warnings: list[str] = []
    for lib, strict in MUST_MATCH.items():
        then, now = trained.get(lib), installed.get(lib)
        if not then or not now or then == now:
            continue
        a, b = _release(then), _release(now)
        what = f"{lib}: the version was trained with {then}, this image has {now}"
        if a[:strict] != b[:strict]:
            first = next(
                (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), strict - 1
            )
            part = _PART_NAMES[min(first, strict - 1)]
            refused.append(f"{what} (a pickle does not survive a {part} release)")
        elif a != b:
            warnings.append(f"{what} (known to load)")
    return Compatibility(refused=refused, warnings=warnings)
