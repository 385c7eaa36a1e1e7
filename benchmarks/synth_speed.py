"""Synthetic-head generation speed: samples per second of ``pumba.synth.generate`` for a training config.

Command::

    .venv/bin/python benchmarks/synth_speed.py [--config TRAIN.yaml] [--sizes 128 ...] [--device cpu cuda]
        [--threads N] [--n 20] [--warmup 2] [--out CSV]

The generator settings are the config's ``synth:`` mapping (through ``SynthConfig.from_dict``; ``base:``
chains are applied) with ``size`` replaced by each of ``--sizes`` (grid edge in voxels; default 128, the
training recipes' size). Default config: ``config/release.yaml``, or ``config/ablation/all.yaml`` (every
generator extension on) where there is no release config yet. For each size and device, ``--warmup`` samples
(default 2) are generated and discarded, then ``--n`` samples (default 20) are timed one at a time (batch 1,
the samples of the run's seeds ``sample_seed(seed, k)``); CUDA is synchronised before each clock read.

Measures (units): s/sample (mean and median wall seconds of one ``generate`` call) and samples/s (timed
samples over their total seconds). ``generate`` alone: the training pool's average pooling to the network's
input size and its target labels are not included. ``--threads`` sets torch's CPU threads (default: every core
in this process's affinity mask); note that training generates on one CPU thread (``SyntheticPool.make``), so
``--threads 1`` is the training-time number. Prints a markdown table; writes it as CSV to ``--out`` (default
``benchmarks/runs/synth_speed.csv``, git-ignored).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch
from _child import ROOT, RUNS, affinity_cores, markdown_table, write_csv

from pumba.model.config import TrainConfig
from pumba.synth import SynthConfig, generate, sample_seed

HEADER = (
    "config",
    "device",
    "threads",
    "size",
    "warmup",
    "n",
    "total_s",
    "s_per_sample_mean",
    "s_per_sample_median",
    "samples_per_s",
)


def default_config() -> Path:
    """``config/release.yaml`` if it exists, else ``config/ablation/all.yaml``."""
    release = ROOT / "config" / "release.yaml"
    return release if release.exists() else ROOT / "config" / "ablation" / "all.yaml"


def default_devices() -> list[str]:
    """CPU, and CUDA when this machine has it."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def time_samples(synth: SynthConfig, seed: int, device: torch.device, warmup: int, n: int) -> list[float]:
    """Wall seconds of each of ``n`` timed samples (after ``warmup`` untimed ones)."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    seconds = []
    for k in range(warmup + n):
        sync()
        start = time.perf_counter()
        image, mask = generate([sample_seed(seed, k)], synth, device=device)
        sync()
        if k >= warmup:
            seconds.append(time.perf_counter() - start)
        del image, mask
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None, help="training config (default: see above)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128], help="grid edges in voxels (128)")
    parser.add_argument(
        "--device", nargs="+", choices=("cpu", "cuda"), default=None, help="devices (cpu, and cuda if any)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (all affinity cores)")
    parser.add_argument("--n", type=int, default=20, help="timed samples per size and device (20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed samples first (2)")
    parser.add_argument("--out", type=Path, default=RUNS / "synth_speed.csv", help="CSV to write")
    args = parser.parse_args()
    if args.n < 1 or args.warmup < 0:
        parser.error("--n must be >= 1 and --warmup >= 0")
    config_path = args.config or default_config()
    cfg = TrainConfig.from_yaml(config_path)
    base = SynthConfig.from_dict(cfg.synth)
    devices = args.device or default_devices()
    if "cuda" in devices and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    threads = args.threads or affinity_cores()
    torch.set_num_threads(threads)
    name = (
        config_path.resolve().relative_to(ROOT) if config_path.resolve().is_relative_to(ROOT) else config_path
    )
    rows = []
    for device in devices:
        for size in args.sizes:
            synth = dataclasses.replace(base, size=size)
            seconds = time_samples(synth, cfg.seed, torch.device(device), args.warmup, args.n)
            total = sum(seconds)
            rows.append(
                (
                    str(name),
                    device,
                    threads,
                    size,
                    args.warmup,
                    args.n,
                    round(total, 4),
                    round(total / len(seconds), 4),
                    round(statistics.median(seconds), 4),
                    round(len(seconds) / total, 4),
                )
            )
            print(f"{device} {size}^3: {total / len(seconds):.3f} s/sample", file=sys.stderr)
    print(markdown_table(HEADER, rows))
    print(f"\nCSV: {write_csv(args.out, HEADER, rows)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
