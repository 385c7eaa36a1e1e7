"""Does the mask depend on how the head sits on the voxel grid? Turn or shear a real head's grid, compare.

Command::

    .venv/bin/python benchmarks/oblique_agreement.py IMAGE [--mask REFERENCE] [--angle 30]
        [--modes auto,resize,transform] [--model MODEL]

The head of IMAGE is resampled (trilinear) onto the same grid turned by ``--angle`` degrees about the first
voxel axis, about the third, and sheared by 0.25, each about the field of view's centre: the same head in the
world on another voxel grid. Each is stripped (``pumba.infer.api.Stripper``, CPU, one thread) in every mode,
the mask is mapped back onto IMAGE's grid, and one line per case prints:

* ``agreement``: Dice of the mapped-back mask with the untilted head's mask;
* ``floor``: Dice of the untilted mask moved onto the turned grid and back with itself (what resampling alone
  costs);
* with ``--mask``, the Dice of both masks with the reference.

docs/inputs.md quotes it on Colin27 (``/usr/share/mricron/templates/ch2.nii.gz``, 1 mm) before and after the
network's grid was made square to the world.
"""

from __future__ import annotations

import argparse
import time

import nibabel as nib
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from pumba.grid import mask_onto, moved_grid
from pumba.metrics.overlap import dice


def main() -> None:
    from pumba.infer.api import Stripper

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image")
    parser.add_argument("--mask", default=None, help="a reference brain mask on the image's grid")
    parser.add_argument("--angle", type=float, default=30.0, help="degrees (default 30)")
    parser.add_argument("--modes", default="auto,resize,transform")
    parser.add_argument("--model", default=None, help="model file (default: the shipped weights)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = nib.load(args.image)
    image = nib.Nifti1Image(np.asarray(loaded.dataobj, dtype=np.float32).squeeze(), loaded.affine)
    ref = None if args.mask is None else np.asarray(nib.load(args.mask).dataobj) > 0
    cases = {
        "turn-i": Rotation.from_euler("x", args.angle, degrees=True).as_matrix(),
        "turn-k": Rotation.from_euler("z", args.angle, degrees=True).as_matrix(),
        "shear": np.array([[1.0, 0.25, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    }
    for mode in args.modes.split(","):
        stripper = Stripper(model=args.model, mode=mode, device="cpu")
        start = time.perf_counter()
        untilted = np.asarray(stripper.strip(image, qc=False).mask.dataobj) > 0
        for name, linear in cases.items():
            moved = moved_grid(image, linear)
            mask = np.asarray(stripper.strip(moved, qc=False).mask.dataobj) > 0
            back = mask_onto(mask, moved.affine, image)
            moved_mask = moved_grid(nib.Nifti1Image(untilted.astype(np.float32), image.affine), linear)
            floor = dice(mask_onto(np.asarray(moved_mask.dataobj) > 0.5, moved.affine, image), untilted)
            line = f"{mode:9s} {name:6s} agreement {dice(back, untilted):.4f} floor {floor:.4f}"
            if ref is not None:
                line += f" dice_ref untilted {dice(untilted, ref):.4f} turned {dice(back, ref):.4f}"
            print(line, flush=True)
        print(f"  {mode}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
