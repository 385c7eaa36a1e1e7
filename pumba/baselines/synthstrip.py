"""SynthStrip (Hoopes et al. 2022, NeuroImage 260:119474): a synthetic-trained U-Net that predicts the signed
distance to the brain's boundary, run on CPU with a checkpoint the user supplies.

Written here from FreeSurfer's ``mri_synthstrip`` script and the surfa image library it calls (sources:
docs/methods/synthstrip.md); their code is not copied. The weights (``synthstrip.1.pt``, or
``synthstrip.nocsf.1.pt`` for ``mri_synthstrip --no-csf``, same network) ship only with FreeSurfer
(``$FREESURFER_HOME/models/``) and its Docker image (``/freesurfer/models/``); the setting ``weights`` names
the file. Without it the method exits 2 with one line naming the setting.

Network (:func:`build_synthstrip`, mri_synthstrip's ``StripModel`` with its defaults): a 3-D U-Net of 7
levels, features 16, 32, 64, 64, 64, 64, 64 (16 doubling per level, at most 64), two 3^3 convolutions (zero
padding 1, with bias) per level each followed by LeakyReLU(0.2); 2^3 max pooling down, nearest 2x upsampling
up, concatenated with the encoder's output of that level (upsampled first, skip second). Decoder widths 64
(levels 1-5 from the bottom) and 32 (the last), then two 16-channel convolutions at full resolution and a
3^3 convolution to 1 channel with no activation: the signed distance in mm (negative inside the brain).
2,566,561 parameters; state-dict keys ``encoder.L.C.conv.{weight,bias}`` (L 0-5, C 0-1), ``decoder.L.C.conv``
and ``remaining.{0,1,2}.conv``, which the published checkpoint's ``model_state_dict`` must match (the script
loads it with torch's default ``strict=True``).

Pipeline, as mri_synthstrip on one frame (surfa's ``conform``, ``crop_to_bbox``, ``reshape``,
``resample_like``, ``connected_component_mask``):

1. reorient to LIA by axis permutations and flips only, each voxel axis to its largest world component
   (:func:`reorient_lia`); then, unless the voxels are already 1 mm (within 1e-5), resample by **nearest
   neighbour** onto a 1 mm grid of the same rotation (the Q factor of the affine's QR decomposition) and the
   same centre (the world point of voxel shape/2), of shape ceil(voxel size x shape) with the header's
   float32 voxel sizes; outside the input: 0 (:func:`resize_1mm`, :func:`header_zooms`);
2. crop to the bounding box of the voxels > 0 (:func:`crop_positive`), then centre-pad with zeros or crop to
   ceil(shape / 64) x 64 per axis, clipped to [192, 320] (:func:`fit_shape`, :func:`target_shape`);
3. subtract the minimum, divide by the 99th percentile (numpy's linear), clip to [0, 1] (:func:`normalise`);
4. one forward pass: the signed distance transform (SDT) on that grid. Where ``border`` is at least the
   integer part of the SDT's maximum (the network's band is ~4-5 mm), the outside is recomputed as the
   Euclidean distance to the voxels with SDT < 1 within their bounding box grown by ``border`` (rounded),
   100 beyond (:func:`extend_sdt`);
5. the SDT goes back onto the input grid by trilinear interpolation, 100 outside the conformed box
   (:func:`to_input_grid`), and the mask is SDT < ``border``: its largest 6-connected component, holes
   filled (:func:`largest_filled_component`).

Resampling follows surfa's interpolator (:func:`sample`): points computed in float32; nearest rounds half
away from zero and treats a point as inside when 0 <= x < n on each axis; trilinear uses the voxels floor(x)
and floor(x)+1 (the last voxel's value up to x < n) and the fill where floor(x) is outside [0, n-1]. Steps
1-5 were compared with surfa 0.6.3 on 8 grids (oblique, sheared, MGZ, > 320 mm ...): identical conformed
arrays, affines, normalised inputs and masks (docs/methods/synthstrip.md).

Deviations: non-finite voxels become the finite minimum (surfa would carry NaN through); an image whose 99th
percentile after the shift is 0 (a constant image, or one nearly all at its minimum) is refused with one line
(surfa would divide by zero and give an empty mask); header voxel sizes more than 10 % off the affine's are
ignored for the affine's (surfa takes them); a sheared grid already of 1 mm voxels keeps its shear through
cropping (surfa drops it).

Cost (random weights, one CPU thread): ~0.13 MFLOP per voxel of the network grid; itk-kmeans (grid 192^3)
42-59 s and 3.5 GB, a 192 x 256 x 256 grid (an adult 1 mm head) 101 s and 5.7 GB, ~0.45 KB per voxel.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from pumba.io import InputError, Volume

if TYPE_CHECKING:  # torch is imported lazily: a missing checkpoint fails before it loads
    import torch

NB_FEATURES = 16
NB_LEVELS = 7
FEAT_MULT = 2
MAX_FEATURES = 64
CONVS_PER_LEVEL = 2
LEAKY_SLOPE = 0.2
PARAMETERS = 2_566_561
"""The network's parameter count (see :func:`build_synthstrip`)."""
MULTIPLE = 64
"""Six 2^3 poolings: the grid must divide by 2^6."""
SHAPE_RANGE = (192, 320)
PERCENTILE = 99.0
FILL_SDT = 100.0
"""The SDT outside the conformed box, mm (mri_synthstrip's ``resample_like(..., fill=100)``)."""
LIA_CODES = ("L", "I", "A")
ISO_ATOL = 1e-5


class SynthStripWeightsError(InputError):
    """The checkpoint is not given, missing, or not SynthStrip's: one line naming the file or the setting."""


# ----------------------------------------------------------------------------------------------- network
def level_features(
    nb_features: int = NB_FEATURES,
    nb_levels: int = NB_LEVELS,
    feat_mult: int = FEAT_MULT,
    max_features: int = MAX_FEATURES,
) -> tuple[int, ...]:
    """Features per level, top first: round(nb_features * feat_mult^level), clipped to [1, max_features]."""
    return tuple(
        int(min(max(round(nb_features * feat_mult**level), 1), max_features)) for level in range(nb_levels)
    )


def build_synthstrip(
    nb_features: int = NB_FEATURES,
    nb_levels: int = NB_LEVELS,
    max_features: int = MAX_FEATURES,
    convs_per_level: int = CONVS_PER_LEVEL,
) -> torch.nn.Module:
    """SynthStrip's U-Net (eval mode, random weights), with mri_synthstrip's module names.

    The module maps (N, 1, D, H, W) float32, each of D, H, W a multiple of 2^(nb_levels - 1), to the signed
    distance (N, 1, D, H, W). Defaults: the published network.
    """
    import torch
    from torch import nn

    feats = level_features(nb_features, nb_levels, FEAT_MULT, max_features)

    class ConvBlock(nn.Module):
        def __init__(self, cin: int, cout: int, activation: bool = True) -> None:
            super().__init__()
            self.conv = nn.Conv3d(cin, cout, kernel_size=3, stride=1, padding=1)
            self.activation = nn.LeakyReLU(LEAKY_SLOPE) if activation else None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.conv(x)
            return x if self.activation is None else self.activation(x)

    class SynthStripUNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.levels = nb_levels
            widths = [1]  # the output width of each encoder level, input first

            def level_convs(width_in: int, width: int) -> nn.ModuleList:
                """One level: ``convs_per_level`` blocks, the first from ``width_in``, all to ``width``."""
                widths_in = [width_in] + [width] * (convs_per_level - 1)
                return nn.ModuleList(ConvBlock(w, width) for w in widths_in)

            self.encoder = nn.ModuleList()
            prev = 1
            for level in range(nb_levels - 1):
                self.encoder.append(level_convs(prev, feats[level]))
                prev = feats[level]
                widths.append(prev)
            # decoder: the level widths bottom up; level L's output is upsampled and joined by encoder level
            # nb_levels - 2 - L
            up = feats[::-1]
            self.decoder = nn.ModuleList()
            for level in range(nb_levels - 1):
                self.decoder.append(level_convs(prev, up[level]))
                prev = up[level] + widths[nb_levels - 1 - level]
            self.remaining = nn.ModuleList()
            for _ in range(convs_per_level):
                self.remaining.append(ConvBlock(prev, up[-1]))
                prev = up[-1]
            self.remaining.append(ConvBlock(prev, 1, activation=False))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips = []
            for convs in self.encoder:
                for block in convs:
                    x = block(x)
                skips.append(x)
                x = torch.nn.functional.max_pool3d(x, 2)
            for convs in self.decoder:
                for block in convs:
                    x = block(x)
                x = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
                x = torch.cat([x, skips.pop()], dim=1)
            for block in self.remaining:
                x = block(x)
            return x

    return SynthStripUNet().eval()


def parameter_count(module: torch.nn.Module) -> int:
    """The number of scalar parameters of a module."""
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------------- checkpoint
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _examples(keys: Sequence[str]) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")


def load_synthstrip(weights: str | os.PathLike) -> torch.nn.Module:
    """SynthStrip's network with the weights of a checkpoint file (``{"model_state_dict": ...}``, as
    FreeSurfer's ``synthstrip.1.pt``), loaded strictly; eval mode, CPU.

    Raises:
        SynthStripWeightsError: one line: no path given (naming the ``weights`` setting), the file is
            missing, not a torch checkpoint, or its state dict is not SynthStrip's (keys or shapes).
    """
    if not str(weights):
        raise SynthStripWeightsError(
            "no SynthStrip weights: set 'weights' (--weights) to synthstrip.1.pt, found in "
            "$FREESURFER_HOME/models/ or /freesurfer/models/ of the freesurfer/synthstrip image"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise SynthStripWeightsError(f"{path}: SynthStrip weights (setting 'weights') not found")
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds here (pickle, zip, EOF, runtime)
        raise SynthStripWeightsError(
            f"{path}: not a SynthStrip checkpoint (torch.load failed: {_first_line(exc)})"
        ) from None
    if not isinstance(checkpoint, dict) or "model_state_dict" not in checkpoint:
        raise SynthStripWeightsError(f"{path}: not a SynthStrip checkpoint (no 'model_state_dict')")
    state = checkpoint["model_state_dict"]
    if not isinstance(state, dict):
        raise SynthStripWeightsError(f"{path}: not a SynthStrip checkpoint ('model_state_dict' is no dict)")
    net = build_synthstrip()
    expected = net.state_dict()
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    if missing or unexpected:
        raise SynthStripWeightsError(
            f"{path}: not a SynthStrip checkpoint ({len(missing)} keys missing"
            + (f": {_examples(list(missing))}" if missing else "")
            + f"; {len(unexpected)} unexpected"
            + (f": {_examples(list(unexpected))}" if unexpected else "")
            + ")"
        )
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(expected[key].shape):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            want = tuple(expected[key].shape)
            raise SynthStripWeightsError(
                f"{path}: not a SynthStrip checkpoint ({key} is {shape}, expected {want})"
            )
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return net.eval()


# ------------------------------------------------------------------------------------------- geometry
def voxel_axes(affine: np.ndarray) -> np.ndarray:
    """The world axis (0 x, 1 y, 2 z) and direction (+1, -1) of each voxel axis, as nibabel's ``ornt``.

    surfa's rule: each column of the 3x3 part goes to its largest component (x over y and z, then y over z);
    where two columns pick the same world axis (grids near 45 degrees), nibabel's ``io_orientation``.
    """
    from nibabel.orientations import io_orientation

    m = np.asarray(affine, float)[:3, :3]
    world = []
    for column in np.abs(m.T):
        x, y, z = column
        world.append(0 if x > y and x > z else 1 if y > z else 2)
    if sorted(world) == [0, 1, 2]:
        return np.array([[w, 1.0 if m[w, i] > 0 else -1.0] for i, w in enumerate(world)])
    ornt = io_orientation(m)
    if np.isnan(ornt).any():
        raise InputError("the affine does not define three independent voxel axes")
    return ornt


def reorient_lia(
    data: np.ndarray, affine: np.ndarray, zooms: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``data`` with its voxel axes permuted and flipped to the closest LIA orientation (i: left,
    j: inferior, k: anterior; :func:`voxel_axes`), no resampling.

    Returns:
        (the array, its 4x4 voxel-to-world matrix, ``zooms`` permuted alike (None if None)).
    """
    from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform

    transform = ornt_transform(voxel_axes(affine), axcodes2ornt(LIA_CODES))
    out = np.ascontiguousarray(apply_orientation(data, transform))
    new_affine = np.asarray(affine, float) @ inv_ornt_aff(transform, data.shape)
    new_zooms = None
    if zooms is not None:
        new_zooms = np.empty(3)
        new_zooms[transform[:, 0].astype(int)] = np.asarray(zooms, float)[:3]
    return out, new_affine, new_zooms


def grid_geometry(affine: np.ndarray, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(voxel sizes, 3x3 rotation, centre) of a grid, as surfa decomposes it: the QR factors of the
    affine's 3x3 part (sizes |R_ii|, rotation Q with R's diagonal signs), the centre the world point of
    voxel shape/2."""
    affine = np.asarray(affine, float)
    q, r = np.linalg.qr(affine[:3, :3])
    diag = np.diag(r)
    centre = affine[:3, :3] @ (np.asarray(shape[:3], float) / 2) + affine[:3, 3]
    return np.abs(diag), q * np.sign(diag), centre


def header_zooms(volume: Volume) -> np.ndarray | None:
    """The voxel sizes the file's header states (float32, as surfa reads them: surfa sizes the 1 mm grid
    from these, not from the affine), or None when there are none or they are not within 10 % of the
    affine's (a damaged header; surfa would take them all the same)."""
    try:
        zooms = np.asarray(volume.image.header.get_zooms()[:3], dtype=np.float32).astype(float)
    except Exception:  # no header (an in-memory volume), or one nibabel cannot read zooms from
        return None
    sizes, _, _ = grid_geometry(volume.affine, volume.data.shape)
    if (
        zooms.shape != (3,)
        or not np.all(np.isfinite(zooms))
        or not np.allclose(zooms, sizes, rtol=0.1, atol=0)
    ):
        return None
    return zooms


def resize_1mm(
    data: np.ndarray, affine: np.ndarray, zooms: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """surfa's ``resize(1.0, method="nearest")``: the same field of view on 1 mm voxels (module docstring,
    step 1); unchanged when the voxels are already 1 mm. ``zooms``: the voxel sizes (default: the
    affine's), which decide the new shape."""
    sizes, rotation, centre = grid_geometry(affine, data.shape)
    if zooms is not None:
        sizes = np.asarray(zooms, float)
    if np.allclose(sizes, 1.0, atol=ISO_ATOL, rtol=0):
        return data, np.asarray(affine, float)
    shape = tuple(int(n) for n in np.ceil(sizes * np.asarray(data.shape, float)))
    target = np.eye(4)
    target[:3, :3] = rotation
    target[:3, 3] = centre - rotation @ (np.asarray(shape, float) / 2)
    vox2vox = np.linalg.inv(affine) @ target
    return sample(data, vox2vox, shape, order=0, fill=0.0), target


def crop_positive(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """surfa's ``crop_to_bbox``: the bounding box of the voxels > 0 (the whole array if there is none)."""
    from pumba.infer.postprocess import bounding_box

    box = bounding_box(data > 0)
    if box is None:
        return data, affine
    start = np.array([s.start for s in box], float)
    shifted = np.asarray(affine, float).copy()
    shifted[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]
    return data[box], shifted


def target_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    """The network grid for a cropped head: ceil(n / 64) x 64 per axis, clipped to [192, 320]."""
    low, high = SHAPE_RANGE
    return tuple(int(min(max(math.ceil(n / MULTIPLE) * MULTIPLE, low), high)) for n in shape[:3])  # type: ignore[return-value]


def fit_shape(data: np.ndarray, affine: np.ndarray, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """surfa's ``reshape``: ``data`` centred in ``shape`` (zero padding, or cropping; an odd difference puts
    the extra padded voxel after, the extra cropped voxel at the end), with its voxel-to-world matrix."""
    delta = (np.asarray(shape[:3], float) - np.asarray(data.shape, float)) / 2
    low, high = np.floor(delta).astype(int), np.ceil(delta).astype(int)
    padded = np.pad(data, [(max(a, 0), max(b, 0)) for a, b in zip(low, high, strict=True)])
    start = np.maximum(-high, 0)
    stop = np.asarray(padded.shape) - np.maximum(-low, 0)
    out = padded[tuple(slice(a, b) for a, b in zip(start, stop, strict=True))]
    origin = (start - np.maximum(low, 0)).astype(float)  # the input voxel at the output's voxel 0
    shifted = np.asarray(affine, float).copy()
    shifted[:3, 3] = affine[:3, :3] @ origin + affine[:3, 3]
    return out, shifted


def sample(
    source: np.ndarray, vox2vox: np.ndarray, shape: Sequence[int], *, order: int, fill: float
) -> np.ndarray:
    """``source`` sampled at the points ``vox2vox @ (i, j, k, 1)`` of a grid of ``shape``, float32, by surfa's
    rules (module docstring): ``order`` 0 nearest, 1 trilinear; ``fill`` outside.

    The points are computed as surfa's interpolator does, in float32 in the order
    ((m0 i + m1 j) + m2 k) + m3: on grids whose voxel sizes differ from 1 mm many points fall on a tie
    between two voxels, and float64 arithmetic would round a few percent of them the other way.
    """
    if order not in (0, 1):
        raise ValueError(f"order {order}: expected 0 (nearest) or 1 (trilinear)")
    m = np.asarray(vox2vox, float).astype(np.float32)
    n = source.shape
    src = np.ascontiguousarray(source, dtype=np.float32)
    out = np.empty(tuple(int(s) for s in shape[:3]), dtype=np.float32)
    j = np.arange(out.shape[1], dtype=np.float32)[:, None]
    k = np.arange(out.shape[2], dtype=np.float32)[None, :]
    for i in range(out.shape[0]):
        fi = np.float32(i)
        coords = [((m[a, 0] * fi + m[a, 1] * j) + m[a, 2] * k) + m[a, 3] for a in range(3)]
        inside = np.ones(out.shape[1:], bool)
        if order == 0:
            index = []
            for c, size in zip(coords, n, strict=True):
                inside &= (c >= 0) & (c < size)
                # C's round() of the float32 point, taken in float64 (exact); the point is >= 0 where used
                index.append(np.clip(np.floor(c.astype(float) + 0.5), 0, size - 1).astype(np.intp))
            plane = np.full(out.shape[1:], fill, dtype=np.float32)
            plane[inside] = src[index[0][inside], index[1][inside], index[2][inside]]
        else:
            points = []
            for c, size in zip(coords, n, strict=True):
                c = c.astype(float)
                near = np.rint(c)
                c = np.where(np.abs(c - near) < ISO_ATOL, near, c)  # integer offsets exact, as surfa's copy
                low = np.floor(c)
                inside &= (low >= 0) & (low <= size - 1)
                points.append(c)
            plane = ndimage.map_coordinates(src, np.stack(points), order=1, mode="nearest", output=np.float32)
            plane[~inside] = fill
        out[i] = plane
    return out


# ------------------------------------------------------------------------------------------- pipeline
def conform(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The head on SynthStrip's network grid before normalisation (module docstring, steps 1-2).

    Returns:
        (float32 array, each axis a multiple of 64 in [192, 320], its 4x4 voxel-to-world matrix in mm).

    Raises:
        InputError: no finite voxel.
    """
    data = np.asarray(volume.data, dtype=np.float32)
    finite = np.isfinite(data)
    if not finite.any():
        raise InputError(f"{volume.path}: no finite voxel")
    if not finite.all():
        data = np.where(finite, data, np.float32(data[finite].min()))
    data, affine, zooms = reorient_lia(data, volume.affine, header_zooms(volume))
    data, affine = resize_1mm(data, affine, zooms)
    data, affine = crop_positive(data, affine)
    return fit_shape(data, affine, target_shape(data.shape))


def normalise(data: np.ndarray) -> np.ndarray:
    """Minimum to 0, the 99th percentile to 1, clipped to [0, 1] (float32).

    Raises:
        InputError: the 99th percentile equals the minimum (nothing to scale by).
    """
    x = np.asarray(data, dtype=np.float32)
    x = x - x.min()
    top = float(np.percentile(x, PERCENTILE))
    if not top > 0:
        raise InputError("at least 99% of the conformed voxels equal the minimum; SynthStrip cannot scale it")
    return np.clip(x / np.float32(top), 0, 1).astype(np.float32)


def extend_sdt(sdt: np.ndarray, border: float) -> np.ndarray:
    """The network's narrow-band SDT with its outside recomputed when ``border`` reaches beyond the band
    (``border >= int(sdt.max())``): the distance to the voxels with SDT < 1, within their bounding box
    grown by round(border), 100 elsewhere; the voxels with SDT < 1 keep their values."""
    if border < int(float(sdt.max())):
        return sdt
    inside = sdt < 1
    from pumba.infer.postprocess import bounding_box

    box = bounding_box(inside)
    if box is None:
        return sdt
    gap = int(border + 0.5)
    grown = tuple(
        slice(max(s.start - gap, 0), min(s.stop + gap, n)) for s, n in zip(box, sdt.shape, strict=True)
    )
    out = np.full(sdt.shape, FILL_SDT, dtype=np.float32)
    out[grown] = ndimage.distance_transform_edt(~inside[grown])
    out[inside] = sdt[inside]
    return out


def predict_sdt(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The network's SDT (float32, the grid's shape) of a normalised conformed head."""
    import torch

    with torch.inference_mode():
        return net(torch.from_numpy(np.ascontiguousarray(x))[None, None])[0, 0].numpy().astype(np.float32)


def to_input_grid(sdt: np.ndarray, affine: np.ndarray, volume: Volume) -> np.ndarray:
    """The SDT (on the grid ``affine``) on the input's grid: trilinear, 100 outside."""
    vox2vox = np.linalg.inv(np.asarray(affine, float)) @ np.asarray(volume.affine, float)
    return sample(sdt, vox2vox, volume.data.shape, order=1, fill=FILL_SDT)


def largest_filled_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component (scipy's default), holes filled; all False when there is none."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.zeros(mask.shape, bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return ndimage.binary_fill_holes(labels == int(sizes.argmax()))


def mask_with_network(volume: Volume, net: torch.nn.Module, border: float = 1.0) -> np.ndarray:
    """SynthStrip's brain mask (bool, the volume's grid) with a given network (module docstring)."""
    if not math.isfinite(border):
        raise InputError(f"border: {border} is not a finite number of mm")
    data, affine = conform(volume)
    sdt = predict_sdt(net, normalise(data))
    del data
    sdt = extend_sdt(sdt, border)
    back = to_input_grid(sdt, affine, volume)
    return largest_filled_component(back < border)


def synthstrip_mask(volume: Volume, *, weights: str, border: float = 1.0) -> np.ndarray:
    """SynthStrip's brain mask of a head (bool, the volume's shape) with the checkpoint ``weights``.

    Raises:
        SynthStripWeightsError: the checkpoint is not given, missing or not SynthStrip's.
        InputError: no finite voxel, nothing to normalise by, a non-finite border.
    """
    net = load_synthstrip(weights)
    return mask_with_network(volume, net, border)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pumba.baselines.synthstrip -i IMAGE -o MASK --weights synthstrip.1.pt [--border MM]``."""
    from pumba.baselines.main import baseline_main

    return baseline_main("synthstrip", synthstrip_mask, argv)


if __name__ == "__main__":
    sys.exit(main())
