"""The history section of the report: the last checks of a model, from the store.

Each check leaves ``<model>/reports/<id>/report.json``; this module reads the last
:data:`MAX_CHECKS` of them and plots, over those checks, the drift share, the realized
metric and the estimated metric with its band, with the retrains (the ``createdAt`` of
each ``versions/<N>/metadata.json``) and the rollouts (a change of the version that
served the window) marked; and, per categorical feature, the category shares of each
check as stacked bars. Plots are inline SVG, like the rest of the report: the plot
functions return :class:`~modelwatch_monitor.check.svg.Figure` data, which
``templates/history.html`` draws.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from modelwatch_monitor import contract
from modelwatch_monitor.check import rendering
from modelwatch_monitor.check.documents import section
from modelwatch_monitor.check.drift import Counts
from modelwatch_monitor.check.svg import Circle, Figure, Line, Polygon, Polyline, Rect, Shape, Text
from modelwatch_monitor.store.listing import list_dirs

log = logging.getLogger(__name__)

MAX_CHECKS: Final = 30
MAX_CATEGORIES: Final = 8
MAX_CATEGORICAL_PLOTS: Final = 10
WIDTH, HEIGHT, PAD = 560, 180, 34
PALETTE: Final = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6")
OTHER: Final = "(other)"


@dataclass(frozen=True)
class Point:
    """What the history keeps of one check."""

    report_id: str
    created: dt.datetime | None
    drift_share: float | None
    metric: str | None = None
    value: float | None = None
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    serving_version: int | None = None
    categories: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


def _time(text: object) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return contract.parse_timestamp(text, "created")
    except contract.ContractError:
        return None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def point_of(report: Mapping[str, object]) -> Point:
    """Read one ``report.json`` document (missing fields are None, and so are sections
    that are not objects)."""
    metric = section(section(report, "performance"), "metric")
    estimated = section(report, "estimated")
    version = report.get("serving_version")
    return Point(
        report_id=str(report.get("report_id", "")),
        created=_time(report.get("created")),
        drift_share=_float(report.get("drift_share")),
        metric=_str(metric.get("name")) or _str(estimated.get("name")),
        value=_float(metric.get("value")),
        estimate=_float(estimated.get("value")),
        lower=_float(estimated.get("lower")),
        upper=_float(estimated.get("upper")),
        serving_version=int(version) if isinstance(version, int) else None,
        categories={
            str(k): {str(c): float(s) for c, s in v.items()}
            for k, v in section(report, "categories").items()
            if isinstance(v, Mapping)
        },
    )


def category_shares(
    summaries: Mapping[str, object], limit: int = MAX_CATEGORIES
) -> dict[str, dict[str, float]]:
    """The ``limit`` most frequent categories of each categorical feature, as shares of
    its non-null rows; the rest summed as ``(other)``.

    >>> category_shares({"c": Counts({"a": 6, "b": 3, "z": 1})}, limit=2)
    {'c': {'a': 0.6, 'b': 0.3, '(other)': 0.1}}
    """
    out: dict[str, dict[str, float]] = {}
    for name, summary in summaries.items():
        if not isinstance(summary, Counts) or summary.n <= 0:
            continue
        top = sorted(summary.counts.items(), key=lambda kv: -kv[1])
        shares = {str(c): round(n / summary.n, 6) for c, n in top[:limit]}
        rest = sum(n for _, n in top[limit:])
        if rest:
            shares[OTHER] = round(rest / summary.n, 6)
        out[name] = shares
    return out


def load_history(
    store: str, model: str, *, limit: int = MAX_CHECKS, exclude: str | None = None
) -> list[Point]:
    """The last ``limit`` checks of ``model`` (oldest first), without report ``exclude``.

    Unreadable reports are skipped (a history is a view, never a reason to fail a check).
    """
    import fsspec  # deferred: fsspec pulls in its registry of filesystems

    try:
        folders = list_dirs(contract.reports_dir(store, model))
    except OSError as exc:
        log.warning("cannot list the past reports: %s", exc)
        return []
    reports = [f for f in folders if not f.name.startswith(".") and f.name != exclude][-limit:]
    points = []
    for report in reports:
        try:
            with fsspec.open(f"{report.uri}/{contract.REPORT_JSON}", "r") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            points.append(point_of(doc))
    return points


def retrain_times(store: str, model: str) -> list[tuple[int, dt.datetime]]:
    """``(version, createdAt)`` of every published version, oldest first."""
    import fsspec  # deferred: fsspec pulls in its registry of filesystems

    out = []
    try:
        for version in list_dirs(contract.versions_dir(store, model)):
            if not version.name.isdigit():
                continue
            try:
                with fsspec.open(f"{version.uri}/{contract.METADATA_FILE}", "r") as fh:
                    created = _time(json.load(fh).get("createdAt"))
            except (OSError, ValueError, AttributeError):
                continue
            if created is not None:
                out.append((int(version.name), created))
    except OSError as exc:
        log.warning("cannot list the versions: %s", exc)
    return sorted(out, key=lambda vc: vc[1])


# ---------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    """A vertical line between checks: ``x`` in check positions (0 = first check)."""

    x: float
    label: str
    color: str


def markers(points: Sequence[Point], retrains: Sequence[tuple[int, dt.datetime]]) -> list[Marker]:
    """Retrains (a version created between two checks) and rollouts (the serving version
    changed between two checks), placed half-way between the checks."""
    out: list[Marker] = []
    times = [p.created for p in points]
    for version, created in retrains:
        after = [i for i, t in enumerate(times) if t is not None and t > created]
        before = [i for i, t in enumerate(times) if t is not None and t <= created]
        if after and before:
            out.append(Marker(after[0] - 0.5, f"retrain v{version}", "#9467bd"))
    for i in range(1, len(points)):
        prev, cur = points[i - 1].serving_version, points[i].serving_version
        if prev is not None and cur is not None and prev != cur:
            out.append(Marker(i - 0.35, f"v{cur} serves", "#2ca02c"))
    return out


def _x(i: float, n: int) -> float:
    return PAD + (WIDTH - 2 * PAD) * (i / max(n - 1, 1))


def line_plot(
    title: str,
    series: Sequence[tuple[str, Sequence[float | None], str]],
    *,
    band: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
    marks: Sequence[Marker] = (),
    labels: Sequence[str] = (),
) -> Figure | None:
    """One or more series ``(name, values, color)`` over the checks, with an optional
    shaded band ``(lower, upper)`` and vertical markers; None when there is no value."""
    n = max((len(v) for _, v, _ in series), default=0)
    values = [v for _, vs, _ in series for v in vs if v is not None]
    if band:
        values += [v for vs in band for v in vs if v is not None]
    if not n or not values:
        return None
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    span = hi - lo

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v - lo) / span

    shapes: list[Shape] = [
        Text(PAD, 14, title, 12),
        Line(PAD, HEIGHT - PAD, WIDTH - PAD, HEIGHT - PAD, "#333"),
        Text(2, y(hi) + 4, f"{hi:.3g}", 10),
        Text(2, y(lo) + 4, f"{lo:.3g}", 10),
    ]
    if band:
        low, up = band
        pts = [
            (i, a, b)
            for i, (a, b) in enumerate(zip(low, up, strict=True))
            if a is not None and b is not None
        ]
        if pts:
            outline = [(_x(i, n), y(b)) for i, _, b in pts]
            outline += [(_x(i, n), y(a)) for i, a, _ in reversed(pts)]
            shapes.append(
                Polygon(tuple(outline), "#f58518", opacity=0.18, tip="band of the estimate")
            )
    for m in marks:
        x = _x(m.x, n)
        shapes.append(Line(x, PAD - 8, x, HEIGHT - PAD, m.color, dash="4 3", tip=m.label))
        shapes.append(Text(x + 2, PAD - 10, m.label, 9, fill=m.color))
    legend_x = PAD
    for name, vs, color in series:
        dots = [(i, v) for i, v in enumerate(vs) if v is not None]
        if len(dots) > 1:
            shapes.append(Polyline(tuple((_x(i, n), y(v)) for i, v in dots), color))
        for i, v in dots:
            tip = labels[i] if i < len(labels) else str(i)
            shapes.append(Circle(_x(i, n), y(v), 2.5, color, tip=f"{tip}: {name} {v:.4g}"))
        shapes.append(Rect(legend_x, HEIGHT + 8, 10, 10, color))
        shapes.append(Text(legend_x + 14, HEIGHT + 17, name, 11))
        legend_x += 20 + 7 * len(name)
    return Figure(WIDTH, HEIGHT + 24, title, shapes)


def category_plot(name: str, points: Sequence[Point]) -> Figure | None:
    """Stacked bars of the category shares of feature ``name`` at each check; None when
    no check has them."""
    shares = [p.categories.get(name) for p in points]
    if not any(shares):
        return None
    cats: list[str] = []
    for s in shares:
        for c in s or {}:
            if c not in cats and c != OTHER:
                cats.append(c)
    cats = [*cats[: len(PALETTE) - 1], OTHER]
    n = len(points)
    bw = (WIDTH - 2 * PAD) / max(n, 1)
    shapes: list[Shape] = [Text(PAD, 14, f"{name}: category shares", 12)]
    for i, s in enumerate(shares):
        if not s:
            continue
        top = float(HEIGHT - PAD)
        known = sum(v for c, v in s.items() if c in cats and c != OTHER)
        for j, c in enumerate(cats):
            v = s.get(c, 0.0) if c != OTHER else max(1.0 - known, 0.0)
            h = (HEIGHT - 2 * PAD) * v
            top -= h
            shapes.append(
                Rect(
                    PAD + i * bw,
                    top,
                    max(bw - 1, 0.5),
                    h,
                    PALETTE[j % len(PALETTE)],
                    tip=f"{points[i].report_id}: {c} {v:.3f}",
                )
            )
    x = PAD
    for j, c in enumerate(cats):
        shapes.append(Rect(x, HEIGHT + 8, 10, 10, PALETTE[j % len(PALETTE)]))
        shapes.append(Text(x + 14, HEIGHT + 17, c[:16], 11))
        x += 24 + 7 * min(len(c), 16)
    return Figure(WIDTH, HEIGHT + 24, f"{name} categories", shapes)


# ---------------------------------------------------------------------------
# The section
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HistorySection:
    """What the report's history section shows: how many checks, and their plots."""

    checks: int
    figures: Sequence[Figure]


def history_section(
    points: Sequence[Point], retrains: Sequence[tuple[int, dt.datetime]] = ()
) -> HistorySection | None:
    """The plots of the history section; None with fewer than two checks."""
    if len(points) < 2:
        return None
    marks = markers(points, retrains)
    labels = [p.report_id for p in points]
    figures = [
        line_plot(
            "drift share",
            [("drift share", [p.drift_share for p in points], PALETTE[0])],
            marks=marks,
            labels=labels,
        )
    ]
    names = {p.metric for p in points if p.metric}
    metric = sorted(names)[0] if len(names) == 1 else "metric"
    figures.append(
        line_plot(
            f"{metric}: realized and estimated (shaded: the estimate's band)",
            [
                ("realized", [p.value for p in points], PALETTE[0]),
                ("estimated", [p.estimate for p in points], PALETTE[1]),
            ],
            band=([p.lower for p in points], [p.upper for p in points]),
            marks=marks,
            labels=labels,
        )
    )
    categorical = sorted({c for p in points for c in p.categories})[:MAX_CATEGORICAL_PLOTS]
    figures += [category_plot(c, points) for c in categorical]
    return HistorySection(len(points), [f for f in figures if f is not None])


def render_history(
    points: Sequence[Point], retrains: Sequence[tuple[int, dt.datetime]] = ()
) -> str:
    """The HTML of the history section; empty with fewer than two checks."""
    section = history_section(points, retrains)
    return "" if section is None else rendering.call_macro("history.html", "section", section)
