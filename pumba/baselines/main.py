"""The baselines' shared command line: ``python -m pumba.baselines.<module> -i IMAGE -o MASK [flags]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import numpy as np


def baseline_main(tool: str, compute: Callable[..., np.ndarray], argv: Sequence[str] | None = None) -> int:
    """``main`` of a baseline: ``-i IMAGE -o MASK`` and one flag per setting of ``tool`` in the registry.

    ``compute(volume, **settings)`` returns a boolean mask of the volume's shape; it is written with the
    image's grid and affine as uint8 0/1 (atomically). A user error prints one line and returns 2; any
    other exception propagates (the runner records its last line).
    """
    from pumba.bench.registry import get_method
    from pumba.io import InputError, load_volume, save_like

    method = get_method(tool)
    parser = argparse.ArgumentParser(prog=f"pumba {tool}", description=f"{tool}: {method.summary}")
    parser.add_argument("-i", "--input", required=True, help="head image (.nii, .nii.gz, .mgz)")
    parser.add_argument("-o", "--output", required=True, help="brain mask to write (uint8 0/1)")
    for setting in method.settings:
        setting.add_to(parser)
    args = parser.parse_args(argv)
    values = {s.name: getattr(args, s.name) for s in method.settings}
    try:
        volume = load_volume(args.input)
        mask = compute(volume, **values)
        save_like(np.asarray(mask, dtype=np.uint8), volume, args.output, dtype=np.uint8)
    except InputError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def finite_float32(data: np.ndarray) -> np.ndarray:
    """float32 ``data`` with non-finite voxels set to the finite minimum (0 if none is finite).

    For tools whose intensity steps (bias correction, percentiles, registration metrics) would spread a NaN.
    """
    data = np.asarray(data, dtype=np.float32)
    finite = np.isfinite(data)
    if finite.all():
        return data
    low = float(data[finite].min()) if finite.any() else 0.0
    return np.where(finite, data, np.float32(low)).astype(np.float32)
