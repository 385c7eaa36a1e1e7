"""Overlay montages: three orthogonal slices of a head with the reference and each method's outline.

Display conventions (stated on every panel by edge letters): volumes are reoriented to the closest
RAS orientation; superior is up; coronal and axial views are in neurological convention (subject's
left on the left of the panel); the sagittal view has anterior on the left. Panels are drawn in
millimetres, so voxels keep their physical aspect (0.125 x 0.125 x 0.75 mm mouse, 0.9 x 0.9 x 5.5 mm
clinical scans).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pumba.figures.palette import REFERENCE_COLOR, method_palette
from pumba.figures.plots import figure_style, save_figure
from pumba.grid import check_same_grid
from pumba.io import Volume, load_volume

BACKGROUND = "black"
FOREGROUND = "white"


@dataclass(frozen=True)
class View:
    """One of the three orthogonal views of a RAS-ordered volume (axes x: L->R, y: P->A, z: I->S).

    Attributes:
        name: 'sagittal', 'coronal' or 'axial'.
        axis: the array axis held fixed (0, 1 or 2).
        letters: orientation letters at the (left, right, bottom, top) edges of the panel.
        flip_h: draw the horizontal axis decreasing (anterior on the left in the sagittal view).
    """

    name: str
    axis: int
    letters: tuple[str, str, str, str]
    flip_h: bool = False

    @property
    def plane_axes(self) -> tuple[int, int]:
        """The (horizontal, vertical) array axes shown in the panel."""
        return {0: (1, 2), 1: (0, 2), 2: (0, 1)}[self.axis]


VIEWS = (
    View("sagittal", 0, ("A", "P", "I", "S"), flip_h=True),
    View("coronal", 1, ("L", "R", "I", "S")),
    View("axial", 2, ("L", "R", "P", "A")),
)


def to_ras(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder and flip ``data`` (I, J, K) to the closest RAS orientation, as as_closest_canonical.

    Returns:
        The reoriented array (axes x: left->right, y: posterior->anterior, z: inferior->superior)
        and its 4x4 voxel-to-world affine (mm).
    """
    ornt = nib.orientations.io_orientation(affine)
    ras = nib.orientations.apply_orientation(data, ornt)
    return ras, affine @ nib.orientations.inv_ornt_aff(ornt, data.shape)


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Voxel sizes in mm along the array axes of ``affine``."""
    return np.sqrt((affine[:3, :3] ** 2).sum(axis=0))


def normalise(data: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Scale intensities linearly so that the ``low``/``high`` percentiles map to 0 and 1; clip."""
    lo, hi = np.percentile(data, [low, high])
    if hi <= lo:
        lo, hi = float(data.min()), float(data.max())
    if hi <= lo:
        return np.zeros_like(data, dtype=np.float32)
    return np.clip((data - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def centre_of_mass(mask: np.ndarray) -> tuple[int, int, int]:
    """The voxel nearest the centre of mass of ``mask`` (> 0); the grid centre if it is empty."""
    idx = np.argwhere(mask > 0)
    if idx.size == 0:
        return tuple(int(n // 2) for n in mask.shape)
    return tuple(round(c) for c in idx.mean(axis=0))


def extent_mm(view: View, shape: tuple[int, ...], zooms: np.ndarray) -> tuple[float, float, float, float]:
    """The panel's data (left, right, bottom, top) in mm from the grid corner, at voxel edges.

    Horizontal coordinates always increase with the array index; a flipped view reverses the x
    limits.
    """
    h, v = view.plane_axes
    return (0.0, shape[h] * zooms[h], 0.0, shape[v] * zooms[v])


def crop_box(masks: list[np.ndarray], margin: float = 0.2) -> tuple[slice, slice, slice]:
    """Index ranges around the union of ``masks`` widened by ``margin`` times its extent per side.

    Keeps the brain, the scalp around it and any leak of a method, without a wide empty field of
    view. The whole grid if every mask is empty.
    """
    shape = masks[0].shape
    union = np.zeros(shape, dtype=bool)
    for m in masks:
        union |= m
    if not union.any():
        return tuple(slice(0, n) for n in shape)
    box = []
    for axis, n in enumerate(shape):
        present = np.flatnonzero(union.any(axis=tuple(a for a in range(3) if a != axis)))
        lo, hi = int(present[0]), int(present[-1]) + 1
        pad = math.ceil(margin * (hi - lo))
        box.append(slice(max(0, lo - pad), min(n, hi + pad)))
    return tuple(box)


def _plane(volume: np.ndarray, view: View, index: int) -> np.ndarray:
    """The slice at ``index`` along ``view.axis`` as (horizontal, vertical)."""
    return np.take(volume, index, axis=view.axis)


def _draw_contour(
    ax: Axes, mask2d: np.ndarray, dh: float, dv: float, color: str, width: float, zorder: int
) -> None:
    """Outline ``mask2d`` (horizontal, vertical) along voxel edges (dh, dv: voxel sizes in mm).

    The mask is repeated (nearest) at least twice per axis, more along the coarse axis, so that the
    0.5 contour runs on voxel edges and thick slices show as steps rather than interpolated slopes.
    """
    if not mask2d.any():
        return
    fine = min(dh, dv)
    rh, rv = (max(2, min(16, round(2 * d / fine))) for d in (dh, dv))
    up = np.repeat(np.repeat(mask2d.astype(np.float32), rh, axis=0), rv, axis=1)
    # pad with background so that masks touching the slice edge still give closed outlines
    up = np.pad(up, 1)
    h = (np.arange(up.shape[0]) - 0.5) * dh / rh
    v = (np.arange(up.shape[1]) - 0.5) * dv / rv
    ax.contour(h, v, up.T, levels=[0.5], colors=[color], linewidths=width, zorder=zorder)


def scale_length(width_mm: float) -> float:
    """A round length in mm (1, 2 or 5 times a power of ten) of at most a fifth of ``width_mm``."""
    target = width_mm / 5
    exponent = math.floor(math.log10(target))
    return max(c * 10.0**e for e in (exponent - 1, exponent) for c in (1, 2, 5) if c * 10.0**e <= target)


def _scale_bar(ax: Axes, length: float, width_mm: float, height_mm: float) -> None:
    """A white bar of ``length`` mm in the lower-left corner of a panel of the given size."""
    x0, x1 = ax.get_xlim()
    sign = 1 if x1 > x0 else -1
    start = x0 + sign * 0.05 * width_mm
    y = 0.05 * height_mm
    ax.plot([start, start + sign * length], [y, y], color=FOREGROUND, linewidth=2.5, zorder=5)
    ax.text(
        start + sign * length / 2,
        y + 0.015 * height_mm,
        f"{length:g} mm",
        color=FOREGROUND,
        fontsize=8,
        ha="center",
        va="bottom",
        zorder=5,
    )


def _letters(ax: Axes, letters: tuple[str, str, str, str]) -> None:
    """Orientation letters just outside the four edges of the panel."""
    style = {"color": FOREGROUND, "fontsize": 9, "fontweight": "bold", "transform": ax.transAxes}
    left, right, bottom, top = letters
    ax.text(-0.01, 0.5, left, ha="right", va="center", **style)
    ax.text(1.01, 0.5, right, ha="left", va="center", **style)
    ax.text(0.5, -0.01, bottom, ha="center", va="top", **style)
    ax.text(0.5, 1.01, top, ha="center", va="bottom", **style)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    """Voxel Dice of two boolean masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def _load_on_grid(path: Path, image: Volume, what: str) -> np.ndarray:
    """Load a mask that must lie on ``image``'s voxel grid (:func:`pumba.grid.check_same_grid`)."""
    vol = load_volume(path)
    check_same_grid(vol, image, what=what, hint="masks must be on the image's voxel grid")
    return vol.data


def montage_figure(
    image: Path,
    masks: dict[str, Path | None],
    reference: Path,
    title: str | None = None,
    methods: list[str] | None = None,
    palette: dict[str, tuple] | None = None,
) -> Figure:
    """Build the montage: sagittal, coronal and axial slices through the reference's centre of mass, one row
    for the reference and one per method (its outline and the reference's, thin), so outlines stay apart.

    Args:
        image: the head scan (NIfTI/MGZ); shown in grey between its 1st and 99th percentiles.
        masks: method name -> its mask on the image's grid (> 0 is brain), or None if the method
            failed (listed as failed in the legend).
        reference: the reference brain mask on the image's grid (> 0.5 is brain); thick white
            outline.
        title: figure title; the image's file name if None.
        methods: the configured method order, which fixes each method's colour (:mod:`pumba.figures.palette`).
        palette: method -> colour, overriding ``methods``.

    Raises:
        InputError: unreadable files, or a mask not on the image's voxel grid.
    """
    img = load_volume(image)
    ref = _load_on_grid(Path(reference), img, "reference") > 0.5
    loaded = {
        name: None if path is None else _load_on_grid(Path(path), img, f"mask of {name}") > 0
        for name, path in masks.items()
    }
    grey, affine = to_ras(normalise(img.data), img.affine)
    ref_ras, _ = to_ras(ref, img.affine)
    ras_masks = {k: None if m is None else to_ras(m, img.affine)[0] for k, m in loaded.items()}
    zooms = voxel_sizes(affine)
    centre = centre_of_mass(ref_ras)
    world = affine @ np.array([*centre, 1.0])
    box = crop_box([ref_ras, *(m for m in ras_masks.values() if m is not None)])
    grey, ref_ras = grey[box], ref_ras[box]
    ras_masks = {k: None if m is None else m[box] for k, m in ras_masks.items()}
    centre = tuple(c - b.start for c, b in zip(centre, box, strict=True))

    widths = [grey.shape[v.plane_axes[0]] * zooms[v.plane_axes[0]] for v in VIEWS]
    heights = [grey.shape[v.plane_axes[1]] * zooms[v.plane_axes[1]] for v in VIEWS]
    # one row per outline (the reference's, then each method's with the reference thin beside it): seven
    # outlines on one slice cannot be told apart
    n_rows = 1 + len(masks)
    panel_w = 12.0 if n_rows <= 3 else 7.5
    height = panel_w * max(heights) / sum(widths)
    n_legend = 1 + len(masks)
    legend_rows = math.ceil(n_legend / min(n_legend, 4))
    fig = Figure(
        figsize=(panel_w + 0.4, n_rows * (height + 0.45) + 0.6 + 0.28 * legend_rows),
        layout="constrained",
        facecolor=BACKGROUND,
    )
    fig.get_layout_engine().set(wspace=0.06)
    grid = fig.subplots(n_rows, 3, gridspec_kw={"width_ratios": widths}, squeeze=False)
    bar = scale_length(min(widths))
    colors = {**method_palette(list(masks), methods), **(palette or {})}
    rows: list[tuple[str | None, np.ndarray | None]] = [(None, None), *ras_masks.items()]
    for r, (name, mask) in enumerate(rows):
        for ax, view, w, h in zip(grid[r], VIEWS, widths, heights, strict=True):
            hax, vax = view.plane_axes
            ax.set_facecolor(BACKGROUND)
            ax.imshow(
                _plane(grey, view, centre[view.axis]).T,
                cmap="gray",
                vmin=0.0,
                vmax=1.0,
                origin="lower",
                extent=extent_mm(view, grey.shape, zooms),
                interpolation="nearest",
                zorder=0,
            )
            dh, dv = zooms[hax], zooms[vax]
            ref_plane = _plane(ref_ras, view, centre[view.axis])
            if name is None:
                _draw_contour(ax, ref_plane, dh, dv, REFERENCE_COLOR, 2.6, 2)
            else:
                _draw_contour(ax, ref_plane, dh, dv, REFERENCE_COLOR, 0.9, 2)
                if mask is not None:
                    _draw_contour(ax, _plane(mask, view, centre[view.axis]), dh, dv, colors[name], 1.6, 3)
                else:
                    ax.text(
                        0.5,
                        0.5,
                        "failed: no mask",
                        color="#ff4040",
                        fontsize=10,
                        fontweight="bold",
                        ha="center",
                        va="center",
                        transform=ax.transAxes,
                        zorder=5,
                    )
            ax.set_xlim((w, 0.0) if view.flip_h else (0.0, w))
            ax.set_ylim(0.0, h)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            _letters(ax, view.letters)
            if r == 0:
                _scale_bar(ax, bar, w, h)
                coord = "xyz"[view.axis]
                ax.set_title(
                    f"{view.name}, {coord} = {world[view.axis]:.1f} mm",
                    color=FOREGROUND,
                    fontsize=10,
                    pad=18,
                )
        label = "reference" if name is None else name
        if name is not None and mask is not None:
            label += f"\nDice {_dice(loaded[name], ref):.3f}"
        grid[r, 0].text(
            -0.09,
            0.5,
            label,
            color=REFERENCE_COLOR if name is None else colors[name],
            fontsize=9,
            fontweight="bold",
            ha="right",
            va="center",
            rotation=0,
            transform=grid[r, 0].transAxes,
        )

    handles = [Line2D([], [], color=REFERENCE_COLOR, linewidth=2.6, label="reference")]
    for name, mask in ras_masks.items():
        if mask is None:
            handles.append(
                Line2D(
                    [],
                    [],
                    color="0.6",
                    marker="x",
                    linestyle="none",
                    markersize=8,
                    markeredgewidth=2,
                    label=f"{name}: failed, no mask",
                )
            )
        else:
            score = _dice(loaded[name], ref)
            handles.append(
                Line2D([], [], color=colors[name], linewidth=1.8, label=f"{name} (Dice {score:.3f})")
            )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(n_legend, 4),
        frameon=False,
        labelcolor=FOREGROUND,
        fontsize=10,
    )
    sizes = " x ".join(f"{z:.3g}" for z in voxel_sizes(img.affine))
    fig.suptitle(
        f"{title or Path(image).name}\n"
        f"voxels {sizes} mm; sagittal: anterior on the left; "
        "coronal and axial: subject's left on the left (neurological)",
        color=FOREGROUND,
        fontsize=11,
    )
    return fig


def overlay_montage(
    image: Path,
    masks: dict[str, Path | None],
    reference: Path,
    out: Path,
    title: str | None = None,
    methods: list[str] | None = None,
) -> None:
    """Write the montage of :func:`montage_figure` to ``out`` (PNG at 120 dpi, or .pdf/.svg)."""
    with figure_style(None):
        save_figure(montage_figure(image, masks, reference, title, methods), out)
