"""FSL BET (Smith 2002) through its Python re-implementation, the ``brainextractor`` package.

BET deforms a tessellated sphere towards the brain surface in voxel coordinates, with distances
scaled by the first voxel size only: on anisotropic grids its mm parameters are approximate (the
package warns). Default parameters (fractional threshold 0.5, 1000 iterations). It segfaults on
some inputs (small animals, thick slabs), which is why the benchmark runs it in a child process.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pumba.io import Volume


def bet_mask(volume: Volume) -> np.ndarray:
    """Brain mask (bool, shape (I, J, K), the volume's grid) from brainextractor's BET."""
    import nibabel as nib
    from brainextractor import BrainExtractor

    # A fresh 3-D NIfTI image: the package reads pixdim and shape from it, and a 4-D singleton or
    # an MGZ header would confuse it.
    image = nib.Nifti1Image(volume.data, volume.affine)
    extractor = BrainExtractor(img=image)
    extractor.run()
    return np.asarray(extractor.compute_mask()) > 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pumba.baselines.bet -i IMAGE -o MASK``."""
    from pumba.baselines.main import baseline_main

    return baseline_main("bet", bet_mask, argv)


if __name__ == "__main__":
    raise SystemExit(main())
