"""A gallery of synthetic training samples: mid slices with the 3-class label overlaid.

Samples are the generator's files ``synth_NNNN_image.nii.gz`` (float in [0, 1]) and
``synth_NNNN_label.nii.gz`` (uint8: 0 background, 1 interior, 2 boundary). Views follow the
montage's conventions (RAS, superior up, subject's left on the left, sagittal anterior on the left).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from pumba.classes import BOUNDARY, CLASS_NAMES, INTERIOR, N_CLASSES
from pumba.figures.montage import VIEWS, extent_mm, to_ras, voxel_sizes
from pumba.figures.plots import figure_style, save_figure
from pumba.io import InputError, load_volume

IMAGE_SUFFIX = "_image.nii.gz"
LABEL_SUFFIX = "_label.nii.gz"
CLASS_COLORS = {
    INTERIOR: ("#00c8ff", 0.35, CLASS_NAMES[INTERIOR]),
    BOUNDARY: ("#ff5a00", 0.75, CLASS_NAMES[BOUNDARY]),
}
"""Overlay colour, opacity and legend name of each class shown (background is left transparent)."""
SAMPLES_PER_ROW = 2
_ALLOWED = ", ".join(str(c) for c in range(N_CLASSES - 1)) + f" or {N_CLASSES - 1}"
"""The label values a sample may hold, in words ('0, 1 or 2')."""


def find_synth_pairs(directory: str | Path, n: int | None = None) -> list[tuple[Path, Path]]:
    """The first ``n`` (all if None) (image, label) pairs of a generator output directory, by name.

    Raises:
        InputError: not a directory, no ``*_image.nii.gz`` file, or an image without its label.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory")
    images = sorted(directory.glob(f"*{IMAGE_SUFFIX}"))
    if not images:
        raise InputError(f"{directory}: no synthetic samples (*{IMAGE_SUFFIX}) found")
    if n is not None:
        if n < 1:
            raise InputError(f"{directory}: number of samples must be at least 1, got {n}")
        images = images[:n]
    pairs = []
    for image in images:
        label = image.with_name(image.name.removesuffix(IMAGE_SUFFIX) + LABEL_SUFFIX)
        if not label.is_file():
            raise InputError(f"{image}: its label {label.name} is missing")
        pairs.append((image, label))
    return pairs


def label_rgba(label2d: np.ndarray) -> np.ndarray:
    """RGBA overlay (H, W, 4) of a 2-D label slice: transparent background, one colour per class."""
    rgba = np.zeros((*label2d.shape, 4), dtype=np.float32)
    for value, (color, alpha, _) in CLASS_COLORS.items():
        r, g, b, _ = to_rgba(color)
        rgba[label2d == value] = (r, g, b, alpha)
    return rgba


def _load_pair(image: Path, label: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RAS-reoriented image, integer label and voxel sizes (mm) of one sample, checked."""
    img = load_volume(image)
    lab = load_volume(label)
    if lab.data.shape != img.data.shape:
        raise InputError(f"{label}: shape {lab.data.shape} differs from its image {img.data.shape}")
    values = np.unique(lab.data)
    known = np.isin(values, range(N_CLASSES))
    if not known.all():
        bad = ", ".join(f"{v:g}" for v in values[~known][:5])
        raise InputError(f"{label}: label values must be {_ALLOWED}; found {bad}")
    grey, affine = to_ras(img.data, img.affine)
    classes, _ = to_ras(lab.data.astype(np.uint8), img.affine)
    return grey, classes, voxel_sizes(affine)


def gallery_figure(pairs: list[tuple[Path, Path]]) -> Figure:
    """Build the gallery: per sample, mid-sagittal, coronal and axial slices, label overlaid.

    Images are shown in grey on their native [0, 1] scale (no renormalisation: the generator's
    contrast is what the network sees); interior in translucent blue, the thick boundary in orange.

    Raises:
        InputError: no pairs, unreadable files, mismatched shapes or label values outside {0, 1, 2}.
    """
    if not pairs:
        raise InputError("synthetic gallery: no (image, label) pairs given")
    samples = [(Path(i), *_load_pair(Path(i), Path(lab))) for i, lab in pairs]
    per_row = min(SAMPLES_PER_ROW, len(samples))
    n_rows = math.ceil(len(samples) / per_row)
    panel = 2.2
    fig = Figure(figsize=(3 * per_row * panel, n_rows * panel + 0.9), layout="constrained")
    fig.get_layout_engine().set(wspace=0.02, hspace=0.04)
    grid = fig.subplots(n_rows, 3 * per_row, squeeze=False)
    for ax in grid.flat:
        ax.set_axis_off()
    for index, (path, grey, classes, zooms) in enumerate(samples):
        row, col0 = divmod(index, per_row)
        name = path.name.removesuffix(IMAGE_SUFFIX)
        for k, view in enumerate(VIEWS):
            ax = grid[row, col0 * 3 + k]
            mid = grey.shape[view.axis] // 2
            extent = extent_mm(view, grey.shape, zooms)
            show = {"origin": "lower", "extent": extent, "interpolation": "nearest"}
            ax.imshow(np.take(grey, mid, axis=view.axis).T, cmap="gray", vmin=0, vmax=1, **show)
            ax.imshow(label_rgba(np.take(classes, mid, axis=view.axis).T), **show)
            if view.flip_h:
                ax.set_xlim(extent[1], extent[0])
            ax.set_title(f"{name}: {view.name}" if k == 0 else view.name, fontsize=9, loc="left")
    handles = [
        Patch(facecolor=to_rgba(color, alpha), edgecolor=color, label=f"{value}: {name}")
        for value, (color, alpha, name) in CLASS_COLORS.items()
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=9)
    fig.suptitle(
        "Synthetic training samples: mid slices, label overlaid\n"
        "sagittal: anterior on the left; coronal and axial: subject's left on the left",
        fontsize=11,
    )
    return fig


def synth_gallery(pairs: list[tuple[Path, Path]], out: Path) -> None:
    """Write the gallery of :func:`gallery_figure` for the (image, label) ``pairs`` to ``out``."""
    with figure_style(None):
        save_figure(gallery_figure(pairs), out)
