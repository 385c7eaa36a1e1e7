"""``pumba strip``: brain extraction of one scan, in the spirit of mri_synthstrip."""

from __future__ import annotations

import argparse

from pumba.infer.postprocess import POSTPROCESS
from pumba.infer.preprocess import MODES

MASK_DEFINITION = (
    "The mask: the brain as the benchmark's reference masks draw it: cerebrum, cerebellum and brainstem, "
    "with the ventricles, the sulci and the fissure between the hemispheres inside it; not the CSF layer "
    "between brain and skull, nor dura, skull, eyes, muscle or fat. Below, it ends on the cord at about the "
    "foramen magnum (in training the cord is brain down to a random level 0-30 mm below the brain's lower "
    "pole). It is solid: one 26-connected component without holes in 3-D and, on a thick-slice scan (largest "
    "voxel edge at least twice the smallest), without holes in any slice across the thick axis. A two-stage "
    "model (pumba cascade) places the edge at the 0.5 level of its fine stage's brain probability, "
    "interpolated trilinearly onto the input's grid, so the edge falls between the fine grid's voxels."
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``strip`` sub-command."""
    p = sub.add_parser(
        "strip",
        help="extract the brain of one scan (any contrast, any species)",
        description="Brain extraction with a network trained on purely synthetic data. Reads NIfTI or MGZ in "
        "any orientation (a 4-D file of one frame too) and writes the mask on the input's grid with the "
        "input's affine. The input is never modified; an existing output is replaced atomically (written "
        "beside it, then renamed; SIGTERM or SIGINT meanwhile leaves neither the new file nor a temporary "
        "one). Refused with one line and exit status 2, nothing written: an image with nothing head-like "
        "in it (fewer than 16 voxels along two axes, fewer than 64 voxels that differ from the background) "
        "and one in which no brain is found (an empty mask). Stripped with a warning: a slab (fewer than "
        "8 slices, or a field of view thinner than a quarter of its largest extent). Odd inputs and what "
        "each gets: docs/inputs.md.",
        epilog=MASK_DEFINITION,
    )
    p.add_argument(
        "-i",
        "--image",
        required=True,
        action="extend",
        nargs="+",
        help="input image (.nii, .nii.gz, .mgz, .mgh); or several, a folder (every image in it, at any "
        "depth), a quoted glob ('scans/**/*.nii.gz') or a BIDS dataset (its anat images, --bids-suffix): "
        "then the outputs are templates with {name} (the input's name without suffix) or {rel} (its path "
        "in the folder), e.g. -m 'masks/{name}_mask.nii.gz'; the model is loaded once, a bad file is "
        "recorded and skipped (exit status 1 at the end, with a summary), complete outputs are skipped",
    )
    p.add_argument("-m", "--mask", help="output brain mask (uint8, 1 = brain)")
    p.add_argument("-o", "--out", help="output stripped image (input times mask)")
    p.add_argument(
        "--prob",
        help="output brain probability (float32 in [0, 1], on the input's grid; the mask is its 0.5 level "
        "made solid, before --border)",
    )
    p.add_argument(
        "--border",
        type=float,
        default=0.0,
        metavar="MM",
        help="grow (> 0) or shrink (< 0) the mask by this distance in mm, from a Euclidean distance "
        "transform with the voxel sizes (not voxel dilation); default 0",
    )
    p.add_argument(
        "--json",
        help="JSON sidecar of the run (input's sha256, version, weights' sha256, settings, geometry, QC); "
        "with several inputs a template, default: beside the first output, its name with .json",
    )
    p.add_argument(
        "--qc",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="score the mask without a reference (default; docs/qc.md); --no-qc saves a float32 map of "
        "the input's size and about a second",
    )
    p.add_argument(
        "--qc-threshold",
        type=float,
        default=None,
        help="flag masks scoring below this (default: pumba.infer.qc.QC_THRESHOLD, docs/qc.md)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="scans stripped at once (several inputs; default 1; "
        "fewer when the memory available would not hold them)",
    )
    p.add_argument(
        "--report",
        help="several inputs: a TSV of every scan (status, error, QC), the failed and flagged first",
    )
    p.add_argument(
        "--bids-suffix",
        action="append",
        default=None,
        help="a BIDS dataset as input: the suffixes to strip (repeat; default T1w)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (several inputs)")
    p.add_argument("--model", help="model file (default: the weights shipped with pumba)")
    p.add_argument(
        "--mode",
        default="auto",
        choices=MODES,
        help="geometry: 'transform' resamples the head in world space to the network's mm grid, 'resize' "
        "stretches the field of view onto it (any species, any header scale); 'auto' (default) resizes when "
        "the head fills the field of view or the field of view is under 150 mm",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    p.add_argument(
        "--postprocess",
        default="tight",
        choices=POSTPROCESS,
        help="mask reconstruction (default: tight)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the network (default: the cores this process may use, e.g. a SLURM allocation)",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the mean over the 8 flips of the input (default); --no-tta: one forward pass (faster)",
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing on success but warnings (e.g. a slab)"
    )
    p.set_defaults(func=_strip)
    register_qc(sub)
    register_bids(sub)


def _strip(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from pumba import CITATION
    from pumba.infer.batch import is_glob
    from pumba.infer.qc import QC_THRESHOLD
    from pumba.infer.strip import strip
    from pumba.io import InputError

    if args.jobs < 1:
        raise InputError(f"--jobs {args.jobs}: need at least one")
    threshold = QC_THRESHOLD if args.qc_threshold is None else args.qc_threshold
    stripper_kwargs = _stripper_kwargs(args)
    images = args.image
    if len(images) > 1 or is_glob(images[0]) or Path(images[0]).is_dir():
        return _strip_many(args, stripper_kwargs)
    result = strip(
        images[0],
        args.mask,
        args.out,
        args.model,
        args.mode,
        args.device,
        args.postprocess,
        args.threads,
        args.tta,
        prob_path=args.prob,
        border_mm=args.border,
        sidecar_path=args.json,
        qc=args.qc,
        qc_threshold=threshold,
    )
    for warning in result.warnings:
        print(f"pumba strip: warning: {warning}", file=sys.stderr)
    _report_run_info(result.mode, result.qc)
    if not args.quiet:
        qc = ""
        if result.qc is not None:
            qc = f", QC {result.qc.score:.2f}" + (" (flagged: check the mask)" if result.qc.flag else "")
        print(
            f"pumba strip: {images[0]}: mode {result.mode}, brain {result.brain_ml:.1f} ml{qc}, "
            f"{result.seconds:.1f} s",
            file=sys.stderr,
        )
        print(f"If you use this in your work, please cite: {CITATION}", file=sys.stderr)
    return 0


def _strip_many(args: argparse.Namespace, stripper_kwargs: dict) -> int:
    import sys

    import numpy as np

    from pumba.infer.batch import find_inputs, plan_jobs, run_batch, summary, write_report
    from pumba.io import InputError

    if not np.isfinite(args.border):
        raise InputError(f"--border {args.border}: expected a finite distance in mm")
    inputs = find_inputs(args.image, args.bids_suffix or ("T1w",))
    jobs = plan_jobs(inputs, {"mask": args.mask, "stripped": args.out, "prob": args.prob}, args.json)
    if not jobs:
        raise InputError(f"{args.image[0]}: no input left to strip (each is an output of this command)")
    outcomes = run_batch(
        jobs,
        stripper_kwargs,
        args.border,
        args.qc,
        args.jobs,
        False if args.no_progress or args.quiet else None,
    )
    if args.report:
        write_report(outcomes, args.report)
    lines = summary(outcomes)
    failed = any(o.status == "failed" for o in outcomes)
    for line in lines if (failed or not args.quiet) else []:
        print(line, file=sys.stderr)
    return 1 if failed else 0


def register_bids(sub: argparse._SubParsersAction) -> None:
    """Add ``pumba bids BIDS_DIR OUTPUT_DIR {participant,group}`` (the BIDS-Apps convention)."""
    p = sub.add_parser(
        "bids",
        help="brain masks of a BIDS dataset as BIDS derivatives (a BIDS App)",
        description="Strips the anatomical images of a BIDS dataset (default suffix T1w) into a "
        "BIDS-Derivatives dataset: sub-*/[ses-*/]anat/*_desc-brain_mask.nii.gz with JSON sidecars "
        "(Sources, version, weights' sha256, every setting, the geometry, the QC score and flag), and the "
        "stripped image (--stripped) and brain probability (--prob, *_label-brain_probseg) when asked; "
        "dataset_description.json. Resumable (complete outputs are skipped); a bad file is recorded and the "
        "run goes on (exit status 1 at the end). The group level writes OUTPUT_DIR/pumba_qc.tsv: every "
        "mask's score, the flagged first.",
    )
    p.add_argument("bids_dir", help="the BIDS dataset (read only)")
    p.add_argument("output_dir", help="the derivatives folder (made if missing)")
    p.add_argument("analysis_level", choices=("participant", "group"), help="participant or group")
    p.add_argument(
        "--participant-label",
        "--participant_label",
        nargs="+",
        default=[],
        help="participants to strip (labels without or with sub-; default: all)",
    )
    p.add_argument("--session-label", nargs="+", default=[], help="sessions to strip (default: all)")
    p.add_argument("--suffix", nargs="+", default=["T1w"], help="anatomical suffixes to strip (default T1w)")
    p.add_argument("--stripped", action="store_true", help="also write the stripped image")
    p.add_argument("--prob", action="store_true", help="also write the brain probability (probseg)")
    p.add_argument("--border", type=float, default=0.0, metavar="MM", help="grow/shrink the mask by MM")
    p.add_argument("--model", help="model file (default: the weights shipped with pumba)")
    p.add_argument("--mode", default="auto", choices=MODES, help="geometry (default: auto)")
    p.add_argument("--postprocess", default="tight", choices=POSTPROCESS, help="default: tight")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the cores available)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True, help="8 flips (default)")
    p.add_argument("--qc-threshold", type=float, default=None, help="flag masks scoring below this")
    p.add_argument("--jobs", type=int, default=1, help="scans stripped at once (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but failures")
    p.set_defaults(func=_bids)


def _bids(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import numpy as np

    from pumba.infer.batch import run_batch, summary
    from pumba.infer.bids import group_table, plan_bids, write_dataset_description
    from pumba.io import InputError

    bids_dir, out_dir = Path(args.bids_dir), Path(args.output_dir)
    if args.analysis_level == "group":
        path = group_table(out_dir)
        if not args.quiet:
            print(f"pumba bids: wrote {path}", file=sys.stderr)
        return 0
    if args.jobs < 1:
        raise InputError(f"--jobs {args.jobs}: need at least one")
    if not np.isfinite(args.border):
        raise InputError(f"--border {args.border}: expected a finite distance in mm")
    jobs = plan_bids(
        bids_dir, out_dir, args.participant_label, args.session_label, args.suffix, args.stripped, args.prob
    )
    write_dataset_description(bids_dir, out_dir)
    stripper_kwargs = _stripper_kwargs(args)
    outcomes = run_batch(
        jobs, stripper_kwargs, args.border, True, args.jobs, False if args.no_progress or args.quiet else None
    )
    failed = any(o.status == "failed" for o in outcomes)
    for line in summary(outcomes) if (failed or not args.quiet) else []:
        print(line.replace("pumba strip:", "pumba bids:"), file=sys.stderr)
    return 1 if failed else 0


def _report_run_info(mode: str, qc=None) -> None:
    """Under the benchmark's runner, tell it the geometry used and the mask's quality score
    (pumba.bench.record.RUN_INFO_VARIABLE)."""
    import json
    import os

    from pumba.bench.record import RUN_INFO_VARIABLE
    from pumba.io import write_text_atomic

    path = os.environ.get(RUN_INFO_VARIABLE)
    if path:
        info: dict = {"mode": mode}
        if qc is not None:
            info["qc"] = {"score": round(qc.score, 4), "flag": bool(qc.flag)}
        write_text_atomic(path, json.dumps(info) + "\n")


def register_qc(sub: argparse._SubParsersAction) -> None:
    """Add ``pumba qc score`` (the quality score of any mask) and ``pumba qc validate``."""
    p = sub.add_parser(
        "qc",
        help="quality score of brain masks without a reference (pumba.infer.qc), and its validation",
        description="The quality score (0..1, 1 = confident) of a brain mask, from our model run on the "
        "image: agreement of the mask with the model's brain probability, agreement of the model's "
        "test-time flips, the mask's shape, its volume against the head's. Below the threshold the mask is "
        "flagged for a look. docs/qc.md: how it was validated.",
    )
    qsub = p.add_subparsers(dest="qc_command", metavar="QC_COMMAND", required=True)
    s = qsub.add_parser("score", help="score one mask of one image (any method's)")
    s.add_argument("-i", "--image", required=True, help="the image the mask was made from")
    s.add_argument("-m", "--mask", required=True, help="a brain mask on the image's grid")
    s.add_argument("--json", help="write the score as JSON here (else printed)")
    s.add_argument("--model", help="model file (default: the shipped weights)")
    s.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    s.add_argument("--threads", type=int, default=None, help="CPU threads (default: the cores available)")
    s.set_defaults(func=_qc_score)
    v = qsub.add_parser(
        "validate",
        help="Spearman and AUC of the score against Dice on a benchmark run plus damaged inputs",
        description="Scores every mask of a benchmark run (results/predictions against results/data), "
        "masks of damaged copies of each scan and masks of early-training models, against Dice with the "
        "references; writes one row per mask (CSV) and a Markdown summary (docs/qc.md shows it).",
    )
    v.add_argument("--results", default="results", help="the benchmark's results folder (default: results)")
    v.add_argument("--csv", required=True, help="output CSV, one row per mask")
    v.add_argument("--md", help="output Markdown summary")
    v.add_argument("--early-model", action="append", default=[], help="an early-training model (repeat)")
    v.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.set_defaults(func=_qc_validate)


def _qc_score(args: argparse.Namespace) -> int:
    import json

    from pumba.infer.api import Stripper
    from pumba.io import write_text_atomic

    stripper = Stripper(args.model, device=args.device, threads=args.threads)
    result = stripper.qc(args.image, args.mask)
    text = json.dumps({"image": args.image, "mask": args.mask, "QC": result.sidecar()}, indent=2) + "\n"
    if args.json:
        write_text_atomic(args.json, text)
    else:
        print(text, end="")
    return 0


def _qc_validate(args: argparse.Namespace) -> int:
    from pumba.infer.qc_validate import validate

    validate(
        args.results, args.csv, args.md, args.early_model, threads=args.threads, progress=not args.no_progress
    )
    if args.md:
        from pathlib import Path

        print(Path(args.md).read_text(), end="")
    return 0


def _stripper_kwargs(args: argparse.Namespace) -> dict:
    """The :class:`pumba.infer.api.Stripper` settings of ``pumba strip``'s or ``pumba bids``'s flags."""
    from pumba.infer.qc import QC_THRESHOLD

    return {
        "model": args.model,
        "mode": args.mode,
        "postprocess": args.postprocess,
        "device": args.device,
        "threads": args.threads,
        "tta": args.tta,
        "qc_threshold": QC_THRESHOLD if args.qc_threshold is None else args.qc_threshold,
    }
