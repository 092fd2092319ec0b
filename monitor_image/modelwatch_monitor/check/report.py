"""The check report: ``report.json`` and a self-contained ``report.html``.

The HTML has no external resources: a summary, the feature table, the data-quality
findings, the metrics, and one inline SVG plot per drifted feature (reference vs
current histogram on shared bins, or category frequencies).

Both files are written into a temporary folder beside the destination and renamed
into place, so a failed check never leaves a partial report.
"""

from __future__ import annotations

import html
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from modelwatch_monitor import contract
from modelwatch_monitor.check.drift import Counts, Distribution

N_BINS: Final = 30
MAX_PLOTS: Final = 20
MAX_BARS: Final = 15
WIDTH, HEIGHT, PAD = 360, 160, 28


def histogram(
    reference: Distribution, current: Distribution, n_bins: int = N_BINS
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Probabilities of both distributions on shared equal-width bins.

    The range runs from the lower 0.5% to the upper 99.5% quantile of both sides.

    Returns
    -------
    edges : ndarray of shape (n_bins + 1,)
    p_ref, p_cur : ndarray of shape (n_bins,)
    """
    lo = min(reference.quantiles([0.005])[0], current.quantiles([0.005])[0])
    hi = max(reference.quantiles([0.995])[0], current.quantiles([0.995])[0])
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, n_bins + 1)
    return edges, np.diff(reference.at(edges)), np.diff(current.at(edges))


def _svg_bars(
    labels: Sequence[str], p_ref: Sequence[float], p_cur: Sequence[float], title: str
) -> str:
    k = max(len(p_ref), 1)
    top = max([*p_ref, *p_cur, 1e-12])
    bw = (WIDTH - 2 * PAD) / k
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 30}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{PAD}" y="14" font-size="12">{html.escape(title)}</text>',
    ]
    for i, (a, b) in enumerate(zip(p_ref, p_cur, strict=True)):
        x = PAD + i * bw
        for j, (v, color) in enumerate(((a, "#4c78a8"), (b, "#f58518"))):
            h = (HEIGHT - 2 * PAD) * v / top
            parts.append(
                f'<rect x="{x + j * bw / 2:.1f}" y="{HEIGHT - PAD - h:.1f}" '
                f'width="{max(bw / 2 - 0.5, 0.5):.1f}" height="{h:.1f}" fill="{color}" '
                f'opacity="0.85"><title>{html.escape(labels[i])}: '
                f"{'reference' if j == 0 else 'current'} {v:.3f}</title></rect>"
            )
    parts.append(
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#333"/>'
    )
    if labels:
        parts.append(
            f'<text x="{PAD}" y="{HEIGHT - PAD + 14}" font-size="10">'
            f"{html.escape(labels[0])}</text>"
        )
        parts.append(
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 14}" font-size="10" '
            f'text-anchor="end">{html.escape(labels[-1])}</text>'
        )
    parts.append(
        f'<rect x="{PAD}" y="{HEIGHT + 6}" width="10" height="10" fill="#4c78a8"/>'
        f'<text x="{PAD + 14}" y="{HEIGHT + 15}" font-size="11">reference</text>'
        f'<rect x="{PAD + 90}" y="{HEIGHT + 6}" width="10" height="10" fill="#f58518"/>'
        f'<text x="{PAD + 104}" y="{HEIGHT + 15}" font-size="11">current</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def plot_feature(
    name: str, reference: Distribution | Counts, current: Distribution | Counts
) -> str:
    """Return an inline SVG comparing the reference and current distribution."""
    if isinstance(reference, Distribution) and isinstance(current, Distribution):
        edges, pr, pc = histogram(reference, current)
        labels = [f"{edges[i]:.4g}..{edges[i + 1]:.4g}" for i in range(len(pr))]
        labels[0], labels[-1] = f"{edges[0]:.4g}", f"{edges[-1]:.4g}"
        return _svg_bars(labels, pr.tolist(), pc.tolist(), name)
    if isinstance(reference, Counts) and isinstance(current, Counts):
        nr, nc = max(reference.n, 1), max(current.n, 1)
        cats = sorted(
            set(reference.counts) | set(current.counts),
            key=lambda c: -(reference.counts.get(c, 0) / nr + current.counts.get(c, 0) / nc),
        )[:MAX_BARS]
        return _svg_bars(
            cats,
            [reference.counts.get(c, 0) / nr for c in cats],
            [current.counts.get(c, 0) / nc for c in cats],
            name,
        )
    return ""


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def render_estimate(estimated: Mapping[str, Any] | None) -> str:
    """The estimated-performance paragraph (every figure marked as an estimate)."""
    if not estimated:
        return ""
    name = html.escape(str(estimated.get("name")))
    if estimated.get("value") is None:
        why = html.escape(str(estimated.get("undefinedReason") or "unknown"))
        return f"<h2>Estimated performance</h2><p>No estimate of {name}: {why}.</p>"
    level = estimated.get("level") or 0.95
    verdict = (
        "labels cover the window: the realized metric decides"
        if estimated.get("overridden")
        else f"degraded (the whole band): {_fmt(estimated.get('degraded'))}"
    )
    note = estimated.get("undefinedReason")
    return (
        f"<h2>Estimated performance</h2><p>Estimated {name} (an estimate from the model's "
        f"calibrated probabilities, not a measurement) = {_fmt(estimated['value'])}, "
        f"{level:.0%} band [{_fmt(estimated.get('lower'))}, {_fmt(estimated.get('upper'))}] "
        f"over {_fmt(estimated.get('rows'))} rows; baseline {_fmt(estimated.get('baseline'))}"
        f" ({_fmt(estimated.get('baselineSource'))}), relative change "
        f"{_fmt(estimated.get('relativeChange'))}; {verdict}"
        f"{f' ({html.escape(str(note))})' if note else ''}.</p>"
    )


def render_html(
    report: Mapping[str, Any], plots: Mapping[str, str], *, history_html: str = ""
) -> str:
    """Render the self-contained HTML report."""
    feats = report.get("features", [])
    rows = "".join(
        f'<tr class="{"drift" if f["drift"] else ""}"><td>{html.escape(f["name"])}</td>'
        f"<td>{f['type']}</td><td>{f['test']}</td><td>{_fmt(f['statistic'])}</td>"
        f"<td>{_fmt(f['p_value'])}</td><td>{_fmt(f.get('adjusted_p_value'))}</td>"
        f"<td>{_fmt(f.get('effect'))}</td><td>{_fmt(f['drift'])}</td></tr>"
        for f in feats
    )
    findings = (
        "".join(
            f"<li><b>{html.escape(q['kind'])}</b> {html.escape(q['message'])}</li>"
            for q in report.get("quality", [])
        )
        or "<li>none</li>"
    )
    perf = report.get("performance") or {}
    metric = perf.get("metric")
    perf_html = "<p>No labels joined; performance not computed.</p>"
    if metric:
        all_metrics = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{_fmt(v.get('value'))}</td>"
            f"<td>{_fmt(v.get('baseline'))}</td><td>{_fmt(v.get('relativeChange'))}</td>"
            f"<td>{_fmt(v.get('undefinedReason'))}</td></tr>"
            for k, v in perf.get("metrics", {}).items()
        )
        undefined = metric.get("undefinedReason")
        why = f" ({html.escape(undefined)})" if undefined else ""
        perf_html = (
            f"<p>{html.escape(metric['name'])} = {_fmt(metric['value'])}, baseline "
            f"{_fmt(metric['baseline'])} ({_fmt(metric.get('baselineSource'))}), "
            f"relative change {_fmt(metric['relativeChange'])}, "
            f"degraded: {_fmt(metric['degraded'])}"
            f"{why}"
            f"; {perf.get('labeled_rows', 0)} labelled rows.</p>"
            "<table><tr><th>metric</th><th>value</th><th>baseline</th><th>relative change</th>"
            "<th>undefined because</th></tr>"
            f"{all_metrics}</table>"
        )
    figures = (
        "".join(f"<figure>{svg}</figure>" for svg in plots.values()) or "<p>No drifted feature.</p>"
    )
    serving_html = _serving_html(report.get("serving") or {})
    s = report.get("settings", {})
    verdict = "DRIFT" if report.get("dataset_drift") else "no drift"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>modelwatch report {html.escape(str(report.get("report_id", "")))}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;
text-align:left}}tr.drift{{background:#fde2e1}}figure{{display:inline-block;margin:0.5em}}
.verdict{{font-size:1.3em;font-weight:bold}}
</style></head><body>
<h1>modelwatch check: {html.escape(str(report.get("model") or report.get("current", "")))}</h1>
<p class="verdict">Dataset: {verdict} &mdash; {report.get("n_drifted", 0)} of
{report.get("n_features", 0)} features drifted (share {_fmt(report.get("drift_share"))},
threshold {_fmt(s.get("driftShareThreshold"))}).</p>
<p>Reference rows: {report.get("rows", {}).get("reference")}; current rows:
{report.get("rows", {}).get("current")}; window: {_fmt(report.get("window"))};
mode: {_fmt(report.get("mode"))}. Tests: numeric {_fmt(s.get("numericTest"))},
categorical {_fmt(s.get("categoricalTest"))}; p-value threshold
{_fmt(s.get("pValueThreshold"))} with {_fmt(s.get("correction"))} correction;
minimum effect size {_fmt(s.get("minEffectSize"))}.</p>
{serving_html}<h2>Features</h2>
<table><tr><th>feature</th><th>type</th><th>test</th><th>statistic</th><th>p-value</th>
<th>adjusted p</th><th>effect</th><th>drift</th></tr>{rows}</table>
<h2>Drifted features</h2>{figures}
<h2>Data quality</h2><ul>{findings}</ul>
<h2>Performance</h2>{perf_html}
{render_estimate(report.get("estimated"))}
{history_html}
<p><small>Generated {html.escape(str(report.get("created", "")))} by modelwatch.</small></p>
</body></html>
"""


def _serving_html(serving: Mapping[str, Any]) -> str:
    """The version judged and, as history only, what other versions served in the window."""
    if not serving:
        return ""
    version = serving.get("version")
    who = f"version {version}" if version is not None else "the model"
    basis = {
        "model_version": "its rows by the model_version column",
        "servingSince": f"the rows since it began serving at {_fmt(serving.get('since'))}",
        "window": "every row of the window (the data tells no versions apart)",
    }.get(str(serving.get("basis")), _fmt(serving.get("basis")))
    history = "".join(
        f"<tr><td>{_fmt(h.get('version'))}</td><td>{_fmt(h.get('rows'))}</td>"
        f"<td>{'judged' if h.get('judged') else 'history only'}</td></tr>"
        for h in serving.get("byVersion") or []
    )
    table = (
        "<table><tr><th>model version</th><th>rows in the window</th><th>role</th></tr>"
        f"{history}</table>"
        if history
        else ""
    )
    return (
        f"<h2>Serving version</h2><p>This check judges {html.escape(who)}: "
        f"{html.escape(basis)}, {_fmt(serving.get('rows'))} rows (a verdict needs "
        f"{_fmt(serving.get('minRows'))}). {_fmt(serving.get('olderRows'))} rows in the "
        "window that other versions served are history, not part of the verdict.</p>"
        f"{table}\n"
    )


def write_report(
    destination: str,
    report: Mapping[str, Any],
    summaries: Mapping[str, tuple[Distribution | Counts, Distribution | Counts]],
    *,
    history_html: str = "",
) -> str:
    """Write ``report.json`` and ``report.html`` into ``destination`` atomically.

    Parameters
    ----------
    destination : str
        The report folder (path or fsspec URI); it must not exist yet.
    report : mapping
        The JSON-serialisable report.
    summaries : mapping of feature name to (reference, current) summaries
        Plotted for the drifted features (at most 20).
    history_html : str, optional
        The history section (:func:`modelwatch_monitor.check.history.render_history`).

    Returns
    -------
    str
        ``destination``.
    """
    import fsspec

    drifted = [f["name"] for f in report.get("features", []) if f.get("drift")][:MAX_PLOTS]
    plots = {n: plot_feature(n, *summaries[n]) for n in drifted if n in summaries}
    page = render_html(report, plots, history_html=history_html)
    body = json.dumps(clean(report), indent=1, allow_nan=False)
    fs, path = fsspec.core.url_to_fs(destination)
    path = path.rstrip("/")
    if not _is_local(fs):
        # An object store has no rename, and each PUT is atomic: the page first, then
        # report.json, which readers (the history) take as the report's presence.
        fs.pipe_file(f"{path}/{contract.REPORT_HTML}", page.encode())
        fs.pipe_file(f"{path}/{contract.REPORT_JSON}", body.encode())
        return destination
    parent, _, leaf = path.rpartition("/")
    tmp = f"{parent}/.tmp-{leaf}-{uuid.uuid4().hex[:8]}" if parent else f".tmp-{leaf}"
    if parent:
        fs.makedirs(parent, exist_ok=True)
    fs.makedirs(tmp, exist_ok=True)
    try:
        with fs.open(f"{tmp}/{contract.REPORT_JSON}", "w") as fh:
            fh.write(body)
        with fs.open(f"{tmp}/{contract.REPORT_HTML}", "w") as fh:
            fh.write(page)
        if fs.exists(path):
            # An existing output folder (--output DIR): move both files in.
            for name in (contract.REPORT_HTML, contract.REPORT_JSON):
                os.replace(f"{tmp}/{name}", f"{path}/{name}")
            fs.rm(tmp, recursive=True)
        else:
            os.rename(tmp, path)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp, recursive=True)
        raise
    return destination


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return bool({"file", "local"} & set(protocol))


def clean(o: Any) -> Any:
    """Make ``o`` strict JSON: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(o, Mapping):
        return {str(k): clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [clean(v) for v in o]
    if isinstance(o, np.ndarray):
        return [clean(v) for v in o.tolist()]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not np.isfinite(o):
        return None
    return o
