"""Synthetic training data: random ellipsoidal heads with a brain label (PUMBA method, steps 1-9).

Public API: :class:`SynthConfig`, :func:`generate`, :func:`make_target`, :func:`augment`,
:func:`sample_seed`; ``pumba generate`` writes samples as NIfTI files. Names are imported on first
use, so that ``pumba --help`` (which imports :mod:`pumba.synth.cli`) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pumba.synth.generator import (
        SynthConfig,
        augment,
        draw_params,
        generate,
        grid_affine,
        sample_displacement,
        sample_seed,
    )
    from pumba.synth.labels import make_target

_HOMES = {
    "SynthConfig": "generator",
    "augment": "generator",
    "draw_params": "generator",
    "generate": "generator",
    "grid_affine": "generator",
    "sample_displacement": "generator",
    "sample_seed": "generator",
    "make_target": "labels",
}

__all__ = [
    "SynthConfig",
    "augment",
    "draw_params",
    "generate",
    "grid_affine",
    "make_target",
    "sample_displacement",
    "sample_seed",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'pumba.synth' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pumba.synth.{_HOMES[name]}"), name)
