"""Run every benchmark module ``bench/bench_*.py`` and write its figures.

Each module defines ``main() -> dict`` returning JSON-serialisable figures; they are
printed and written to ``bench/results/<name>.json``. ``python -m bench NAME...``
runs only the named ones.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).parent


def main(argv: list[str]) -> int:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    failed = 0
    for name in names:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            figures = importlib.import_module(f"bench.{name}").main()
        except Exception as exc:  # report and go on with the other benchmarks
            print(f"   FAILED: {exc!r}", flush=True)
            failed += 1
            continue
        figures["_wall_seconds"] = round(time.perf_counter() - start, 2)
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures, indent=2), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
