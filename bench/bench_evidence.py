"""The live decision by simulation: false promotions, and labeled rows to decide.

Each run is one evaluation: every period (a check) brings ``BENCH_EVIDENCE_PERIOD_ROWS``
(default 200) new labeled rows, the comparison is updated with them and
:func:`modelwatch_monitor.evidence.decide` runs, until it promotes, aborts or reaches
``BENCH_EVIDENCE_PERIODS`` (default 250) checks. ``BENCH_EVIDENCE_RUNS`` (default 1,000)
runs per scenario, seeded.

- **paired** (shadow): both versions score every row. The champion's accuracy is 0.80;
  their correctness is joined so that a share ``discordance`` of rows (default 0.10) has
  one version right and the other wrong, as two models of one task mostly agree.
- **unpaired** (canary): each row goes to one version, half each (``weight`` 50%, the
  fastest split; also 10%), compared by the asymptotic two-sample mixture, or with
  ``exact`` by two betting sequences (nonasymptotic).

Figures per scenario: the share of runs promoted, aborted and undecided, and the labeled
rows at the decision (median and p90 over the runs that decided it; paired counts pairs,
unpaired counts both versions' rows). Targets: false promotions with no true difference
at most ``alpha`` = 5% while looking after every period. For contrast, ``naive`` is a
fixed-sample z-test (one-sided 2.5% each way) looked at after every period in the same runs.
Thresholds are the most eager: ``minImprovement`` and ``maxDegradation`` 0.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelwatch_monitor.evidence import Bounds, Evidence, decide
from modelwatch_monitor.evidence.comparing import Paired, Unpaired

RUNS = int(os.environ.get("BENCH_EVIDENCE_RUNS", 1000))
PERIOD_ROWS = int(os.environ.get("BENCH_EVIDENCE_PERIOD_ROWS", 200))
PERIODS = int(os.environ.get("BENCH_EVIDENCE_PERIODS", 250))
ALPHA = 0.05
BASE_ACCURACY = 0.80
BOUNDS = Bounds(alpha=ALPHA, min_improvement=0.0, max_degradation=0.0, max_duration_seconds=1e12)


@dataclass(frozen=True)
class Scenario:
    """One simulated evaluation."""

    paired: bool
    delta: float  # true challenger accuracy - champion accuracy
    discordance: float = 0.10  # paired only
    weight: float = 0.5  # unpaired only: the challenger's share of rows
    exact: bool = False  # unpaired only: two betting sequences instead of the mixture


def _rows(s: Scenario, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows: champion and challenger correctness (paired), or each one's rows."""
    old_p, new_p = BASE_ACCURACY, BASE_ACCURACY + s.delta
    if s.paired:
        only_new = (s.discordance + s.delta) / 2
        only_old = (s.discordance - s.delta) / 2
        both = new_p - only_new
        u = rng.uniform(size=n)
        new = u < both + only_new
        old = (u < both) | ((u >= both + only_new) & (u < both + only_new + only_old))
        return old.astype(float), new.astype(float)
    to_new = rng.uniform(size=n) < s.weight
    correct = rng.uniform(size=n) < np.where(to_new, new_p, old_p)
    return correct[~to_new].astype(float), correct[to_new].astype(float)


class _Naive:
    """A fixed-sample z-test of ``new - old`` accuracy, from running sums."""

    def __init__(self, paired: bool) -> None:
        self.paired = paired
        self.sums = np.zeros(6)  # paired: n, sum d, sum d^2; unpaired: n, sum per version

    def update(self, old: np.ndarray, new: np.ndarray) -> None:
        if self.paired:
            d = new - old
            self.sums[:3] += (d.size, d.sum(), (d**2).sum())
        else:
            self.sums[:4] += (old.size, old.sum(), new.size, new.sum())

    def z(self) -> float:
        if self.paired:
            n, s1, s2 = self.sums[:3]
            var = (s2 - s1**2 / n) / (n - 1)
            return float(s1 / n / math.sqrt(var / n)) if var > 0 else 0.0
        na, sa, nb, sb = self.sums[:4]
        pa, pb = sa / na, sb / nb
        se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
        return float((pb - pa) / se) if se > 0 else 0.0


def run_one(
    s: Scenario, rng: np.random.Generator, *, periods: int, period_rows: int
) -> tuple[str, int, str]:
    """One evaluation: ``(action, labeled rows at the decision, naive action)``."""
    cmp: Paired | Unpaired = (
        Paired.start("accuracy", alpha=ALPHA)
        if s.paired
        else Unpaired.start("accuracy", alpha=ALPHA, exact=s.exact)
    )
    test = _Naive(s.paired)
    naive = "Continue"
    for _ in range(periods):
        old, new = _rows(s, period_rows, rng)
        cmp = cmp.update(old, new)
        test.update(old, new)
        if naive == "Continue":
            z = test.z()
            naive = "Promote" if z > 1.96 else "Abort" if z < -1.96 else "Continue"
        comparison = cmp.comparison()
        decision = decide(Evidence(labeled=comparison, rows=comparison.rows), BOUNDS)
        if decision.action != "Continue":
            return decision.action, comparison.rows, naive
    return "Continue", cmp.comparison().rows, naive


def simulate(
    s: Scenario,
    *,
    runs: int,
    seed: int,
    periods: int = PERIODS,
    period_rows: int = PERIOD_ROWS,
) -> dict[str, Any]:
    """The figures of ``runs`` evaluations of ``s``, each of up to ``periods`` checks."""
    rng = np.random.default_rng(seed)
    outcomes = [run_one(s, rng, periods=periods, period_rows=period_rows) for _ in range(runs)]

    def share(action: str, index: int = 0) -> float:
        return round(sum(o[index] == action for o in outcomes) / runs, 4)

    figures: dict[str, Any] = {
        "runs": runs,
        "promoted": share("Promote"),
        "aborted": share("Abort"),
        "undecided": share("Continue"),
        "naive_promoted": share("Promote", 2),
        "naive_aborted": share("Abort", 2),
    }
    for action, key in (("Promote", "rows_to_promote"), ("Abort", "rows_to_abort")):
        rows = [o[1] for o in outcomes if o[0] == action]
        if rows:
            figures[key] = {
                "median": int(np.median(rows)),
                "p90": int(np.percentile(rows, 90)),
                "decided_share": round(len(rows) / runs, 4),
            }
    return figures


SCENARIOS = {
    "null_paired": Scenario(paired=True, delta=0.0),
    "null_unpaired": Scenario(paired=False, delta=0.0),
    "null_unpaired_weight_0.10": Scenario(paired=False, delta=0.0, weight=0.1),
    "null_unpaired_exact": Scenario(paired=False, delta=0.0, exact=True),
    "better_0.03_paired": Scenario(paired=True, delta=0.03),
    "better_0.03_paired_discordance_0.20": Scenario(paired=True, delta=0.03, discordance=0.20),
    "better_0.03_unpaired": Scenario(paired=False, delta=0.03),
    "better_0.03_unpaired_weight_0.10": Scenario(paired=False, delta=0.03, weight=0.1),
    "better_0.03_unpaired_exact": Scenario(paired=False, delta=0.03, exact=True),
    "worse_0.05_paired": Scenario(paired=True, delta=-0.05),
    "worse_0.05_unpaired": Scenario(paired=False, delta=-0.05),
    "worse_0.05_unpaired_exact": Scenario(paired=False, delta=-0.05, exact=True),
}


def main() -> dict[str, Any]:
    figures: dict[str, Any] = {
        "alpha": ALPHA,
        "period_rows": PERIOD_ROWS,
        "periods": PERIODS,
        "base_accuracy": BASE_ACCURACY,
    }
    for i, (name, scenario) in enumerate(SCENARIOS.items()):
        start = time.perf_counter()
        figures[name] = simulate(scenario, runs=RUNS, seed=1000 + i)
        figures[name]["seconds"] = round(time.perf_counter() - start, 1)
    null = [v["promoted"] for k, v in figures.items() if k.startswith("null_")]
    figures["false_promotions_max"] = max(null)
    figures["false_promotions_target_met"] = max(null) <= ALPHA
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
