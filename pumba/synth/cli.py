"""``pumba generate``: write synthetic heads and their 3-class targets as NIfTI files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pumba.io import InputError

if TYPE_CHECKING:
    from pumba.synth.generator import SynthConfig


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``generate`` sub-command."""
    p = sub.add_parser(
        "generate",
        help="write synthetic training heads (image + 3-class label)",
        description=(
            "Write N synthetic heads as DIR/synth_{i:04d}_image.nii.gz (float32 in [0, 1]) and "
            "DIR/synth_{i:04d}_label.nii.gz (uint8: 0 background, 1 brain interior, 2 brain "
            "boundary) on a size^3 grid of 256/size mm voxels centred at the origin. The same "
            "seed gives byte-identical files on the same device, whatever the batch size."
        ),
    )
    p.add_argument("--n", type=int, required=True, help="number of samples")
    p.add_argument("--seed", type=int, required=True, help="run seed (>= 0)")
    p.add_argument("--out", type=Path, required=True, help="output directory (created)")
    p.add_argument("--size", type=int, default=None, help="grid size (default: config, 128)")
    p.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default cpu)")
    p.add_argument("--config", type=Path, default=None, help="YAML file of SynthConfig fields")
    p.add_argument("--batch", type=int, default=4, help="samples per batch (speed only)")
    p.set_defaults(func=run_generate)


def load_config(path: Path | None, size: int | None) -> SynthConfig:
    """SynthConfig from an optional YAML file, with ``size`` overriding its grid size."""
    from pumba.yaml_files import read_mapping

    fields = read_mapping(path, "generator config") if path is not None else {}
    return config_from(fields, path, size)


def config_from(fields: dict, path: str | Path | None, size: int | None) -> SynthConfig:
    """SynthConfig from a mapping of its fields read from ``path`` (None: no file), with ``size`` overriding
    its grid size; InputError naming the file (or ``--size``) and the key when a value is invalid."""
    import dataclasses

    from pumba.io import InputError
    from pumba.synth.generator import SynthConfig

    try:
        config = SynthConfig.from_dict(fields)
        if size is not None:
            config = dataclasses.replace(config, size=size)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path or '--size'}: {exc}") from None
    return config


def run_generate(args: argparse.Namespace) -> int:
    """Generate ``args.n`` samples in batches and write them atomically."""
    import torch

    from pumba.io import save_array
    from pumba.synth.generator import generate, grid_affine, sample_seed
    from pumba.synth.labels import make_target

    if args.n < 1:
        raise InputError(f"--n: need at least 1 sample, got {args.n}")
    if args.seed < 0:
        raise InputError(f"--seed: need a seed >= 0, got {args.seed}")
    if args.batch < 1:
        raise InputError(f"--batch: need at least 1, got {args.batch}")
    config = load_config(args.config, args.size)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise InputError(f"--device: unknown device {args.device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device: {args.device} requested but CUDA is not available")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    affine = grid_affine(config.size)
    for start in range(0, args.n, args.batch):
        indices = range(start, min(start + args.batch, args.n))
        image, mask = generate([sample_seed(args.seed, i) for i in indices], config, device)
        target = make_target(mask).to(torch.uint8)
        for j, i in enumerate(indices):
            save_array(image[j, 0].cpu().numpy(), affine, out / f"synth_{i:04d}_image.nii.gz")
            save_array(target[j].cpu().numpy(), affine, out / f"synth_{i:04d}_label.nii.gz")
    print(f"wrote {args.n} samples ({config.size}^3) to {out}")
    return 0
