"""The ``modelwatch`` command line: ``check``, ``profile``, ``retrain`` and ``serve``.

Each subcommand lives in its own module, which defines::

    add_arguments(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int

The module is imported only when its subcommand runs, so ``modelwatch serve`` does
not pay for FLAML and ``modelwatch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from modelwatch_monitor import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("modelwatch_monitor.check.run", "Run drift, data-quality and performance checks."),
    "profile": ("modelwatch_monitor.check.profile", "Compute a reference profile once."),
    "retrain": ("modelwatch_monitor.train.retrain", "Train a challenger with FLAML AutoML."),
    "serve": ("modelwatch_monitor.serve.server", "Serve one model version over HTTP."),
    "demo": ("modelwatch_monitor.demo", "Built-in demo data and prediction traffic."),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelwatch", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"modelwatch {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # only the chosen subcommand's module: the others are heavy
            importlib.import_module(module).add_arguments(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Deferred on purpose: ``retrain`` loads FLAML, ``check`` the numerical stack.
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
