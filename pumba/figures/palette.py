"""One order and one colour per method, the same in every figure of a run.

The order is the config's ``methods:`` order (the workflow passes it as ``--methods``); a method's colour is
fixed by its position in that list, so a method keeps its colour in every figure even where another method
is missing (skipped, or absent from one table). Colours are seaborn's colour-blind palette, then, from the
11th method on, colours picked one at a time from a grid of sRGB colours as the farthest (CIE Lab distance)
from those already taken, from the reference's white and from black (a scan's background, where outlines are
drawn; :func:`distinct_colors`): no two methods look alike however many are configured, up to the grid's 216
colours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

REFERENCE_COLOR = "#ffffff"
"""The reference mask's colour (montages, the qualitative figure): white, unlike any method's colour."""
REFERENCE_RGB = (1.0, 1.0, 1.0)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of sRGB colours (..., 3) in [0, 1]."""
    rgb = np.asarray(rgb, float)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    delta = 6 / 29
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


@lru_cache(maxsize=1)
def distinct_colors() -> tuple[tuple[float, float, float], ...]:
    """Every method colour in slot order: seaborn's colour-blind 10, then the 6^3 sRGB grid's colours each
    the farthest (the largest smallest CIE76 distance) from the colours before it, white and black."""
    import seaborn as sns

    chosen = [tuple(float(c) for c in rgb) for rgb in sns.color_palette("colorblind", 10)]
    levels = np.linspace(0.0, 1.0, 6)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    grid_lab = srgb_to_lab(grid)
    taken = srgb_to_lab(np.array([*chosen, REFERENCE_RGB, (0.0, 0.0, 0.0)]))
    nearest = np.linalg.norm(grid_lab[:, None] - taken[None], axis=-1).min(axis=1)
    free = nearest > 0  # white and black themselves are never a method's colour
    while free.any():
        i = int(np.argmax(np.where(free, nearest, -1.0)))
        chosen.append(tuple(float(c) for c in grid[i]))
        free[i] = False
        nearest = np.minimum(nearest, np.linalg.norm(grid_lab - grid_lab[i], axis=-1))
    return tuple(chosen)


def method_order(present: Iterable[str], configured: Sequence[str] | None = None) -> list[str]:
    """The methods of ``present`` in the configured order, then any others in their order of appearance."""
    present = list(dict.fromkeys(str(m) for m in present))
    if not configured:
        return present
    known = [m for m in configured if m in present]
    return known + [m for m in present if m not in known]


def method_palette(methods: Sequence[str], configured: Sequence[str] | None = None) -> dict[str, tuple]:
    """Method -> RGB colour (0-1 floats): the colour of its position in ``configured`` (else in ``methods``).

    A method not in ``configured`` gets the next colour after the configured ones, in ``methods`` order.
    """
    colors = distinct_colors()
    order = method_order(methods, configured)
    slots = list(configured or []) + [m for m in order if m not in (configured or [])]
    return {m: colors[slots.index(m) % len(colors)] for m in order}


def parse_methods(text: str | None) -> list[str] | None:
    """A ``--methods a,b,c`` value as a list (None when not given); blanks dropped."""
    if text is None:
        return None
    return [m.strip() for m in text.split(",") if m.strip()] or None
