"""Synthetic training data: random ellipsoidal heads with a brain label (PUMBA method, steps 1-9).

Public API: :class:`SynthConfig`, :func:`generate`, :func:`make_target`, :func:`augment`,
:func:`sample_seed`; ``pumba generate`` writes samples as NIfTI files.
"""

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
