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
    p.add_argument("-i", "--image", required=True, help="input image (.nii, .nii.gz, .mgz, .mgh)")
    p.add_argument("-m", "--mask", help="output brain mask (uint8, 1 = brain)")
    p.add_argument("-o", "--out", help="output stripped image (input times mask)")
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


def _strip(args: argparse.Namespace) -> int:
    import sys

    from pumba import CITATION
    from pumba.infer.strip import strip

    result = strip(
        args.image,
        args.mask,
        args.out,
        args.model,
        args.mode,
        args.device,
        args.postprocess,
        args.threads,
        args.tta,
    )
    for warning in result.warnings:
        print(f"pumba strip: warning: {warning}", file=sys.stderr)
    _report_run_info(result.mode)
    if not args.quiet:
        print(
            f"pumba strip: {args.image}: mode {result.mode}, brain {result.brain_ml:.1f} ml, "
            f"{result.seconds:.1f} s",
            file=sys.stderr,
        )
        print(f"If you use this in your work, please cite: {CITATION}", file=sys.stderr)
    return 0


def _report_run_info(mode: str) -> None:
    """Under the benchmark's runner, tell it the geometry used (pumba.bench.record.RUN_INFO_VARIABLE)."""
    import json
    import os

    from pumba.bench.record import RUN_INFO_VARIABLE
    from pumba.io import write_text_atomic

    path = os.environ.get(RUN_INFO_VARIABLE)
    if path:
        write_text_atomic(path, json.dumps({"mode": mode}) + "\n")
