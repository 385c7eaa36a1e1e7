"""Wall time and peak memory (RSS) of ``pumba strip`` on large synthetic heads.

Not a test: a script that writes a 256^3 1 mm and a 512^3 0.5 mm synthetic head (int16 NIfTI, both a 256 mm
field of view), runs ``python -m pumba strip`` on each in a child process and prints a table::

    .venv/bin/python benchmarks/strip_memory.py [--sizes 256 512] [--model CKPT] [--threads N]

Peak RSS is that of the ``pumba strip`` process alone: it is started from a small stdlib-only helper
(``python -S``) that reads the child's ``ru_maxrss`` with ``os.wait4``; on Linux a process started directly
from this (large) script would inherit this script's peak at exec.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

FOV_MM = 256.0

_HELPER = """
import os, sys, time
argv = sys.argv[1:]
start = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, time.perf_counter() - start)
"""


def synthetic_head(size: int) -> nib.Nifti1Image:
    """A head-like int16 volume of ``size``^3 voxels spanning 256 mm (RAS, centred on the world origin).

    A bright ellipsoidal brain (semi-axes 70, 85, 60 mm) inside a 10 mm dark gap and a skull/scalp shell up
    to (90, 110, 90) mm, on a near-zero background with mild noise; built slab by slab so that making a 512^3
    volume needs little more than the volume itself.
    """
    voxel = FOV_MM / size
    axis = (np.arange(size) - (size - 1) / 2) * voxel
    data = np.empty((size, size, size), np.int16)
    rng = np.random.default_rng(0)
    y2 = (axis[:, None] ** 2).astype(np.float32)
    z2 = (axis[None, :] ** 2).astype(np.float32)
    for i, x in enumerate(axis):
        brain = x**2 / 70**2 + y2 / 85**2 + z2 / 60**2
        head = x**2 / 90**2 + y2 / 110**2 + z2 / 90**2
        gap = x**2 / 78**2 + y2 / 93**2 + z2 / 68**2
        slab = np.where(brain < 1, 800, np.where(gap < 1, 150, np.where(head < 1, 500, 10)))
        data[i] = slab + rng.normal(0, 20, slab.shape).astype(np.int16)
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -(size - 1) / 2 * voxel
    return nib.Nifti1Image(data, affine)


def measure(argv: list[str]) -> tuple[int, float, float]:
    """Exit code, peak RSS in MiB and wall seconds of ``argv``."""
    out = subprocess.run(
        [sys.executable, "-S", "-c", _HELPER, *argv], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(out[0]), int(out[1]) / 1024, float(out[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="grid edges (voxels)")
    parser.add_argument("--model", help="model file (default: the shipped weights)")
    parser.add_argument("--threads", type=int, help="passed to pumba strip --threads")
    parser.add_argument("--mode", default="auto", help="passed to pumba strip --mode")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pumba-mem-") as tmp:
        for size in args.sizes:
            image = Path(tmp) / f"head{size}.nii.gz"
            nib.save(synthetic_head(size), image)
            argv = [sys.executable, "-m", "pumba", "strip", "-i", str(image), "-m", f"{tmp}/m{size}.nii.gz"]
            argv += ["--device", "cpu", "--mode", args.mode, "-q"]
            argv += ["--model", args.model] if args.model else []
            argv += ["--threads", str(args.threads)] if args.threads else []
            code, rss_mib, seconds = measure(argv)
            input_mib = size**3 * 4 / 2**20
            rows.append((f"{size}^3 {FOV_MM / size:g} mm", code, seconds, rss_mib, rss_mib / input_mib))
            image.unlink()
    print(f"{'input':<18} {'exit':>4} {'wall s':>7} {'peak RSS MiB':>13} {'x float32 input':>16}")
    for name, code, seconds, rss, ratio in rows:
        print(f"{name:<18} {code:>4} {seconds:>7.1f} {rss:>13.0f} {ratio:>16.2f}")
    return 0 if all(r[1] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
