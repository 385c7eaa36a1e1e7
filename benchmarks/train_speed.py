"""Training speed: seconds per optimiser step (and steps per second) of a training config.

Command::

    .venv/bin/python benchmarks/train_speed.py [--config config/train/default.yaml] [--steps 30] [--warmup 3]
        [--threads N] [--device cpu|cuda|auto] [--out CSV]

Uses the project's own training pieces: ``pumba.model.train.Trainer`` (model, optimiser, synthetic pool) and
its ``_loop``. The pool is filled first, untimed, as ``Trainer.run`` does; then ``--warmup`` steps (default 3)
run untimed and ``--steps`` steps (default 30) are timed. A step's time is what the trainer itself counts
(``Trainer.elapsed``, the ``seconds`` of a run's train_log.csv): the pool refresh (generating a new synthetic
sample every ``refresh_every`` steps, as in a real run), batch and augmentation, forward, loss, backward and
optimiser step. Log rows and the final checkpoint go to a temporary folder (never results/) and are outside
the timed part; ``wall_s`` is the whole timed loop including them. Checkpoints and snapshots are otherwise
switched off; the learning-rate schedule is the config's, cut to warm-up + timed steps (no effect on speed).

Reports (units): s_per_step (seconds), steps_per_s, the network input size and synthetic size (voxels), batch
size, threads (torch CPU threads; default every core in this process's affinity mask), device, and the number
of samples generated during the timed steps. Prints a markdown table; writes it as CSV to ``--out`` (default
``benchmarks/runs/train_speed.csv``, git-ignored).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch
from _child import ROOT, RUNS, affinity_cores, markdown_table, write_csv

from pumba.model.config import TrainConfig
from pumba.model.train import Trainer

HEADER = (
    "config",
    "device",
    "threads",
    "input_size",
    "synth_size",
    "batch_size",
    "warmup_steps",
    "steps",
    "samples_generated",
    "s_per_step",
    "steps_per_s",
    "wall_s",
)


class _NoBar:
    """Stands in for the tqdm bar ``Trainer._loop`` updates."""

    def update(self, _n: int) -> None:
        pass

    def set_postfix(self, **_kwargs) -> None:
        pass


def load_config(path: Path) -> TrainConfig:
    """The config at ``path``; an ``init:`` path not found from here is taken from the repository root."""
    cfg = TrainConfig.from_yaml(path)
    if cfg.init and not Path(cfg.init).exists() and (ROOT / cfg.init).exists():
        cfg = dataclasses.replace(cfg, init=str(ROOT / cfg.init))
    return cfg


def run_to(trainer: Trainer, step: int) -> None:
    """Train up to ``step`` steps in all (the config is cut there; log and checkpoint only at the end)."""
    never = 10**9
    trainer.cfg = dataclasses.replace(
        trainer.cfg, steps=step, log_every=never, checkpoint_every=never, snapshot_every=0
    )
    trainer._loop(_NoBar())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=ROOT / "config" / "train" / "default.yaml", help="training config"
    )
    parser.add_argument("--steps", type=int, default=30, help="timed steps (30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (3)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (all affinity cores)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (cpu)")
    parser.add_argument("--out", type=Path, default=RUNS / "train_speed.csv", help="CSV to write")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    cfg = load_config(args.config)
    threads = args.threads or affinity_cores()
    with tempfile.TemporaryDirectory(prefix="pumba-train-speed-") as tmp:
        trainer = Trainer(cfg, tmp, device=args.device, threads=threads, progress=False)
        trainer.pool.fill_to(cfg.pool_size)  # untimed, as in Trainer.run
        run_to(trainer, args.warmup)
        elapsed, generated = trainer.elapsed, trainer.pool.next_index
        start = time.perf_counter()
        run_to(trainer, args.warmup + args.steps)
        wall = time.perf_counter() - start
        seconds = trainer.elapsed - elapsed
        generated = trainer.pool.next_index - generated
    config = args.config.resolve()
    name = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
    row = (
        str(name),
        str(trainer.device),
        torch.get_num_threads(),
        cfg.input_size,
        trainer.synth.size,
        cfg.batch_size,
        args.warmup,
        args.steps,
        generated,
        round(seconds / args.steps, 4),
        round(args.steps / seconds, 4),
        round(wall, 3),
    )
    print(markdown_table(HEADER, [row]))
    print(f"\nCSV: {write_csv(args.out, HEADER, [row])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
