"""The check report: ``report.json`` and a self-contained ``report.html``.

The HTML has no external resources: a summary, the feature table, the data-quality
findings, the metrics, and one inline SVG plot per drifted feature (reference vs
current histogram on shared bins, or category frequencies). It is rendered from the
package's templates (``templates/report.html``), every value escaped
(:mod:`modelwatch_monitor.check.rendering`).

Both files are written into a temporary folder beside the destination and renamed
into place, so a failed check never leaves a partial report.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final, overload

import numpy as np
from numpy.typing import NDArray

from modelwatch_monitor import contract
from modelwatch_monitor.check import rendering
from modelwatch_monitor.check.documents import entries, section
from modelwatch_monitor.check.drift import Counts, Distribution
from modelwatch_monitor.check.history import HistorySection
from modelwatch_monitor.check.svg import Figure, Line, Rect, Shape, Text

if TYPE_CHECKING:
    import fsspec

N_BINS: Final = 30
MAX_PLOTS: Final = 20
MAX_BARS: Final = 15
WIDTH, HEIGHT, PAD = 360, 160, 28
REFERENCE_COLOR: Final = "#4c78a8"
CURRENT_COLOR: Final = "#f58518"


def histogram(
    reference: Distribution, current: Distribution, n_bins: int = N_BINS
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
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


def bars(
    labels: Sequence[str], p_ref: Sequence[float], p_cur: Sequence[float], title: str
) -> Figure:
    """Reference and current probabilities side by side, one pair of bars per label."""
    k = max(len(p_ref), 1)
    top = max([*p_ref, *p_cur, 1e-12])
    bw = (WIDTH - 2 * PAD) / k
    shapes: list[Shape] = [Text(PAD, 14, title, 12)]
    for i, (a, b) in enumerate(zip(p_ref, p_cur, strict=True)):
        x = PAD + i * bw
        for j, (v, color) in enumerate(((a, REFERENCE_COLOR), (b, CURRENT_COLOR))):
            h = (HEIGHT - 2 * PAD) * v / top
            side = "reference" if j == 0 else "current"
            shapes.append(
                Rect(
                    x + j * bw / 2,
                    HEIGHT - PAD - h,
                    max(bw / 2 - 0.5, 0.5),
                    h,
                    color,
                    opacity=0.85,
                    tip=f"{labels[i]}: {side} {v:.3f}",
                )
            )
    shapes.append(Line(PAD, HEIGHT - PAD, WIDTH - PAD, HEIGHT - PAD, "#333"))
    if labels:
        shapes.append(Text(PAD, HEIGHT - PAD + 14, labels[0], 10))
        shapes.append(Text(WIDTH - PAD, HEIGHT - PAD + 14, labels[-1], 10, anchor="end"))
    shapes += [
        Rect(PAD, HEIGHT + 6, 10, 10, REFERENCE_COLOR),
        Text(PAD + 14, HEIGHT + 15, "reference", 11),
        Rect(PAD + 90, HEIGHT + 6, 10, 10, CURRENT_COLOR),
        Text(PAD + 104, HEIGHT + 15, "current", 11),
    ]
    return Figure(WIDTH, HEIGHT + 30, title, shapes)


def feature_figure(
    name: str, reference: Distribution | Counts, current: Distribution | Counts
) -> Figure | None:
    """The reference and current distribution of one feature: a histogram on shared bins
    (numeric) or the frequencies of the :data:`MAX_BARS` commonest categories; None when
    the two summaries are of different kinds."""
    if isinstance(reference, Distribution) and isinstance(current, Distribution):
        edges, pr, pc = histogram(reference, current)
        labels = [f"{edges[i]:.4g}..{edges[i + 1]:.4g}" for i in range(len(pr))]
        labels[0], labels[-1] = f"{edges[0]:.4g}", f"{edges[-1]:.4g}"
        return bars(labels, pr.tolist(), pc.tolist(), name)
    if isinstance(reference, Counts) and isinstance(current, Counts):
        nr, nc = max(reference.n, 1), max(current.n, 1)
        cats = sorted(
            set(reference.counts) | set(current.counts),
            key=lambda c: -(reference.counts.get(c, 0) / nr + current.counts.get(c, 0) / nc),
        )[:MAX_BARS]
        return bars(
            cats,
            [reference.counts.get(c, 0) / nr for c in cats],
            [current.counts.get(c, 0) / nc for c in cats],
            name,
        )
    return None


def plot_feature(
    name: str, reference: Distribution | Counts, current: Distribution | Counts
) -> str:
    """Return an inline SVG comparing the reference and current distribution."""
    figure = feature_figure(name, reference, current)
    return "" if figure is None else rendering.call_macro("svg.html", "figure", figure)


def serving_basis(serving: Mapping[str, object]) -> str:
    """How the check picked the rows of the version it judges, in words."""
    basis = serving.get("basis")
    if basis == "model_version":
        return "its rows by the model_version column"
    if basis == "servingSince":
        return f"the rows since it began serving at {rendering.fmt(serving.get('since'))}"
    if basis == "window":
        return "every row of the window (the data tells no versions apart)"
    return rendering.fmt(basis)


def render_html(
    report: Mapping[str, object],
    figures: Sequence[Figure],
    *,
    history: HistorySection | None = None,
) -> str:
    """Render the self-contained HTML report (``templates/report.html``).

    Parameters
    ----------
    report : mapping
        The report document (``report.json``).
    figures : sequence of Figure
        The plots of the drifted features.
    history : HistorySection, optional
        The history section (:func:`modelwatch_monitor.check.history.history_section`).
    """
    serving = section(report, "serving")
    return rendering.render(
        "report.html",
        report=report,
        settings=report.get("settings") or {},
        rows=report.get("rows") or {},
        performance=report.get("performance") or {},
        estimated=report.get("estimated") or {},
        serving=serving,
        basis=serving_basis(serving),
        figures=figures,
        history=history,
    )


def write_report(
    destination: str,
    report: Mapping[str, object],
    summaries: Mapping[str, tuple[Distribution | Counts, Distribution | Counts]],
    *,
    history: HistorySection | None = None,
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
    history : HistorySection, optional
        The history section (:func:`modelwatch_monitor.check.history.history_section`).

    Returns
    -------
    str
        ``destination``.
    """
    import fsspec

    drifted = [
        name
        for f in entries(report.get("features"))
        if f.get("drift") and isinstance(name := f.get("name"), str)
    ][:MAX_PLOTS]
    figures = [feature_figure(n, *summaries[n]) for n in drifted if n in summaries]
    page = render_html(report, [f for f in figures if f is not None], history=history)
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


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return bool({"file", "local"} & set(protocol))


@overload
def clean(o: Mapping[str, object]) -> dict[str, object]: ...
@overload
def clean(o: object) -> object: ...
def clean(o: object) -> object:
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
