"""The README's spec and status reference is generated from the CRD and kept in step."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_readme_reference_matches_the_crd() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "hack" / "crd_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
