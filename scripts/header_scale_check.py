"""Dice of a model when a scan's header lies about its scale (rodent headers scaled 10x, say), in each mode.

    .venv/bin/python scripts/header_scale_check.py [--model pumba/weights/pumba-v1.pt] [--scales 1 10]
        [--datasets sherm-mouse yerkes19-macaque] [--results results]

For every prepared scan of the datasets (``results/data/<dataset>/<subject>/{image,mask}.nii.gz``) and
every scale factor, the voxel sizes in the header are multiplied by the factor (the data are untouched) and
the scan is stripped in memory with ``--mode auto``, ``transform`` and ``resize``. Prints one markdown row per
(scan, scale): the field of view the header claims, the mode ``auto`` picked, and each mode's Dice.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from pumba.infer.strip import brain_mask
from pumba.io import load_volume
from pumba.metrics.overlap import dice
from pumba.model.checkpoint import load_model

MODES = ("auto", "transform", "resize")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pumba/weights/pumba-v1.pt")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--datasets", nargs="+", default=["sherm-mouse", "yerkes19-macaque"])
    parser.add_argument("--results", default="results")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, info = load_model(args.model)
    print("| scan | header scale | field of view (mm) | auto picks | " + " | ".join(MODES) + " |")
    print("|---|---|---|---|" + "---|" * len(MODES))
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets:
            for subject in sorted(Path(args.results, "data", dataset).glob("*/image.nii.gz")):
                image = nib.load(subject)
                ref = np.asarray(nib.load(subject.with_name("mask.nii.gz")).dataobj) > 0.5
                for scale in args.scales:
                    affine = image.affine.copy()
                    affine[:3] *= scale
                    path = Path(tmp, "scaled.nii.gz")
                    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), affine), path)
                    volume = load_volume(path)
                    fov = np.round(np.asarray(volume.data.shape) * volume.zooms).astype(int)
                    picked, scores = "", []
                    for mode in MODES:
                        mask, used = brain_mask(volume, model, info, mode)
                        picked = picked or used
                        scores.append(f"{dice(mask, ref):.3f}")
                    name = f"{dataset}/{subject.parent.name}"
                    cells = [name, f"{scale:g}x", " x ".join(map(str, fov)), picked, *scores]
                    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
