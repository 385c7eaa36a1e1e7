"""Wall time and peak memory (RSS) of ``pumba strip`` on large synthetic heads.

Not a test: a script that writes a 256^3 1 mm and a 512^3 0.5 mm synthetic head (int16 NIfTI, both a 256 mm
field of view), runs ``python -m pumba strip`` on each in a child process and prints a table::

    .venv/bin/python benchmarks/strip_memory.py [--sizes 256 512] [--model CKPT] [--threads N]

Peak RSS is that of the ``pumba strip`` process alone: it is started from a small stdlib-only helper
(``python -S``) that reads the child's ``ru_maxrss`` with ``os.wait4``; on Linux a process started directly
from this (large) script would inherit this script's peak at exec. The helpers (test head, measurement) live
in ``benchmarks/_child.py``, shared with ``strip_speed.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nibabel as nib
from _child import FOV_MM, measure, synthetic_head


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
            run = measure(argv)
            if run.code != 0:
                print(f"{size}^3: pumba strip exited {run.code}: {run.error}", file=sys.stderr)
            rss_mib = run.rss_mib or float("nan")
            input_mib = size**3 * 4 / 2**20
            rows.append(
                (f"{size}^3 {FOV_MM / size:g} mm", run.code, run.seconds, rss_mib, rss_mib / input_mib)
            )
            image.unlink()
    print(f"{'input':<18} {'exit':>4} {'wall s':>7} {'peak RSS MiB':>13} {'x float32 input':>16}")
    for name, code, seconds, rss, ratio in rows:
        print(f"{name:<18} {code:>4} {seconds:>7.1f} {rss:>13.0f} {ratio:>16.2f}")
    return 0 if all(r[1] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
