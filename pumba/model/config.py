"""Training configuration: a YAML file of :class:`TrainConfig` fields, with a nested ``synth`` mapping of
:class:`pumba.synth.SynthConfig` overrides."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from pumba.io import InputError
from pumba.yaml_files import read_mapping

STAGES = ("coarse", "fine")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run. Sizes in voxels, times in steps.

    Attributes:
        seed: seeds every draw (synthetic samples, pool sampling, augmentation).
        steps: optimiser steps in total.
        batch_size: volumes per step.
        lr: Adam's learning rate (peak, after warm-up).
        lr_schedule: 'constant' or 'cosine' (decay to ``lr_min`` at ``steps``).
        lr_min: final learning rate of the cosine schedule.
        warmup_steps: linear warm-up from 0 to ``lr``.
        input_size: the network's input grid (cubic). Synthetic heads are generated at ``synth.size`` and
            average-pooled by ``synth.size // input_size``, so the field of view stays ``fov_mm``.
        fov_mm: field of view of the synthetic world in mm (the method's 128 voxels of 2 mm = 256 mm);
            inference in ``transform`` mode resamples real heads to ``fov_mm / input_size`` mm voxels.
        widths: encoder widths of the U-Net; bottleneck: its bottleneck width.
        pool_size: synthetic volumes held in memory; one is replaced every ``refresh_every`` steps
            (0 = generate every batch afresh, on the fly).
        checkpoint_every: steps between checkpoints (one is also written on SIGTERM and at the end).
        log_every: steps between rows of the CSV log.
        snapshot_every: steps between float16 model snapshots kept in ``snapshots/`` for learning
            curves (0: none).
        channels_last: use the channels-last-3d memory format (faster convolutions on CPU).
        amp: bfloat16 autocast on CUDA (ignored on CPU).
        init: weights to start from (a model file or training checkpoint of the same architecture, a path
            relative to the working directory); empty: a seeded random initialisation. The optimiser and
            schedule start afresh either way.
        synth: :class:`pumba.synth.SynthConfig` overrides.
        stage: 'coarse', the whole-head model (the synthetic heads average-pooled to ``input_size``^3, three
            classes), or 'fine', the cascade's second stage: ``input_size``^3 crops of the heads at the
            generator's own resolution (``fov_mm / synth.size`` mm voxels), two input channels (the image and
            a coarse brain prior made from the label as the coarse stage would see it, see
            :mod:`pumba.infer.cascade`), two classes (background, brain).
        crop_at_edge: fine stage: share of crops centred on a random voxel of the brain's edge (the rest are
            centred anywhere in the brain's bounding box); every centre is jittered by up to a quarter crop.
        prior_blur: fine stage: range of the Gaussian sigma (coarse voxels) that softens the training prior.
        prior_grow: fine stage: the training prior's mask is grown or shrunk by up to this many coarse voxels
            and shifted by up to one, so the fine stage learns to correct the coarse stage's edge, not to
            copy it.
        edge_band: fine stage: the loss's edge term counts voxels within this many voxels of the brain's edge.
        boundary_class: whole-head stage: the method's three-class target (background, interior, the thick
            boundary) and its loss (true), or the ablation without the boundary class (false): the whole
            brain labelled interior, the loss ``1 - Dice`` of the brain alone
            (:func:`pumba.model.loss.brain_loss`). The network keeps its three output channels, so it can
            start from a three-class model's weights; the model file records the choice, and inference then
            takes the brain as the interior class without the boundary's one-voxel dilation
            (:func:`pumba.infer.postprocess.postprocess`).
    """

    seed: int = 0
    steps: int = 600
    batch_size: int = 1
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    lr_min: float = 1e-5
    warmup_steps: int = 20
    input_size: int = 64
    fov_mm: float = 256.0
    widths: tuple[int, ...] = (8, 16, 32, 64, 128)
    bottleneck: int = 256
    pool_size: int = 24
    refresh_every: int = 4
    checkpoint_every: int = 100
    log_every: int = 10
    snapshot_every: int = 0
    channels_last: bool = True
    amp: bool = True
    init: str = ""
    synth: dict = field(default_factory=dict)
    stage: str = "coarse"
    crop_at_edge: float = 0.8
    prior_blur: tuple[float, float] = (0.5, 1.5)
    prior_grow: int = 1
    edge_band: int = 2
    boundary_class: bool = True

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read and validate a YAML training config; errors name the file and the key.

        A ``base: OTHER.yaml`` key (relative to this file's folder) starts from that config: this file's keys
        replace the base's, except ``synth``, whose keys are merged into the base's ``synth``. Numbers may be
        typed as in YAML 1.2 (``lr: 1e-4``, :mod:`pumba.yaml_files`).
        """
        raw = resolve_bases(Path(path))
        try:
            return cls.from_dict(raw)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        """Build from a mapping; an unknown key or a value of the wrong kind raises ValueError naming it.

        Whole-number keys take an integral float too (``steps: 1e5``). Numbers must be finite (``1e-4`` in a
        file is a number: :mod:`pumba.yaml_files` reads it so). The ``synth`` mapping is checked against
        :class:`pumba.synth.SynthConfig` (an unknown key is an error).
        """
        names = {f.name: f for f in dataclasses.fields(cls)}
        for key in raw:
            if key not in names:
                raise ValueError(f"unknown training key '{key}' (known: {', '.join(sorted(names))})")
        values = {}
        for key, value in raw.items():
            default = names[key].default
            if key == "widths":
                if not isinstance(value, list | tuple) or not value:
                    raise ValueError(f"'widths' must be a list of whole numbers, got {value!r}")
                values[key] = tuple(_number(f"widths[{i}]", v, int) for i, v in enumerate(value))
            elif key == "prior_blur":
                if not isinstance(value, list | tuple) or len(value) != 2:
                    raise ValueError(f"'prior_blur' must be a list of two numbers, got {value!r}")
                values[key] = (
                    _number("prior_blur[0]", value[0], float),
                    _number("prior_blur[1]", value[1], float),
                )
            elif key == "synth":
                if not isinstance(value, dict):
                    raise ValueError("'synth' must be a mapping of generator settings")
                _check_synth(value)
                values[key] = dict(value)
            elif key == "init":
                if not isinstance(value, str):
                    raise ValueError(f"'init' must be a path, got {value!r}")
                values[key] = value
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"'{key}' must be true or false, got {value!r}")
                values[key] = value
            elif isinstance(default, int | float):
                values[key] = _number(key, value, type(default))
            else:
                values[key] = value
        cfg = cls(**values)
        cfg.check()
        return cfg

    def check(self) -> None:
        """Raise ValueError for inconsistent values."""
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("'steps' and 'batch_size' must be >= 1")
        if min(self.widths) < 1 or self.bottleneck < 1:
            raise ValueError(
                f"'widths' and 'bottleneck' must be >= 1, got {list(self.widths)}, {self.bottleneck}"
            )
        if self.lr <= 0 or self.lr_min < 0:
            raise ValueError(f"'lr' must be > 0 and 'lr_min' >= 0, got {self.lr:g}, {self.lr_min:g}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"'lr_schedule' must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.input_size % 2 ** len(self.widths):
            raise ValueError(f"'input_size' {self.input_size} must be a multiple of {2 ** len(self.widths)}")
        size = int(self.synth.get("size", 128))
        if self.stage not in STAGES:
            raise ValueError(f"'stage' must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.stage == "coarse" and size % self.input_size:
            raise ValueError(f"synth size {size} must be a multiple of 'input_size' {self.input_size}")
        if self.stage == "fine":
            if self.input_size > size or size % 2:
                raise ValueError(
                    f"fine stage: 'input_size' {self.input_size} crops need an even synth size >= it"
                )
            if not 0 <= self.crop_at_edge <= 1 or self.prior_grow < 0 or self.edge_band < 1:
                raise ValueError("fine stage: need 0 <= crop_at_edge <= 1, prior_grow >= 0, edge_band >= 1")
            if not self.boundary_class:
                raise ValueError("'boundary_class' applies to the whole-head stage (the fine stage has none)")
            if not 0 < self.prior_blur[0] <= self.prior_blur[1]:
                raise ValueError(f"'prior_blur' must be 0 < lo <= hi, got {list(self.prior_blur)}")

    @property
    def grid_size(self) -> int:
        """Edge in voxels of the grid the network sees the whole field of view on: ``input_size`` for the
        coarse stage, the generator's ``synth.size`` for the fine stage (which sees crops of it)."""
        return int(self.synth.get("size", 128)) if self.stage == "fine" else self.input_size

    def to_dict(self) -> dict:
        """A plain mapping (YAML-serialisable)."""
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        d["prior_blur"] = list(self.prior_blur)
        return d


def _number(key: str, value: object, kind: type) -> int | float:
    """``value`` as a finite ``kind`` (int or float); ValueError naming ``key`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'{key}' must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"'{key}' must be a finite number, got {value}")
    if kind is int and value != int(value):
        raise ValueError(f"'{key}' must be a whole number, got {value}")
    return kind(value)


def _check_synth(synth: dict) -> None:
    """ValueError naming ``synth`` and the key when the generator settings are not a valid SynthConfig."""
    from pumba.synth import SynthConfig

    try:
        SynthConfig.from_dict(synth)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"'synth': {exc}") from None


def resolve_bases(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The mapping of a config file with its ``base:`` chain applied (see :meth:`TrainConfig.from_yaml`)."""
    raw = read_mapping(path, "training config")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise InputError(f"{path}: 'base' must be a path to another training config, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in seen or base_path == path.resolve():
        raise InputError(f"{path}: 'base' chain loops back to {base_path}")
    merged = resolve_bases(base_path, (*seen, path.resolve()))
    for where, mapping in ((base_path, merged), (path, raw)):
        if not isinstance(mapping.get("synth", {}), dict):
            raise InputError(f"{where}: 'synth' must be a mapping of generator settings")
    synth = {**merged.get("synth", {}), **raw.pop("synth", {})}
    merged.update(raw)
    if synth:
        merged["synth"] = synth
    return merged


def config_inputs(path: str | Path) -> list[Path]:
    """Every file a training config reads: the file, its ``base:`` chain, and its ``init:`` model if any.

    What a workflow declares as the training job's inputs, so that editing any of them retrains.
    The ``init:`` path is as written (relative to the working directory, like training reads it).
    """
    files = [Path(path)]
    while True:
        base = read_mapping(files[-1], "training config").get("base")
        if not isinstance(base, str):
            break
        files.append((files[-1].parent / base).resolve())
        if files[-1] in files[:-1]:
            raise InputError(f"{path}: 'base' chain loops back to {files[-1]}")
    init = resolve_bases(Path(path)).get("init")
    return files + ([Path(init)] if isinstance(init, str) and init else [])
