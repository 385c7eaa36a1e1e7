"""The ``pumba`` command: one sub-command per stage, each a thin wrapper around library functions.

Each stage module exposes ``register(subparsers)``, which adds its sub-command(s) and sets ``func``.
User errors (:class:`pumba.io.InputError`, and an OSError from the file system: no permission, a file where a
folder should be, a full disk) print one line on stderr and exit with status 2. SIGINT exits with 130 and a
SIGTERM or SIGHUP that arrives while an output is written with 128 + its number, after removing the
temporary files (:func:`pumba.io.atomic_outputs`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pumba import __version__
from pumba.io import InputError, Terminated, file_in_the_way

STAGES = (
    "pumba.synth.cli",
    "pumba.model.cli",
    "pumba.infer.cli",
    "pumba.data.cli",
    "pumba.bench.cli",
    "pumba.metrics.cli",
    "pumba.figures.cli",
    "pumba.report.cli",
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
    except Terminated as exc:
        print(f"pumba {args.command}: {exc}; the output being written was discarded", file=sys.stderr)
        return 128 + exc.signum
    except OSError as exc:  # the file system's refusal, not a bug: one line, like an InputError
        print(f"pumba {args.command}: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    return int(result or 0)


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: the file(s) it names and the system's reason."""
    text = str(exc).strip()
    reason = exc.strerror or (text.splitlines()[0] if text else type(exc).__name__)
    files = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    blocker = file_in_the_way(files[0]) if files and isinstance(exc, NotADirectoryError) else None
    if blocker is not None:
        reason += f" ({blocker} is a file)"
    return f"{' -> '.join(files)}: {reason}" if files else reason


if __name__ == "__main__":
    sys.exit(main())
