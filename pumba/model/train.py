"""Training the U-Net on synthetic heads generated on the fly.

A pool of ``pool_size`` synthetic volumes is kept in memory (at the network's input size; for the cascade's
fine stage at the generator's size, with their training prior, cropped at every step); every
``refresh_every`` steps the oldest is replaced by a newly generated one. Sample ``k`` of a run is
``generate([sample_seed(seed, k)])``, and the pool sampling and augmentation of step ``s`` are seeded from
(seed, s), so a resumed run sees exactly what an uninterrupted one would have.

Outputs in ``out_dir``: ``checkpoint.pt`` (latest state, for ``--resume``), ``train_log.csv`` (one row per
``log_every`` steps), ``config.yaml`` (the resolved config) and, at the end, ``model.pt`` (inference weights).
The checkpoint holds the log's rows too: a resumed run rewrites ``train_log.csv`` from them, so a log that a
workflow manager deleted with a failed job's outputs comes back whole.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from pumba.classes import N_CLASSES, N_FINE_CLASSES
from pumba.device import resolve_device
from pumba.io import InputError, make_output_dir, remove_stale_temporaries, write_text_atomic
from pumba.model.checkpoint import load_checkpoint, load_model, save_checkpoint, save_model
from pumba.model.config import TrainConfig
from pumba.model.loss import brain_loss, pumba_loss, refine_loss
from pumba.model.unet import UNet3D
from pumba.synth import SynthConfig, augment, generate, make_target, sample_seed
from pumba.synth.labels import thick_boundary

DICE_COLUMNS = {
    "coarse": ("dice_interior", "dice_boundary"),
    "brain": ("dice_brain",),
    "fine": ("dice_brain", "dice_edge"),
}
"""The Dice values each loss reports, by :func:`loss_kind` (:func:`pumba.model.loss.pumba_loss`,
``brain_loss``, ``refine_loss``)."""


def loss_kind(cfg: TrainConfig) -> str:
    """The loss a config trains with: 'coarse' (the three-class loss), 'brain' (the whole-head stage without
    the boundary class) or 'fine' (the cascade's second stage)."""
    if cfg.stage == "fine":
        return "fine"
    return "coarse" if cfg.boundary_class else "brain"


def log_columns(kind: str) -> tuple[str, ...]:
    """Columns of ``train_log.csv`` for a :func:`loss_kind`."""
    return ("step", "seconds", "loss", *DICE_COLUMNS[kind], "lr", "samples_generated")


class TrainingInterruptedError(Exception):
    """Raised after SIGTERM/SIGINT once the checkpoint has been written; ``signum`` is the signal."""

    def __init__(self, signum: int, step: int) -> None:
        super().__init__(f"stopped by signal {signum} at step {step}; checkpoint saved")
        self.signum = signum


def step_seed(seed: int, step: int) -> int:
    """Seed of the draws (pool indices, augmentation) of training step ``step``."""
    return int(np.random.SeedSequence([seed, 1, step]).generate_state(1)[0])


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Learning rate at 0-based ``step``: linear warm-up, then constant or cosine decay to ``lr_min``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    span = max(1, cfg.steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * t))


def synth_config(cfg: TrainConfig) -> SynthConfig:
    """The generator settings of a training config."""
    try:
        return SynthConfig.from_dict(cfg.synth)
    except (TypeError, ValueError) as exc:
        raise InputError(f"training config 'synth': {exc}") from None


@dataclass
class SyntheticPool:
    """Synthetic (image, target) pairs at the network's input size, refreshed first-in first-out.

    Images are float32 (1, S, S, S) in [0, 1]; targets int64 (S, S, S) with 0 background, 1 interior,
    2 boundary, computed at the input size from the average-pooled brain mask.
    """

    cfg: TrainConfig
    synth: SynthConfig
    device: torch.device
    next_index: int = 0

    def __post_init__(self) -> None:
        size = max(self.cfg.batch_size, self.cfg.pool_size)
        self.items: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=size)

    def make(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Generate samples ``indices`` of this run, pooled to the input size."""
        seeds = [sample_seed(self.cfg.seed, k) for k in indices]
        threads = torch.get_num_threads()
        # the generator's many small kernels run faster and steadier on one CPU thread (measured on 2 cores)
        if self.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            return self._make(seeds)
        finally:
            torch.set_num_threads(threads)

    def _make(self, seeds: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.cfg.stage == "fine":
            return self._make_fine(seeds)
        with torch.no_grad():
            image, mask = generate(seeds, self.synth, device=self.device)
            factor = self.synth.size // self.cfg.input_size
            if factor > 1:
                image = torch.nn.functional.avg_pool3d(image, factor)
                mask = torch.nn.functional.avg_pool3d(mask[:, None].float(), factor)[:, 0] > 0.5
            target = make_target(mask.to(torch.uint8), self.cfg.boundary_class)
        return [(image[b], target[b]) for b in range(len(seeds))]

    def _make_fine(self, seeds: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fine stage: (image and prior (2, S, S, S), brain mask uint8 (S, S, S)) at the generator's size; the
        prior's draws are seeded by the sample's seed."""
        from pumba.infer.cascade import synthetic_prior

        with torch.no_grad():
            image, mask = generate(seeds, self.synth, device=self.device)
            items = []
            for b, seed in enumerate(seeds):
                rng = np.random.default_rng([seed, 7])
                prior = synthetic_prior(mask[b], rng, self.cfg.prior_blur, self.cfg.prior_grow)
                items.append((torch.cat([image[b], prior.to(image.device)]), mask[b]))
        return items

    def fill_to(self, next_index: int) -> None:
        """Fill the pool with the samples it holds when ``next_index`` samples have been generated."""
        first = max(0, next_index - self.items.maxlen)
        self.items.clear()
        for start in range(first, next_index, 8):
            self.items.extend(self.make(list(range(start, min(start + 8, next_index)))))
        self.next_index = next_index

    def refresh(self) -> None:
        """Replace the oldest sample by a new one."""
        self.items.extend(self.make([self.next_index]))
        self.next_index += 1

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """An augmented batch for ``step``: image (B, 1, S, S, S), target (B, S, S, S)."""
        rng = np.random.default_rng(step_seed(self.cfg.seed, step))
        picks = rng.integers(0, len(self.items), size=batch_size)
        if self.cfg.stage == "fine":
            crops = [self._crop(*self.items[i], rng) for i in picks]
            image = torch.stack([c[0] for c in crops])
            target = torch.stack([c[1] for c in crops]).long()
            aug_seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=batch_size)]
            # the crops' random placement replaces the roll (which would wrap a crop's faces together)
            return augment(image, target, aug_seeds, dataclasses.replace(self.synth, roll=0))
        image = torch.stack([self.items[i][0] for i in picks])
        target = torch.stack([self.items[i][1] for i in picks])
        aug_seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=batch_size)]
        return augment(image, target, aug_seeds, self.synth)

    def _crop(
        self, channels: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """An ``input_size``^3 crop of one fine-stage sample: centred on a random voxel of the brain's edge
        (share ``crop_at_edge``) or of the brain's bounding box, jittered by up to a quarter crop, inside the
        grid."""
        c, size = self.cfg.input_size, mask.shape[0]
        at_edge = rng.random() < self.cfg.crop_at_edge
        where = thick_boundary(mask[None].bool())[0] if at_edge else mask.bool()
        points = torch.nonzero(where)
        if len(points) == 0:
            centre = np.full(3, size // 2)
        else:
            centre = points[int(rng.integers(0, len(points)))].cpu().numpy()
            if not at_edge:  # anywhere in the brain's bounding box, not only in the brain
                lo, hi = points.min(0).values.cpu().numpy(), points.max(0).values.cpu().numpy()
                centre = rng.integers(lo, hi + 1)
        centre = centre + rng.integers(-(c // 4), c // 4 + 1, size=3)
        start = np.clip(centre - c // 2, 0, size - c)
        box = tuple(slice(int(s), int(s) + c) for s in start)
        return channels[(slice(None), *box)], mask[box]


class Trainer:
    """One training run writing to ``out_dir``; ``run()`` trains to ``cfg.steps``, returns the model path."""

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: str | Path,
        device: str = "cpu",
        threads: int | None = None,
        progress: bool = True,
    ) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.device = resolve_device(device)
        if threads:
            torch.set_num_threads(int(threads))
        self.progress = progress
        self.synth = synth_config(cfg)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # the initial weights are a draw too
            fine = cfg.stage == "fine"
            self.model = UNet3D(
                widths=cfg.widths,
                bottleneck=cfg.bottleneck,
                n_classes=N_FINE_CLASSES if fine else N_CLASSES,
                in_channels=2 if fine else 1,
            ).to(self.device)
        if cfg.init:
            self._load_init(cfg.init)
        self.memory_format = torch.channels_last_3d if cfg.channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.pool = SyntheticPool(cfg, self.synth, self.device)
        self.step = 0
        self.elapsed = 0.0
        self.log_rows: list[list[str]] = []
        self._stop_signal: int | None = None

    def _load_init(self, path: str) -> None:
        """Start from the weights in ``path`` (same architecture; InputError naming the file otherwise)."""
        init, _ = load_model(path, stage=self.cfg.stage)
        if init.architecture() != self.model.architecture():
            raise InputError(
                f"{path}: init weights are a {init.architecture()} network, the config asks for "
                f"{self.model.architecture()}"
            )
        self.model.load_state_dict(init.state_dict())

    # -- state -----------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    @property
    def log_path(self) -> Path:
        return self.out_dir / "train_log.csv"

    @property
    def model_path(self) -> Path:
        return self.out_dir / "model.pt"

    def save_checkpoint(self) -> None:
        """Write the run's state (atomic)."""
        save_checkpoint(
            self.checkpoint_path,
            {
                "architecture": self.model.architecture(),
                "input_size": self.cfg.input_size,
                "fov_mm": self.cfg.fov_mm,
                "state_dict": {k: v.cpu() for k, v in self.model.state_dict().items()},
                "stage": self.cfg.stage,
                "grid_size": self.cfg.grid_size,
                "boundary_class": self.cfg.boundary_class,
                "optimizer": self.optimizer.state_dict(),
                "step": self.step,
                "elapsed": self.elapsed,
                "samples_generated": self.pool.next_index,
                "config": self.cfg.to_dict(),
                "log_rows": self.log_rows,
            },
        )

    def save_snapshot(self) -> Path:
        """Write ``snapshots/model_step<step>.pt`` (float16 inference weights) for a learning curve."""
        path = self.out_dir / "snapshots" / f"model_step{self.step:06d}.pt"
        path.parent.mkdir(exist_ok=True)
        meta = {"steps": self.step, "seconds": round(self.elapsed, 1), "config": self.cfg.to_dict()}
        self._save(path, meta, half=True)
        return path

    def _save(self, path: Path, meta: dict, half: bool = False) -> None:
        """A model file of this run's network (its stage and grid in the file, for the cascade)."""
        save_model(
            self.model,
            path,
            self.cfg.input_size,
            self.cfg.fov_mm,
            meta=meta,
            half=half,
            stage=self.cfg.stage,
            grid_size=self.cfg.grid_size,
            boundary_class=self.cfg.boundary_class,
        )

    def resume(self) -> bool:
        """Load ``checkpoint.pt`` if present; returns whether a run was resumed.

        The stored config must equal this one except for ``steps`` (a run may be extended).
        """
        if not self.checkpoint_path.exists():
            return False
        state = load_checkpoint(self.checkpoint_path)
        # keys added to TrainConfig since the checkpoint was written take their defaults
        stored = {**TrainConfig().to_dict(), **dict(state.get("config", {}))}
        current = self.cfg.to_dict()
        stored.pop("steps", None)
        current.pop("steps", None)
        if stored != current:
            diff = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
            raise InputError(
                f"{self.checkpoint_path}: checkpoint was made with a different config "
                f"(keys: {', '.join(diff)}); use another --out or the same config"
            )
        try:
            self.model.load_state_dict(state["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise InputError(f"{self.checkpoint_path}: incompatible checkpoint ({str(exc)[:160]})") from None
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        self.pool.next_index = int(state["samples_generated"])
        self.log_rows = [list(map(str, row)) for row in state.get("log_rows", [])]
        return True

    # -- loop ------------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame) -> None:
        self._stop_signal = signum

    def run(self, resume: bool = False) -> Path:
        """Train until ``cfg.steps``; checkpoint every ``checkpoint_every`` steps and on SIGTERM/SIGINT."""
        make_output_dir(self.out_dir)  # InputError when a file is in the way
        for output in (self.checkpoint_path, self.log_path, self.model_path, self.out_dir / "config.yaml"):
            remove_stale_temporaries(output)  # left by a killed run (SIGKILL skips atomic_output's clean-up)
        resumed = resume and self.resume()
        if not resumed:
            for stale in (self.checkpoint_path, self.log_path, self.model_path):
                stale.unlink(missing_ok=True)
        write_text_atomic(self.out_dir / "config.yaml", yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
        self._restore_log()
        self.pool.fill_to(self.pool.next_index or self.cfg.pool_size)
        handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        bar = _progress(self.cfg.steps, self.step, self.progress)
        try:
            self._loop(bar)
        finally:
            bar.close()
            for s, h in handlers.items():
                signal.signal(s, h)
        meta = {
            "steps": self.step,
            "seconds": round(self.elapsed, 1),
            "config": self.cfg.to_dict(),
            "device": str(self.device),
        }
        self._save(self.model_path, meta)
        return self.model_path

    def _loop(self, bar) -> None:
        cfg = self.cfg
        self.model.train()
        autocast = self.device.type == "cuda" and cfg.amp
        while self.step < cfg.steps:
            t0 = time.perf_counter()
            if cfg.pool_size == 0:
                self.pool.fill_to(self.pool.next_index + cfg.batch_size)
            elif self.step % cfg.refresh_every == 0 and self.step > 0:
                self.pool.refresh()
            image, target = self.pool.batch(self.step, cfg.batch_size)
            image = image.to(self.device).contiguous(memory_format=self.memory_format)
            target = target.to(self.device)
            lr = learning_rate(cfg, self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = self.model(image)
            kind = loss_kind(cfg)
            if kind == "fine":
                loss, parts = refine_loss(logits, target, cfg.edge_band)
            elif kind == "brain":
                loss, parts = brain_loss(logits, target)
            else:
                loss, parts = pumba_loss(logits, target)
            if not torch.isfinite(loss):
                raise RuntimeError(f"training diverged at step {self.step}: loss {float(loss)}")
            loss.backward()
            loss = loss.detach()
            self.optimizer.step()
            self.step += 1
            self.elapsed += time.perf_counter() - t0
            bar.update(1)
            dice = parts[DICE_COLUMNS[kind][0]]
            bar.set_postfix(loss=f"{loss.item():.3f}", dice=f"{dice:.3f}", refresh=False)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                self._log(loss.item(), parts, lr)
            if cfg.snapshot_every and self.step % cfg.snapshot_every == 0:
                self.save_snapshot()
            due = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps
            if due or self._stop_signal is not None:
                self.save_checkpoint()
            if self._stop_signal is not None:
                raise TrainingInterruptedError(self._stop_signal, self.step)

    def _log(self, loss: float, parts: dict, lr: float) -> None:
        row = [
            str(self.step),
            f"{self.elapsed:.2f}",
            f"{loss:.5f}",
            *(f"{parts[k]:.5f}" for k in DICE_COLUMNS[loss_kind(self.cfg)]),
            f"{lr:.3g}",
            str(self.pool.next_index),
        ]
        self.log_rows.append(row)
        new = not self.log_path.exists()
        with self.log_path.open("a", newline="") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(log_columns(loss_kind(self.cfg)))
            writer.writerow(row)

    def _restore_log(self) -> None:
        """Rewrite ``train_log.csv`` as the checkpoint's rows up to its step: rows the interrupted part of a
        run wrote, a partial last row (a run killed mid-write) and a deleted log are all made good. A
        checkpoint from before the log rows were kept in it keeps the file's own rows up to its step (a log
        without its header is started afresh).

        The log is the one file written by appending, not by temp file and rename: rewriting it whole at
        every row would cost quadratic time over a long run, and this clean-up makes appending safe."""
        columns = log_columns(loss_kind(self.cfg))
        if not self.log_rows and self.step > 0 and self.log_path.exists():
            with self.log_path.open(newline="") as fh:
                rows = list(csv.reader(fh))
            if rows and tuple(rows[0]) == columns:
                self.log_rows = [r for r in rows[1:] if len(r) == len(columns) and r[0].isdigit()]
        self.log_rows = [r for r in self.log_rows if int(r[0]) <= self.step]
        if not self.log_rows:
            self.log_path.unlink(missing_ok=True)
            return
        buf = io.StringIO()
        csv.writer(buf).writerows([list(columns), *self.log_rows])
        write_text_atomic(self.log_path, buf.getvalue())


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        disable=not enabled,
        unit="step",
        file=sys.stderr,
        mininterval=5,
        dynamic_ncols=True,
    )
