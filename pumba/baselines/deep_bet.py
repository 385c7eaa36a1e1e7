"""deepbet (Fisch et al. 2024): a two-stage U-Net brain extractor, run on CPU.

deepbet finds a bounding box on a 128^3 resize of the image in its closest-canonical (RAS)
orientation, segments the box resized to 256^3, keeps the largest component, fills holes and maps
the mask back to the input's orientation. Its weights ship in the wheel. We call its
``BrainExtraction`` class on an in-memory image rather than ``run_bet`` on a path, because
``run_bet`` silently skips files under 100 kB (small but valid scans).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pumba.io import Volume


def deepbet_mask(volume: Volume) -> np.ndarray:
    """Brain mask (bool, shape (I, J, K), the volume's grid) from deepbet on CPU."""
    import nibabel as nib
    from deepbet import BrainExtraction

    image = nib.Nifti1Image(volume.data, volume.affine)
    _, mask_image, _ = BrainExtraction(no_gpu=True).run(image)
    mask = np.asarray(mask_image.dataobj) > 0
    if mask.shape != volume.data.shape:
        raise RuntimeError(f"deepbet returned a mask of shape {mask.shape}, not {volume.data.shape}")
    return mask


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pumba.baselines.deep_bet -i IMAGE -o MASK``."""
    from pumba.baselines.main import baseline_main

    return baseline_main("deepbet", deepbet_mask, argv)


if __name__ == "__main__":
    raise SystemExit(main())
