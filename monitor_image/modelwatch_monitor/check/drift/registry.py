"""The drift test registry: names in ``spec.drift`` map to :class:`DriftTest` descriptors."""

from __future__ import annotations

from modelwatch_monitor.check.drift._base import DriftTest, FeatureType
from modelwatch_monitor.check.drift.chi2 import chi2
from modelwatch_monitor.check.drift.jensenshannon import jensenshannon
from modelwatch_monitor.check.drift.ks import ks
from modelwatch_monitor.check.drift.psi import psi
from modelwatch_monitor.check.drift.wasserstein import wasserstein

_TESTS: dict[str, DriftTest] = {}


def register(test: DriftTest) -> DriftTest:
    """Add a test to the registry (a later registration under the same name wins)."""
    _TESTS[test.name] = test
    return test


def get_test(name: str, feature_type: FeatureType | None = None) -> DriftTest:
    """Return the registered test ``name``; raise ValueError for an unknown name or type."""
    try:
        test = _TESTS[name]
    except KeyError:
        raise ValueError(
            f"The drift test must be one of {sorted(_TESTS)}. Got {name!r} instead."
        ) from None
    if feature_type is not None and feature_type not in test.feature_types:
        raise ValueError(
            f"The drift test {name!r} does not accept {feature_type} features; it accepts "
            f"{', '.join(test.feature_types)}."
        )
    return test


def available(feature_type: FeatureType | None = None) -> list[str]:
    """Return the registered names, optionally only those for one feature type."""
    return sorted(
        n for n, t in _TESTS.items() if feature_type is None or feature_type in t.feature_types
    )


register(DriftTest("ks", ("numeric",), ks, has_pvalue=True, effect="KS distance D"))
register(
    DriftTest("chi2", ("categorical",), chi2, has_pvalue=True, effect="total variation distance")
)
register(
    DriftTest(
        "psi",
        ("numeric", "categorical"),
        psi,
        has_pvalue=False,
        effect="PSI",
        default_threshold=0.2,
    )
)
register(
    DriftTest(
        "jensenshannon",
        ("numeric", "categorical"),
        jensenshannon,
        has_pvalue=False,
        effect="Jensen-Shannon distance",
        default_threshold=0.1,
    )
)
register(
    DriftTest(
        "wasserstein",
        ("numeric",),
        wasserstein,
        has_pvalue=False,
        effect="Wasserstein-1 / reference std",
        default_threshold=0.1,
    )
)
