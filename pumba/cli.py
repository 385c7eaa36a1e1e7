"""The ``pumba`` command: one sub-command per stage, each a thin wrapper around library functions.

Each stage module exposes ``register(subparsers)``, which adds its sub-command(s) and sets ``func``.
User errors (:class:`pumba.io.InputError`) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pumba import __version__
from pumba.io import InputError

STAGES = (
    "pumba.synth.cli",
    "pumba.model.cli",
    "pumba.infer.cli",
    "pumba.data.cli",
    "pumba.baselines.cli",
    "pumba.metrics.cli",
    "pumba.figures.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every stage's sub-commands."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="pumba",
        description="Skull stripping trained on purely synthetic data, and its benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"pumba {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in STAGES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except InputError as exc:
        print(f"pumba {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pumba {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
