"""What the monitoring tests share: the tools, the metric catalogue, PromQL name extraction."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

from prometheus_client import CollectorRegistry, Metric

from modelwatch_monitor.serve.metrics import Metrics
from modelwatch_operator import metrics as operator_metrics
from tests.conftest import REPO

MONITORING = REPO / "manifests" / "monitoring"
RULES = MONITORING / "modelwatch.rules.yaml"
RULES_TEST = MONITORING / "modelwatch.rules.test.yaml"
DASHBOARD = MONITORING / "dashboard.json"
CHART = REPO / "charts" / "modelwatch"

# Made by Prometheus itself for every target.
PROMETHEUS_SERIES = frozenset({"up"})

_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
     "offset", "bool", "inf", "nan"}
)  # fmt: skip


def _sample_names(registry: CollectorRegistry) -> set[str]:
    families: list[Metric] = list(registry.collect())
    return {s.name for f in families for s in f.samples}


def exported_metrics() -> frozenset[str]:
    """Every series name the operator and the model server export, with every label set.

    Labelled families have no samples until a child exists, so one child of each is made
    in a scratch copy of the families' names: the operator's families are read from their
    descriptions, the server's from a fresh :class:`Metrics` with one of each event.
    """
    names: set[str] = set()
    for family in (
        value
        for value in vars(operator_metrics).values()
        if hasattr(value, "_type") and hasattr(value, "_name")
    ):
        base = family._name
        kind = family._type
        if kind == "counter":
            names.add(f"{base}_total")
        elif kind == "histogram":
            names.update(f"{base}_{suffix}" for suffix in ("bucket", "sum", "count"))
        else:
            names.add(base)
    server = Metrics("m", "1")
    server.observe("/predict", 200, 0.01)
    server.error("internal")
    server.predicted(1)

    class _Logger:
        written_rows = written_files = dropped_rows = write_errors = buffered_rows = 0

    server.watch_logger(_Logger())  # type: ignore[arg-type]
    names |= {n for n in _sample_names(server.registry) if not n.endswith("_created")}
    return frozenset(names)


def known_metrics() -> frozenset[str]:
    """Exported series and Prometheus's own."""
    return exported_metrics() | PROMETHEUS_SERIES


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects (functions and labels left out)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text
    )  # label lists
    text = re.sub(r"\boffset\s+\S+", "", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = match.group(0)
        after = text[match.end() :].lstrip()
        before = text[: match.start()]
        if after.startswith("(") or word.lower() in _KEYWORDS:
            continue
        if re.search(r"[0-9.]$", before):  # the unit of a number such as 5m
            continue
        names.add(word)
    return names


def promtool() -> str | None:
    """The promtool binary, or None."""
    return shutil.which("promtool")


def helm() -> str | None:
    """The helm built by hack/build-helm.sh (``$HELM`` overrides), or None."""
    explicit = os.environ.get("HELM")
    if explicit:
        return explicit
    proc = subprocess.run(
        ["bash", str(REPO / "hack" / "build-helm.sh"), "--print-path"],
        capture_output=True,
        text=True,
        check=True,
    )
    path = pathlib.Path(proc.stdout.strip())
    return str(path) if path.is_file() else None
