"""Figure 2: qualitative results, one row per dataset, one column per method, the reference beside them.

Each dataset gets two rows of panels: a slice through the brain (the coronal slice through the reference's
centre of mass) and the slice where the methods differ most (of every axial, coronal and sagittal slice, the
one with the most voxels on which the successful methods do not all agree; on heads with a neck this is
usually the neck or an edge where some method leaks). The first column is the reference mask's outline (white)
over the image; each other column is one method's outline in its colour (:mod:`pumba.figures.palette`) over
the image with the reference's outline thin beside it, and its Dice in the corner. A failed run is a panel
marked "failed". The panels are cropped to the union of every mask and the reference with a margin, so a leak
is shown, not cropped away. Views follow the montage's conventions (:mod:`pumba.figures.montage`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pumba.figures.montage import (
    VIEWS,
    View,
    _dice,
    _draw_contour,
    _load_on_grid,
    centre_of_mass,
    crop_box,
    extent_mm,
    normalise,
    to_ras,
    voxel_sizes,
)
from pumba.figures.palette import REFERENCE_COLOR, method_palette
from pumba.figures.plots import figure_style, save_figure
from pumba.io import InputError, load_volume

PANEL_IN = 1.25
VIEW_OF = {v.name: v for v in VIEWS}


@dataclass(frozen=True)
class Case:
    """One scan of the figure.

    Attributes:
        label: the row's title (dataset, species, contrast, pathology).
        image, reference: the scan and its reference mask.
        masks: method -> its mask on the image's grid, or None for a failed run.
    """

    label: str
    image: Path
    reference: Path
    masks: Mapping[str, Path | None]


@dataclass(frozen=True)
class Loaded:
    """A case in RAS, cropped: grey image, reference, masks (None: failed), voxel sizes (mm), Dice."""

    grey: np.ndarray
    reference: np.ndarray
    masks: dict[str, np.ndarray | None]
    zooms: np.ndarray
    dice: dict[str, float]


def load_case(case: Case) -> Loaded:
    """Load, reorient to RAS and crop a case (see the module docstring)."""
    img = load_volume(case.image)
    ref = _load_on_grid(Path(case.reference), img, "reference") > 0.5
    masks: dict[str, np.ndarray | None] = {}
    dice: dict[str, float] = {}
    for name, path in case.masks.items():
        if path is None or not Path(path).is_file():
            masks[name] = None
            continue
        m = _load_on_grid(Path(path), img, f"mask of {name}") > 0
        dice[name] = _dice(m, ref)
        masks[name] = to_ras(m, img.affine)[0]
    grey, affine = to_ras(normalise(img.data), img.affine)
    ref_ras = to_ras(ref, img.affine)[0]
    box = crop_box([ref_ras, *(m for m in masks.values() if m is not None)], margin=0.12)
    return Loaded(
        grey[box],
        ref_ras[box],
        {k: None if m is None else m[box] for k, m in masks.items()},
        voxel_sizes(affine),
        dice,
    )


def disagreement_slice(case: Loaded) -> tuple[View, int]:
    """The (view, index) of the slice with the most voxels where the successful masks and the reference
    do not all agree; the mid-coronal slice when there is no disagreement (or no mask)."""
    stack = [case.reference, *(m for m in case.masks.values() if m is not None)]
    if len(stack) < 2:
        return VIEW_OF["coronal"], case.grey.shape[1] // 2
    total = np.zeros(case.reference.shape, dtype=np.int16)
    for m in stack:
        total += m
    disagree = (total > 0) & (total < len(stack))
    best: tuple[int, View, int] = (-1, VIEW_OF["coronal"], case.grey.shape[1] // 2)
    for view in VIEWS:
        counts = disagree.sum(axis=tuple(a for a in range(3) if a != view.axis))
        index = int(np.argmax(counts))
        if counts[index] > best[0]:
            best = (int(counts[index]), view, index)
    return best[1], best[2]


def _panel(
    ax: Axes,
    case: Loaded,
    view: View,
    index: int,
    mask: np.ndarray | None,
    color: str | tuple,
    show_reference_thin: bool,
) -> None:
    hax, vax = view.plane_axes
    zooms = case.zooms
    extent = extent_mm(view, case.grey.shape, zooms)
    ax.imshow(
        np.take(case.grey, index, axis=view.axis).T,
        cmap="gray",
        vmin=0,
        vmax=1,
        origin="lower",
        extent=extent,
        interpolation="nearest",
    )
    dh, dv = zooms[hax], zooms[vax]
    if show_reference_thin:
        _draw_contour(ax, np.take(case.reference, index, axis=view.axis), dh, dv, REFERENCE_COLOR, 0.7, 2)
    if mask is not None:
        _draw_contour(ax, np.take(mask, index, axis=view.axis), dh, dv, color, 1.4, 3)
    ax.set_xlim((extent[1], extent[0]) if view.flip_h else (extent[0], extent[1]))
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def qualitative_figure(cases: Sequence[Case], methods: Sequence[str] | None = None) -> Figure:
    """Build Figure 2 (see the module docstring); ``methods`` fixes the columns' order and colours."""
    if not cases:
        raise InputError("qualitative figure: no scan given")
    names = list(dict.fromkeys(m for c in cases for m in c.masks))
    order = [m for m in (methods or names) if m in names] + [m for m in names if m not in (methods or names)]
    palette = method_palette(order, methods)
    loaded = [load_case(c) for c in cases]
    n_cols = 1 + len(order)
    fig = Figure(
        figsize=(PANEL_IN * n_cols + 1.2, PANEL_IN * 2 * len(cases) + 1.4),
        layout="constrained",
        facecolor="black",
    )
    rows = fig.subfigures(len(cases), 1, squeeze=False)[:, 0]
    for sub, case, data in zip(rows, cases, loaded, strict=True):
        sub.set_facecolor("black")
        sub.suptitle(case.label, x=0.005, ha="left", color="white", fontsize=9, fontweight="bold")
        grid = sub.subplots(2, n_cols, squeeze=False)
        brain = (VIEW_OF["coronal"], centre_of_mass(data.reference)[1])
        edge = disagreement_slice(data)
        for r, (view, index) in enumerate((brain, edge)):
            _panel(grid[r, 0], data, view, index, data.reference, REFERENCE_COLOR, False)
            grid[r, 0].set_ylabel(
                f"{'brain' if r == 0 else 'most disagreement'}\n{view.name} {index}",
                color="white",
                fontsize=7,
            )
            for c, method in enumerate(order, start=1):
                ax = grid[r, c]
                mask = data.masks.get(method)
                _panel(ax, data, view, index, mask, palette[method], True)
                if method not in data.masks:
                    ax.text(
                        0.5, 0.5, "not run", color="0.7", ha="center", va="center", transform=ax.transAxes
                    )
                elif mask is None:
                    ax.text(
                        0.5,
                        0.5,
                        "failed\n(no mask)",
                        color="#ff4040",
                        ha="center",
                        va="center",
                        fontsize=9,
                        fontweight="bold",
                        transform=ax.transAxes,
                    )
                elif r == 0:
                    ax.text(
                        0.03,
                        0.97,
                        f"{data.dice[method]:.2f}",
                        color="white",
                        fontsize=7,
                        va="top",
                        transform=ax.transAxes,
                        bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "lw": 0},
                    )
        if sub is rows[0]:
            grid[0, 0].set_title("reference", color=REFERENCE_COLOR, fontsize=8)
            for c, method in enumerate(order, start=1):
                grid[0, c].set_title(method, color=palette[method], fontsize=8)
    handles = [Line2D([], [], color=REFERENCE_COLOR, lw=1.5, label="reference (thin beside each method)")]
    handles += [Line2D([], [], color=palette[m], lw=1.5, label=m) for m in order]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(6, len(handles)),
        frameon=False,
        labelcolor="white",
        fontsize=8,
    )
    fig.suptitle(
        "Qualitative results: each method's mask outline over the scan; top row of each dataset: coronal "
        "slice through the brain's centre, with Dice; bottom row: the slice where the masks disagree most\n"
        "sagittal: anterior on the left; coronal and axial: subject's left on the left; superior up",
        color="white",
        fontsize=10,
    )
    return fig


def qualitative(cases: Sequence[Case], out: str | Path, methods: Sequence[str] | None = None) -> None:
    """Write :func:`qualitative_figure` to ``out`` atomically."""
    with figure_style(None):
        save_figure(qualitative_figure(cases, methods), out)


def manifest_cases(
    manifests: Sequence[str | Path], predictions: str | Path, methods: Sequence[str], per_dataset: int = 1
) -> list[Case]:
    """The first ``per_dataset`` subjects of each manifest as cases.

    A method's mask is PREDICTIONS/METHOD/DATASET/SUBJECT.nii.gz.

    A row's label names dataset, species, modality and pathology.
    """

    from pumba.metrics.tables import read_table

    cols = ("dataset", "subject", "image", "mask", "species", "modality", "pathology")
    cases = []
    for path in manifests:
        frame = read_table(path, "manifest", cols, sep="\t", dtype=str, keep_default_na=False)
        for r in frame.head(per_dataset).itertuples():
            pathology = "" if r.pathology in ("", "none") else f", {r.pathology}"
            cases.append(
                Case(
                    f"{r.dataset} / {r.subject}: {r.species}, {r.modality}{pathology}",
                    Path(r.image),
                    Path(r.mask),
                    {m: Path(predictions) / m / r.dataset / f"{r.subject}.nii.gz" for m in methods},
                )
            )

    return cases
