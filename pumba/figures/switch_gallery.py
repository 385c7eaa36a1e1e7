"""The generator switch gallery: the same synthetic samples with each switch of the generator off and on.

A switch is a name and the :class:`pumba.synth.SynthConfig` fields that turn it on, read from a YAML file
(``workflow/resources/switch_gallery.yaml``: ``name: {field: value, ...}``). For each switch the figure
shows two rows of the same samples: *off*, the base config with the switch's fields at their SynthConfig
defaults (the base config itself when it leaves them there, as the default base does), and *on*, the base
config with the switch's values. Every switch of the generator draws from its own random stream, so the
two rows differ only by what the switch adds.

Panels are mid-sagittal and mid-coronal slices of the generator's grid (axis order x, y, z = RAS), drawn as
the synthetic gallery draws them (:mod:`pumba.figures.gallery`): superior up, sagittal anterior on the
left, coronal subject's left on the left, grey on the generator's [0, 1] scale, with the brain label's
outline in the gallery's boundary colour.
"""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pumba.classes import BOUNDARY
from pumba.figures.gallery import CLASS_COLORS
from pumba.figures.montage import VIEWS, View, _draw_contour, extent_mm
from pumba.figures.plots import figure_style, save_figure
from pumba.io import InputError
from pumba.yaml_files import read_mapping

if TYPE_CHECKING:
    from pumba.synth.generator import SynthConfig

SHOWN_VIEWS = tuple(v for v in VIEWS if v.name in ("sagittal", "coronal"))
OUTLINE_COLOR = CLASS_COLORS[BOUNDARY][0]
FIXED_KEYS = ("size",)
"""Fields a switch may not set: off and on must share one grid."""
MAX_SAMPLES = 12
PANEL_IN = 1.55


@dataclass(frozen=True)
class Switch:
    """One switch of the generator.

    Attributes:
        name: its name in the switch file (a row pair's title).
        overrides: the SynthConfig fields (YAML values: lists for tuples) that turn it on.
    """

    name: str
    overrides: dict[str, Any]

    def describe(self) -> str:
        """``field = value`` pairs, comma separated, as in the switch file."""
        return ", ".join(f"{key} = {value}" for key, value in self.overrides.items())


# Slices of one sample: view name -> (grey image, brain mask), both (horizontal, vertical) array axes.
SampleSlices = dict[str, tuple[np.ndarray, np.ndarray]]


def read_switches(path: str | Path) -> list[Switch]:
    """The switches of a switch file, in file order, each checked against :class:`SynthConfig`.

    Raises:
        InputError: one line naming the file (and the switch and key): an unreadable or empty file, a
            switch that is not a mapping, an unknown SynthConfig key, ``size``, a value SynthConfig
            rejects, or a switch whose values are all SynthConfig's defaults (it would change nothing).
    """
    from pumba.synth.generator import SynthConfig

    path = Path(path)
    raw = read_mapping(path, "switch gallery file")
    if not raw:
        raise InputError(f"{path}: no switches (expected name: {{SynthConfig field: value, ...}})")
    known = [f.name for f in fields(SynthConfig)]
    switches = []
    for name, overrides in raw.items():
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{path}: switch name {name!r} must be a non-empty string")
        if not isinstance(overrides, dict) or not overrides:
            raise InputError(f"{path}: switch '{name}' must be a non-empty mapping of SynthConfig fields")
        for key in overrides:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise InputError(f"{path}: switch '{name}': unknown SynthConfig key '{key}'{hint}")
            if key in FIXED_KEYS:
                raise InputError(f"{path}: switch '{name}': '{key}' cannot be switched (set it with --size)")
        try:
            on = SynthConfig.from_dict(overrides)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: switch '{name}': {exc}") from None
        if on == SynthConfig():
            raise InputError(
                f"{path}: switch '{name}': every value is SynthConfig's default; it switches nothing on"
            )
        switches.append(Switch(name, dict(overrides)))
    return switches


def load_base(path: str | Path | None, size: int | None) -> SynthConfig:
    """The base generator config: a training config's resolved ``synth`` mapping, or SynthConfig's defaults.

    Args:
        path: a training config (YAML, ``base:`` chains resolved by
            :meth:`pumba.model.config.TrainConfig.from_yaml`), or None for the defaults.
        size: grid size overriding the base's (None: the base's, 128 by default).

    Raises:
        InputError: an unreadable or invalid training config, or an invalid size; naming the file.
    """
    from pumba.model.config import TrainConfig
    from pumba.synth.cli import config_from

    synth = TrainConfig.from_yaml(path).synth if path is not None else {}
    return config_from(synth, path, size)


def switch_configs(base: SynthConfig, switch: Switch) -> tuple[SynthConfig, SynthConfig]:
    """The (off, on) configs of ``switch`` on ``base``: its fields at SynthConfig's defaults, or its values.

    Raises:
        InputError: the switch's values are invalid together with the base's other fields.
    """
    from pumba.synth.generator import SynthConfig

    defaults = SynthConfig().to_dict()
    settings = base.to_dict()
    try:
        off = SynthConfig.from_dict({**settings, **{key: defaults[key] for key in switch.overrides}})
        on = SynthConfig.from_dict({**settings, **switch.overrides})
    except (TypeError, ValueError) as exc:
        raise InputError(f"switch '{switch.name}' on the base config: {exc}") from None
    return off, on


def sample_seeds(seed: int, n: int) -> list[int]:
    """The generator seeds of samples 0..n-1 of a run seeded ``seed`` (as ``pumba generate`` draws them).

    Raises:
        InputError: a negative seed, or n outside 1..MAX_SAMPLES.
    """
    from pumba.synth.generator import sample_seed

    if seed < 0:
        raise InputError(f"seed: need a seed >= 0, got {seed}")
    if not 1 <= n <= MAX_SAMPLES:
        raise InputError(f"number of samples: need 1 to {MAX_SAMPLES}, got {n}")
    return [sample_seed(seed, i) for i in range(n)]


def mid_slices(config: SynthConfig, seeds: Sequence[int]) -> list[SampleSlices]:
    """Generate ``seeds`` with ``config`` and keep each sample's mid slices of :data:`SHOWN_VIEWS`."""
    from pumba.synth.generator import generate

    image, mask = generate(list(seeds), config)
    grey = image[:, 0].numpy()
    brain = mask.numpy().astype(bool)
    mid = config.size // 2
    return [
        {
            v.name: (np.take(grey[b], mid, axis=v.axis), np.take(brain[b], mid, axis=v.axis))
            for v in SHOWN_VIEWS
        }
        for b in range(len(seeds))
    ]


def _panel(ax: Axes, view: View, grey: np.ndarray, brain: np.ndarray, voxel_mm: float) -> None:
    """One slice (horizontal, vertical) in mm, superior up, with the brain's outline."""
    shape = (grey.shape[0],) * 3
    zooms = np.full(3, voxel_mm)
    extent = extent_mm(view, shape, zooms)
    ax.imshow(grey.T, cmap="gray", vmin=0.0, vmax=1.0, origin="lower", extent=extent, interpolation="nearest")
    _draw_contour(ax, brain, voxel_mm, voxel_mm, OUTLINE_COLOR, 1.0, 3)
    ax.set_xlim((extent[1], extent[0]) if view.flip_h else (extent[0], extent[1]))
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def switch_gallery_figure(
    switches: Sequence[Switch], base: SynthConfig, seed: int, n: int, base_name: str = "SynthConfig defaults"
) -> Figure:
    """Build the gallery: per switch, a row of samples 0..n-1 with it off and a row with it on.

    Args:
        switches: the switches (:func:`read_switches`), one block of two rows each, in order.
        base: the generator config the switches are set on (:func:`load_base`).
        seed: run seed; sample i is generated from ``sample_seed(seed, i)``, as ``pumba generate`` does.
        n: number of samples per row (each gives a sagittal and a coronal panel).
        base_name: how the figure's title names the base config.

    Raises:
        InputError: no switches, an invalid seed or n, or a switch invalid on ``base``.
    """
    from pumba.synth.generator import voxel_size_mm

    if not switches:
        raise InputError("switch gallery: no switches given")
    seeds = sample_seeds(seed, n)
    pairs = [switch_configs(base, s) for s in switches]
    cache: dict[SynthConfig, list[SampleSlices]] = {}
    for config in (c for pair in pairs for c in pair):
        if config not in cache:
            cache[config] = mid_slices(config, seeds)
    voxel = voxel_size_mm(base.size)

    n_cols = len(SHOWN_VIEWS) * n
    wrap = max(40, round(n_cols * PANEL_IN * 13))
    titles = [textwrap.wrap(f"{s.name}: {s.describe()}", wrap) for s in switches]
    heights = [2 * PANEL_IN + 0.3 + 0.18 * len(t) for t in titles]
    fig = Figure(figsize=(n_cols * PANEL_IN + 0.5, sum(heights) + 1.0), layout="constrained")
    blocks = fig.subfigures(len(switches), 1, height_ratios=heights, squeeze=False)[:, 0]
    for block, title, (off, on) in zip(blocks, titles, pairs, strict=True):
        block.suptitle("\n".join(title), x=0.01, ha="left", fontsize=10, fontweight="bold")
        grid = block.subplots(2, n_cols, squeeze=False)
        for row, (state, config) in enumerate((("off", off), ("on", on))):
            for index, sample in enumerate(cache[config]):
                for k, view in enumerate(SHOWN_VIEWS):
                    ax = grid[row, index * len(SHOWN_VIEWS) + k]
                    _panel(ax, view, *sample[view.name], voxel)
                    if row == 0:
                        ax.set_title(f"sample {index}: {view.name}" if k == 0 else view.name, fontsize=8)
            grid[row, 0].set_ylabel(state, fontsize=10, fontweight="bold")
    handle = Line2D([], [], color=OUTLINE_COLOR, linewidth=1.5, label="brain label (outline)")
    fig.legend(handles=[handle], loc="outside lower center", frameon=False, fontsize=9)
    fig.suptitle(
        f"Generator switches: the same samples (seed {seed}) with each switch off and on; base: {base_name}\n"
        f"{base.size}$^3$ grid, {voxel:g} mm voxels; mid-sagittal (anterior on the left) and mid-coronal "
        "(subject's left on the left) slices, superior up",
        fontsize=11,
    )
    return fig


def switch_gallery(
    switches: Sequence[Switch],
    out: str | Path,
    base: SynthConfig,
    seed: int,
    n: int,
    base_name: str = "SynthConfig defaults",
) -> None:
    """Write :func:`switch_gallery_figure` to ``out`` atomically (PNG at 120 dpi, or .pdf/.svg)."""
    with figure_style(None):
        save_figure(switch_gallery_figure(switches, base, seed, n, base_name), out)


__all__ = [
    "Switch",
    "load_base",
    "mid_slices",
    "read_switches",
    "sample_seeds",
    "switch_configs",
    "switch_gallery",
    "switch_gallery_figure",
]
