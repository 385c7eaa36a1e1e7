"""``pumba run-method``: run one method on one image in a child process and record the run."""

from __future__ import annotations

import argparse

from pumba.baselines.methods import METHODS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run-method`` sub-command."""
    p = sub.add_parser(
        "run-method",
        help="run one brain-extraction method on one image and write a run record",
        description=(
            "Run a method in a child process, write its mask (uint8, the input's grid) and a JSON "
            "record with status, error, wall seconds and peak memory. Exits 0 whenever the "
            "record was written, also when the method failed. Methods: "
            + "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values())
        ),
    )
    p.add_argument("--method", required=True, choices=tuple(METHODS), help="method to run")
    p.add_argument("-i", "--input", required=True, help="head image (.nii, .nii.gz, .mgz)")
    p.add_argument("-o", "--output", required=True, help="brain mask to write")
    p.add_argument("--record", required=True, metavar="JSON", help="run record to write")
    p.add_argument("--dataset", help="dataset id copied into the record")
    p.add_argument("--subject", help="subject id copied into the record")
    p.add_argument("--model", metavar="CKPT", help="checkpoint (method pumba only)")
    p.add_argument("--name", help="the method's name in the record (default: --method)")
    p.add_argument("--threads", type=int, metavar="N", help="thread limit for the method")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="kill the method after this long")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pumba.baselines.runner import run_method

    run_method(
        args.method,
        args.input,
        args.output,
        args.record,
        model=args.model,
        threads=args.threads,
        timeout_s=args.timeout,
        dataset=args.dataset,
        subject=args.subject,
        name=args.name,
    )
    return 0
