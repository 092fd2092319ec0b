"""A check's HTML report in a real browser: headless Chromium (Debian's ``chromium``).

The report comes from ``modelwatch check`` on a small synthetic run (a shifted feature, a
worse model, labels): no cluster. The page must load without a console error, an
uncaught exception, a failed load or a broken image, and draw every plot. A screenshot
is saved; ``MODELWATCH_REPORT_SCREENSHOT=docs/report.png`` also writes it there (the
one the README shows).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor.cli import main
from tests.conftest import REPO
from tests.monitor.browser import chromium, open_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium() is None, reason="no chromium (apt-get install chromium)"),
]

N = 2000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def frame(n: int, *, seed: int, shift: float = 0.0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(shift, 1.0, n), rng.normal(size=n)
    return {
        "x0": x0,
        "x1": x1,
        "tenure": rng.exponential(2.0 + shift * 4, n),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        "request_id": [f"r{i}" for i in range(n)],
        "y": (x0 + x1 > 0).astype(np.int64),
    }


def write(path: pathlib.Path, cols: dict[str, object]) -> str:
    pq.write_table(pa.table(cols), path)
    return str(path)


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """``report.html`` of a check that found drift in two features and a worse model."""
    work = tmp_path_factory.mktemp("report")
    ref = frame(N, seed=1)
    ref.pop("request_id")
    cur = frame(N, seed=2, shift=0.6)
    x1 = cur["x1"]
    assert isinstance(x1, np.ndarray)
    cur["prediction"] = (x1 > 0).astype(np.int64)
    y, ids = cur.pop("y"), cur["request_id"]
    assert isinstance(y, np.ndarray) and isinstance(ids, list)
    labels = {"request_id": ids[::2], "y": y[::2]}
    out = work / "report"
    write(work / "churn-current.parquet", cur)
    with contextlib.chdir(work):  # the page's title names --current as given
        code = main(
            [
                "check", "--reference", write(work / "ref.parquet", ref),
                "--current", "churn-current.parquet", "--output", str(out),
                "--target", "y", "--id-column", "request_id", "--prediction-column", "prediction",
                "--labels", write(work / "labels.parquet", labels), "--task", "classification",
                "--baseline", "0.9", "--result-path", str(work / "result.json"),
            ]
        )  # fmt: skip
    assert code == 0
    return out / "report.html"


def test_the_report_loads_clean_in_chromium(report_page: pathlib.Path) -> None:
    page = open_page(report_page.as_uri())
    assert page.errors == []
    assert page.broken_images == []
    assert page.title.startswith("modelwatch report")
    # One plot per drifted feature (x0 and tenure), each drawn with a real size.
    assert len(page.svg_sizes) >= 2
    assert all(w > 100 and h > 100 for w, h in page.svg_sizes), page.svg_sizes
    width, height = png_size(page.screenshot)
    assert width == 1100 and height > 800  # the whole page, past the first screen
    shot = report_page.parent / "report.png"
    shot.write_bytes(page.screenshot)
    wanted = os.environ.get("MODELWATCH_REPORT_SCREENSHOT")
    if wanted:
        (REPO / wanted).write_bytes(page.screenshot)


def test_a_broken_page_is_caught(tmp_path: pathlib.Path) -> None:
    """The checks above can fail: a missing image, a console error, an exception."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>bad</title></head><body>"
        '<img src="missing.png" alt="gone">'
        '<script>console.error("boom"); null.x;</script></body></html>'
    )
    page = open_page(bad.as_uri())
    assert any("missing.png" in src for src in page.broken_images), page.broken_images
    assert any("console.error: boom" in e for e in page.errors), page.errors
    assert any(e.startswith("exception:") for e in page.errors), page.errors
    assert any("load failed" in e or "missing.png" in e for e in page.errors), page.errors
