"""Figure 1: the synthesis of one head, step by step, from the generator's own intermediate outputs.

For each sample (a fixed run seed, sample i drawn from ``sample_seed(seed, i)`` as ``pumba generate`` does)
the columns are the generator's stages in its order (:func:`pumba.synth.generator._generate`):

1. *shapes*: the tissue of every voxel before any intensity: background, the skull shell (head XOR the
   skull's inner ellipsoid), the extra-cerebral ellipsoids, the brain (and the head-shape extensions' parts:
   neck, cord, muscle, CSF, when the config switches them on);
2. *block intensities*: each tissue cut into n^3 blocks, each block's random mean (no noise yet);
3. *blobs and holes*: the block image with its per-block noise, the brain's holes at 0 and lesions painted;
4. *deformation*: after the random diffeomorphism and rotation (arrows: the in-plane displacement, voxels);
5. *final image and label*: after the acquisition artefacts (bias, gamma, blur, thick slices, noise), with
   the three-class training target (background, interior, boundary; :func:`pumba.synth.make_target`).

Panels are the mid-coronal slice of the 256 mm field of view, superior up, subject's left on the left.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from pumba.classes import BOUNDARY, CLASS_NAMES, INTERIOR
from pumba.figures.gallery import CLASS_COLORS, label_rgba
from pumba.figures.plots import figure_style, save_figure
from pumba.io import InputError

if TYPE_CHECKING:
    from pumba.synth.generator import SynthConfig

TISSUES = ("background", "skull shell", "extra-cerebral", "brain", "head parts (neck, muscle, CSF)")
TISSUE_COLORS = ("#000000", "#d9d9d9", "#7fc97f", "#386cb0", "#f0a830")
STEPS = (
    "1. shapes: head, skull, brain",
    "2. block intensities",
    "3. noise, blobs, holes",
    "4. deformation + rotation",
    "5. artefacts + 3-class label",
)


@dataclass(frozen=True)
class Stages:
    """One sample's mid-coronal slice at every stage (arrays (x, z): horizontal L->R, vertical I->S).

    Attributes:
        tissue: int tissue index into :data:`TISSUES`.
        blocks_mean: each voxel's block mean in [0, 1].
        noisy: the block image with noise and holes.
        warped: after deformation and rotation.
        displacement: the in-plane displacement (x, z components; voxels), shape (2, S, S).
        final: the training image in [0, 1].
        target: the 3-class label (0, 1, 2).
        voxel_mm: voxel size in mm.
    """

    tissue: np.ndarray
    blocks_mean: np.ndarray
    noisy: np.ndarray
    warped: np.ndarray
    displacement: np.ndarray
    final: np.ndarray
    target: np.ndarray
    voxel_mm: float


def synth_stages(config: SynthConfig, seed: int) -> Stages:
    """Run the generator's steps for one generator seed and keep the mid-coronal slice of each.

    The stages are computed with the generator's own functions in :func:`_generate`'s order, so the final
    image and label are bit-identical to ``generate([seed], config)`` (checked by the tests).
    """
    import torch

    from pumba.synth import artefacts, deform, intensity, labels
    from pumba.synth.generator import (
        _displacement,
        _noise,
        anatomy,
        draw_params,
        voxel_size_mm,
    )

    device = torch.device("cpu")
    params = [draw_params(int(seed), config)]
    n3 = config.block_divisions**3
    mid = config.size // 2
    with torch.no_grad():
        blocks, brain, holes = anatomy(params, config, device)
        mu = torch.stack([p.mu for p in params])
        sigma = torch.stack([p.sigma for p in params])
        group = blocks[0] // n3  # 0 background, 1 shell, 2..n_extra+1 extras, n_extra+2 brain, beyond: parts
        tissue = torch.full_like(group, 4)
        tissue[group == 0] = 0
        tissue[group == 1] = 1
        tissue[(group >= 2) & (group < config.n_extra + 2)] = 2
        tissue[brain[0]] = 3
        mean = torch.gather(mu, 1, blocks.reshape(1, -1).long()).view_as(blocks[0:1].float())
        image = intensity.block_image(blocks, mu, sigma, _noise(params, config.size, device))
        image = intensity.zero_holes(image, holes)
        rotation = torch.stack([p.rotation for p in params])
        displacement = _displacement(params, config, device)
        grid = deform.sampling_grid(displacement, rotation)
        warped = deform.warp(image[:, None], grid, "bilinear").clamp_(0.0, 1.0)
        final = torch.stack([artefacts.apply(warped[b], p.artefacts) for b, p in enumerate(params)])
        mask = deform.warp(brain[:, None].float(), grid, "nearest")[:, 0] > 0.5
        mask = labels.binary_closing(mask, round(config.closing_radius * config.scale))
        target = labels.make_target(mask.to(torch.uint8))

    def coronal(volume: torch.Tensor) -> np.ndarray:
        return np.take(volume.numpy(), mid, axis=1)

    disp = displacement[0].numpy()  # (3, S, S, S) in voxels, components along x, y, z
    return Stages(
        tissue=coronal(tissue),
        blocks_mean=coronal(mean[0]),
        noisy=coronal(image[0]),
        warped=coronal(warped[0, 0]),
        displacement=np.stack([np.take(disp[0], mid, axis=1), np.take(disp[2], mid, axis=1)]),
        final=coronal(final[0, 0]),
        target=coronal(target[0]),
        voxel_mm=voxel_size_mm(config.size),
    )


def synth_steps_figure(config: SynthConfig, seed: int, n: int = 2, config_name: str = "") -> Figure:
    """Rows: samples 0..n-1 of a run seeded ``seed``; columns: :data:`STEPS`.

    Raises:
        InputError: a negative seed or n outside 1..6.
    """
    from pumba.synth.generator import sample_seed

    if seed < 0:
        raise InputError(f"seed: need a seed >= 0, got {seed}")
    if not 1 <= n <= 6:
        raise InputError(f"number of samples: need 1 to 6, got {n}")
    stages = [synth_stages(config, sample_seed(seed, i)) for i in range(n)]
    panel = 2.3
    fig = Figure(figsize=(panel * len(STEPS) + 0.3, panel * n + 1.5), layout="constrained")
    axes = fig.subplots(n, len(STEPS), squeeze=False)
    size = config.size
    extent = (0.0, size * stages[0].voxel_mm, 0.0, size * stages[0].voxel_mm)
    tissue_cmap = ListedColormap(TISSUE_COLORS)
    for row, st in enumerate(stages):
        grey = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0, "origin": "lower", "extent": extent}
        ax = axes[row]
        ax[0].imshow(
            st.tissue.T,
            cmap=tissue_cmap,
            vmin=-0.5,
            vmax=4.5,
            origin="lower",
            extent=extent,
            interpolation="nearest",
        )
        ax[1].imshow(st.blocks_mean.T, interpolation="nearest", **grey)
        ax[2].imshow(st.noisy.T, interpolation="nearest", **grey)
        ax[3].imshow(st.warped.T, interpolation="nearest", **grey)
        step = max(1, size // 12)
        coords = (np.arange(0, size, step) + 0.5) * st.voxel_mm
        xx, zz = np.meshgrid(coords, coords, indexing="ij")
        u = st.displacement[0][::step, ::step] * st.voxel_mm
        w = st.displacement[1][::step, ::step] * st.voxel_mm
        ax[3].quiver(xx, zz, u, w, color="#ff5050", angles="xy", scale_units="xy", scale=0.5, width=0.006)
        ax[4].imshow(st.final.T, interpolation="nearest", **grey)
        ax[4].imshow(
            label_rgba(st.target).transpose(1, 0, 2), origin="lower", extent=extent, interpolation="nearest"
        )
        for a in ax:
            a.set_xticks([])
            a.set_yticks([])
            a.set_aspect("equal")
        ax[0].set_ylabel(f"sample {row}", fontsize=10)
        largest = float(np.sqrt((st.displacement**2).sum(0)).max()) * st.voxel_mm
        ax[3].text(
            0.02,
            0.02,
            f"max in-plane shift {largest:.0f} mm\n(arrows x2)",
            color="white",
            fontsize=7,
            transform=ax[3].transAxes,
            va="bottom",
        )
    for a, title in zip(axes[0], STEPS, strict=True):
        a.set_title(title, fontsize=10)
    handles = [Patch(color=c, label=t) for c, t in zip(TISSUE_COLORS, TISSUES, strict=True)]
    handles += [
        Patch(
            color=CLASS_COLORS[INTERIOR][0],
            alpha=CLASS_COLORS[INTERIOR][1],
            label=f"label: {CLASS_NAMES[INTERIOR]}",
        ),
        Patch(
            color=CLASS_COLORS[BOUNDARY][0],
            alpha=CLASS_COLORS[BOUNDARY][1],
            label=f"label: {CLASS_NAMES[BOUNDARY]}",
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False, fontsize=8)
    name = f" ({config_name})" if config_name else ""
    fig.suptitle(
        f"Synthesis step by step: generator config{name}, run seed {seed}; {size}$^3$ grid, "
        f"{stages[0].voxel_mm:g} mm voxels; mid-coronal slice, superior up, subject's left on the left",
        fontsize=11,
    )
    return fig


def synth_steps(config: SynthConfig, out: str | Path, seed: int, n: int = 2, config_name: str = "") -> None:
    """Write :func:`synth_steps_figure` to ``out`` atomically (PNG at 120 dpi, or .pdf/.svg)."""
    with figure_style(None):
        save_figure(synth_steps_figure(config, seed, n, config_name), out)
