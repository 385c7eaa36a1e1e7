"""``pumba run-method``: run one method on one image in a child process and record the run."""

from __future__ import annotations

import argparse

from pumba.bench.registry import METHODS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run-method`` sub-command."""
    p = sub.add_parser(
        "run-method",
        help="run one brain-extraction method on one image and write a run record",
        description=(
            "Run a tool in a child process, write its mask (uint8, the input's grid) and a JSON record with "
            "the tool, its version and settings, status, error, wall seconds and peak memory. Exits 0 "
            "whenever the record was written, also when the method failed. The tool's settings follow '--' "
            "as its own flags (e.g. -- --mode accurate). Tools: "
            + "; ".join(
                f"{m.tool}: {m.summary}"
                + (f" [settings: {', '.join(s.option for s in m.settings)}]" if m.settings else "")
                for m in METHODS.values()
            )
        ),
    )
    p.add_argument("--method", required=True, choices=tuple(METHODS), help="tool to run")
    p.add_argument("-i", "--input", required=True, help="head image (.nii, .nii.gz, .mgz)")
    p.add_argument("-o", "--output", required=True, help="brain mask to write")
    p.add_argument("--record", required=True, metavar="JSON", help="run record to write")
    p.add_argument("--dataset", help="dataset id copied into the record")
    p.add_argument("--subject", help="subject id copied into the record")
    p.add_argument("--name", help="the method's name in the record (default: --method)")
    p.add_argument("--threads", type=int, metavar="N", help="thread limit for the method")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="kill the method after this long")
    p.add_argument("tool_flags", nargs=argparse.REMAINDER, help="-- then the tool's own flags")
    p.set_defaults(func=_run)


def tool_settings(tool: str, flags: list[str]) -> dict[str, object]:
    """The settings that ``flags`` (the tool's own command-line flags) give; SystemExit(2) on a bad one."""
    parser = argparse.ArgumentParser(prog=f"pumba run-method --method {tool} --", add_help=False)
    for setting in METHODS[tool].settings:
        setting.add_to(parser, default=argparse.SUPPRESS)  # only the flags given
    return vars(parser.parse_args(flags))


def _run(args: argparse.Namespace) -> int:
    from pumba.bench.runner import run_method

    flags = args.tool_flags[1:] if args.tool_flags[:1] == ["--"] else args.tool_flags
    run_method(
        args.method,
        args.input,
        args.output,
        args.record,
        settings=tool_settings(args.method, flags),
        threads=args.threads,
        timeout_s=args.timeout,
        dataset=args.dataset,
        subject=args.subject,
        name=args.name,
    )
    return 0
