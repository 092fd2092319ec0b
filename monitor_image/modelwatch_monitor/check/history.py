"""The history section of the report: the last checks of a model, from the store.

Each check leaves ``<model>/reports/<id>/report.json``; this module reads the last
:data:`MAX_CHECKS` of them and plots, over those checks, the drift share, the realized
metric and the estimated metric with its band, with the retrains (the ``createdAt`` of
each ``versions/<N>/metadata.json``) and the rollouts (a change of the version that
served the window) marked; and, per categorical feature, the category shares of each
check as stacked bars. Plots are inline SVG, like the rest of the report.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from modelwatch_monitor import contract
from modelwatch_monitor.check.drift import Counts

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


def _time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return contract.parse_timestamp(text, "created")
    except contract.ContractError:
        return None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def point_of(report: Mapping[str, Any]) -> Point:
    """Read one ``report.json`` document (missing fields are None)."""
    perf = report.get("performance") or {}
    metric = perf.get("metric") or {}
    estimated = report.get("estimated") or {}
    version = report.get("serving_version")
    return Point(
        report_id=str(report.get("report_id", "")),
        created=_time(report.get("created")),
        drift_share=_float(report.get("drift_share")),
        metric=metric.get("name") or estimated.get("name"),
        value=_float(metric.get("value")),
        estimate=_float(estimated.get("value")),
        lower=_float(estimated.get("lower")),
        upper=_float(estimated.get("upper")),
        serving_version=int(version) if isinstance(version, int) else None,
        categories={
            str(k): {str(c): float(s) for c, s in v.items()}
            for k, v in (report.get("categories") or {}).items()
            if isinstance(v, Mapping)
        },
    )


def category_shares(
    summaries: Mapping[str, Any], limit: int = MAX_CATEGORIES
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
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(contract.reports_dir(store, model))
        if not fs.isdir(root):
            return []
        ids = sorted(
            p.rstrip("/").rsplit("/", 1)[-1]
            for p in fs.ls(root, detail=False)
            if not p.rstrip("/").rsplit("/", 1)[-1].startswith(".")
        )
    except OSError as exc:
        log.warning("cannot list the past reports: %s", exc)
        return []
    ids = [i for i in ids if i != exclude][-limit:]
    points = []
    for report_id in ids:
        try:
            with fs.open(f"{root}/{report_id}/{contract.REPORT_JSON}", "r") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            points.append(point_of(doc))
    return points


def retrain_times(store: str, model: str) -> list[tuple[int, dt.datetime]]:
    """``(version, createdAt)`` of every published version, oldest first."""
    import fsspec

    out = []
    try:
        fs, root = fsspec.core.url_to_fs(contract.versions_dir(store, model))
        if not fs.isdir(root):
            return []
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)]
        for name in names:
            if not name.isdigit():
                continue
            try:
                with fs.open(f"{root}/{name}/{contract.METADATA_FILE}", "r") as fh:
                    created = _time(json.load(fh).get("createdAt"))
            except (OSError, ValueError, AttributeError):
                continue
            if created is not None:
                out.append((int(name), created))
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
) -> str:
    """An inline SVG of one or more series over the checks, with an optional shaded band
    and vertical markers."""
    n = max((len(v) for _, v, _ in series), default=0)
    values = [v for _, vs, _ in series for v in vs if v is not None]
    if band:
        values += [v for vs in band for v in vs if v is not None]
    if not n or not values:
        return ""
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    span = hi - lo

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v - lo) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 24}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{PAD}" y="14" font-size="12">{html.escape(title)}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#333"/>',
        f'<text x="2" y="{y(hi) + 4:.1f}" font-size="10">{hi:.3g}</text>',
        f'<text x="2" y="{y(lo) + 4:.1f}" font-size="10">{lo:.3g}</text>',
    ]
    if band:
        low, up = band
        pts = [
            (i, a, b)
            for i, (a, b) in enumerate(zip(low, up, strict=True))
            if a is not None and b is not None
        ]
        if pts:
            upper = " ".join(f"{_x(i, n):.1f},{y(b):.1f}" for i, _, b in pts)
            lower = " ".join(f"{_x(i, n):.1f},{y(a):.1f}" for i, a, _ in reversed(pts))
            parts.append(
                f'<polygon points="{upper} {lower}" fill="#f58518" opacity="0.18">'
                "<title>band of the estimate</title></polygon>"
            )
    for m in marks:
        x = _x(m.x, n)
        parts.append(
            f'<line x1="{x:.1f}" y1="{PAD - 8}" x2="{x:.1f}" y2="{HEIGHT - PAD}" '
            f'stroke="{m.color}" stroke-dasharray="4 3"><title>{html.escape(m.label)}</title>'
            f'</line><text x="{x + 2:.1f}" y="{PAD - 10}" font-size="9" fill="{m.color}">'
            f"{html.escape(m.label)}</text>"
        )
    legend_x = PAD
    for name, vs, color in series:
        pts2 = [(i, v) for i, v in enumerate(vs) if v is not None]
        if len(pts2) > 1:
            path = " ".join(f"{_x(i, n):.1f},{y(v):.1f}" for i, v in pts2)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}"/>')
        for i, v in pts2:
            tip = labels[i] if i < len(labels) else str(i)
            parts.append(
                f'<circle cx="{_x(i, n):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}">'
                f"<title>{html.escape(tip)}: {html.escape(name)} {v:.4g}</title></circle>"
            )
        parts.append(
            f'<rect x="{legend_x}" y="{HEIGHT + 8}" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14}" y="{HEIGHT + 17}" font-size="11">'
            f"{html.escape(name)}</text>"
        )
        legend_x += 20 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def category_plot(name: str, points: Sequence[Point]) -> str:
    """Stacked bars of the category shares of feature ``name`` at each check."""
    shares = [p.categories.get(name) for p in points]
    if not any(shares):
        return ""
    cats: list[str] = []
    for s in shares:
        for c in s or {}:
            if c not in cats and c != OTHER:
                cats.append(c)
    cats = [*cats[: len(PALETTE) - 1], OTHER]
    n = len(points)
    bw = (WIDTH - 2 * PAD) / max(n, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 24}" '
        f'role="img" aria-label="{html.escape(name)} categories">',
        f'<text x="{PAD}" y="14" font-size="12">{html.escape(name)}: category shares</text>',
    ]
    for i, s in enumerate(shares):
        if not s:
            continue
        top = float(HEIGHT - PAD)
        known = sum(v for c, v in s.items() if c in cats and c != OTHER)
        for j, c in enumerate(cats):
            v = s.get(c, 0.0) if c != OTHER else max(1.0 - known, 0.0)
            h = (HEIGHT - 2 * PAD) * v
            top -= h
            parts.append(
                f'<rect x="{PAD + i * bw:.1f}" y="{top:.1f}" width="{max(bw - 1, 0.5):.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}"><title>'
                f"{html.escape(points[i].report_id)}: {html.escape(c)} {v:.3f}</title></rect>"
            )
    x = PAD
    for j, c in enumerate(cats):
        parts.append(
            f'<rect x="{x}" y="{HEIGHT + 8}" width="10" height="10" '
            f'fill="{PALETTE[j % len(PALETTE)]}"/><text x="{x + 14}" y="{HEIGHT + 17}" '
            f'font-size="11">{html.escape(c[:16])}</text>'
        )
        x += 24 + 7 * min(len(c), 16)
    parts.append("</svg>")
    return "".join(parts)


def render_history(
    points: Sequence[Point], retrains: Sequence[tuple[int, dt.datetime]] = ()
) -> str:
    """The HTML of the history section; empty with fewer than two checks."""
    if len(points) < 2:
        return ""
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
    perf = line_plot(
        f"{metric}: realized and estimated (shaded: the estimate's band)",
        [
            ("realized", [p.value for p in points], PALETTE[0]),
            ("estimated", [p.estimate for p in points], PALETTE[1]),
        ],
        band=([p.lower for p in points], [p.upper for p in points]),
        marks=marks,
        labels=labels,
    )
    if perf:
        figures.append(perf)
    categorical = sorted({c for p in points for c in p.categories})[:MAX_CATEGORICAL_PLOTS]
    figures += [category_plot(c, points) for c in categorical]
    body = "".join(f"<figure>{f}</figure>" for f in figures if f)
    return (
        f"<h2>History</h2><p>The last {len(points)} checks, oldest first; dashed lines mark "
        "retrains and rollouts. Estimated values are estimates from the model's "
        f"probabilities, not measurements.</p>{body}"
    )
