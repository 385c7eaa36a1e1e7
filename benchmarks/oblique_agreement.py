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
from scipy import ndimage
from scipy.spatial.transform import Rotation


def regrid(image: nib.Nifti1Image, linear: np.ndarray) -> nib.Nifti1Image:
    """The same head in the world on a grid moved by ``linear`` (3x3) about the field of view's centre."""
    data = np.asarray(image.dataobj, dtype=np.float32)
    centre = (image.affine @ np.append((np.array(data.shape) - 1) / 2, 1.0))[:3]
    move = np.eye(4)
    move[:3, :3] = linear
    move[:3, 3] = centre - linear @ centre
    affine = move @ image.affine
    to_old = np.linalg.inv(image.affine) @ affine
    moved = ndimage.affine_transform(data, to_old[:3, :3], to_old[:3, 3], output_shape=data.shape, order=1)
    return nib.Nifti1Image(moved, affine)


def mapped_back(mask: np.ndarray, affine: np.ndarray, image: nib.Nifti1Image) -> np.ndarray:
    """A mask on the grid of ``affine`` resampled (trilinear, > 0.5) onto ``image``'s grid."""
    to_moved = np.linalg.inv(affine) @ image.affine
    back = ndimage.affine_transform(
        mask.astype(np.float32), to_moved[:3, :3], to_moved[:3, 3], output_shape=image.shape, order=1
    )
    return back > 0.5


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


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
            moved = regrid(image, linear)
            mask = np.asarray(stripper.strip(moved, qc=False).mask.dataobj) > 0
            back = mapped_back(mask, moved.affine, image)
            moved_mask = regrid(nib.Nifti1Image(untilted.astype(np.float32), image.affine), linear)
            floor = dice(mapped_back(np.asarray(moved_mask.dataobj) > 0.5, moved.affine, image), untilted)
            line = f"{mode:9s} {name:6s} agreement {dice(back, untilted):.4f} floor {floor:.4f}"
            if ref is not None:
                line += f" dice_ref untilted {dice(untilted, ref):.4f} turned {dice(back, ref):.4f}"
            print(line, flush=True)
        print(f"  {mode}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
