"""Shared helpers of the benchmark scripts (not a script): the synthetic test head, measuring a command in a
child process (wall seconds and peak RSS), the default thread count and the table/CSV output.

A command is measured through :func:`pumba.bench.runner.run_child`: a small stdlib-only helper
(``python -S``) spawns it and reads its ``ru_maxrss`` with ``os.wait4``. On Linux a process started directly
from a (large) benchmark script would inherit that script's peak RSS at exec, so the helper keeps the number
the command's own.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from pumba.bench.runner import THREAD_VARIABLES, child_environment, run_child

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "benchmarks" / "runs"  # git-ignored: the scripts' default CSV folder
FOV_MM = 256.0
BRAIN_SEMI_AXES_MM = (70.0, 85.0, 60.0)


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
    a, b, c = BRAIN_SEMI_AXES_MM
    for i, x in enumerate(axis):
        brain = x**2 / a**2 + y2 / b**2 + z2 / c**2
        head = x**2 / 90**2 + y2 / 110**2 + z2 / 90**2
        gap = x**2 / 78**2 + y2 / 93**2 + z2 / 68**2
        slab = np.where(brain < 1, 800, np.where(gap < 1, 150, np.where(head < 1, 500, 10)))
        data[i] = slab + rng.normal(0, 20, slab.shape).astype(np.int16)
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -(size - 1) / 2 * voxel
    return nib.Nifti1Image(data, affine)


def brain_volume_ml() -> float:
    """Volume of the synthetic head's brain ellipsoid in mL (the reference for a mask's volume)."""
    a, b, c = BRAIN_SEMI_AXES_MM
    return 4 / 3 * np.pi * a * b * c / 1000


@dataclass(frozen=True)
class Measured:
    """How one measured command ended: exit code (negative: killed by that signal), wall seconds, peak RSS
    in MiB (None after a timeout) and the last line of its stderr (empty if none)."""

    code: int
    seconds: float
    rss_mib: float | None
    error: str


def measure(
    argv: Sequence[str],
    *,
    threads: int | None = None,
    private_home: bool = False,
    timeout_s: float | None = None,
) -> Measured:
    """Run ``argv`` in a child process and measure it; stdout is discarded.

    ``threads`` sets the child's OMP/MKL/OpenBLAS thread variables (None: inherit ours). ``private_home``
    points HOME and the XDG_* folders at a throw-away folder, so that nothing is written under ~/.local or
    ~/.cache.
    """
    with tempfile.TemporaryDirectory(prefix="pumba-bench-child-") as tmp:
        tmp_path = Path(tmp)
        if private_home:
            (tmp_path / "home").mkdir()
            env = child_environment(tmp_path / "home", threads)
        else:
            env = dict(os.environ)
            env.update({name: str(threads) for name in THREAD_VARIABLES if threads is not None})
        stderr = tmp_path / "stderr.txt"
        result = run_child(list(argv), env, stderr, tmp_path / "report.txt", timeout_s)
        lines = [line.strip() for line in stderr.read_text(errors="replace").splitlines() if line.strip()]
    error = "timed out" if result.timed_out else (lines[-1][:200] if lines else "")
    return Measured(result.returncode, result.seconds, result.peak_rss_mb, error)


def affinity_cores() -> int:
    """CPU cores this process may run on (its affinity mask; os.cpu_count() where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; numbers are right-aligned, floats printed with 3 significant decimals."""

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
        return str(value)

    texts = [[cell(v) for v in row] for row in rows]
    numeric = [
        bool(rows) and all(isinstance(row[i], int | float) for row in rows) for i in range(len(header))
    ]
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if num else "---" for num in numeric) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in texts]
    return "\n".join(lines)


def write_csv(path: str | Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write ``rows`` under ``header`` as CSV (the parent folder is created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    return path
