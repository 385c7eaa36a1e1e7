"""``pumba train``: train the U-Net on synthetic data."""

from __future__ import annotations

import argparse

from pumba.infer.postprocess import POSTPROCESS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    p = sub.add_parser(
        "train",
        help="train the network on synthetic heads generated on the fly",
        description="Train the PUMBA U-Net on synthetic heads generated on the fly. Writes checkpoint.pt, "
        "train_log.csv, config.yaml and finally model.pt into --out.",
    )
    p.add_argument("--config", required=True, help="training config (YAML of TrainConfig fields)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt when it exists")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimiser steps in total, replacing the config's 'steps' (the learning-rate schedule follows)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    e = sub.add_parser(
        "export-model",
        help="write a model file for release (optionally float16) from a model or training checkpoint",
    )
    e.add_argument("--checkpoint", required=True, help="model.pt or checkpoint.pt of a training run")
    e.add_argument("--out", required=True, help="model file to write")
    e.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    e.set_defaults(func=_export)

    c = sub.add_parser(
        "cascade",
        help="combine a whole-head model and a fine-stage model into one two-stage model file",
        description="Write one model file of the two-stage cascade (pumba.infer.cascade): the whole-head "
        "model finds the brain on its coarse grid, the fine stage places the edge on a twice finer grid. The "
        "fine stage's grid must be twice the whole-head model's, over the same field of view.",
    )
    c.add_argument("--coarse", required=True, help="whole-head model file (or training checkpoint)")
    c.add_argument("--fine", required=True, help="fine-stage model file (or training checkpoint)")
    c.add_argument("--out", required=True, help="model file to write")
    c.add_argument(
        "--full", dest="half", action="store_false", help="keep float32 weights (default: float16)"
    )
    c.set_defaults(func=_cascade)

    v = sub.add_parser(
        "validate",
        help="score models on prepared real datasets (learning curves, ablations)",
        description="Strip every scan of the given dataset manifests with each model, in memory, and write "
        "one row per (model, scan): Dice, HD95 (mm), false-positive and false-negative volume (ml).",
    )
    v.add_argument("--model", nargs="+", required=True, help="model files or training checkpoints")
    v.add_argument(
        "--fine",
        nargs="+",
        default=(),
        metavar="MODEL",
        help="fine-stage models: score the cascade of the one --model with each in turn",
    )
    v.add_argument("--manifest", nargs="+", required=True, metavar="TSV", help="dataset manifests")
    v.add_argument("--out", required=True, metavar="CSV", help="table to write")
    v.add_argument("--mode", default="auto", help="geometry mode: auto, transform or resize (default: auto)")
    v.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    v.add_argument("--no-tta", dest="tta", action="store_false", help="no flip test-time augmentation")
    v.add_argument(
        "--postprocess",
        default="tight",
        choices=POSTPROCESS,
        help="post-processing of the network's mask: tight (ours) or pumba (the authors'); default: tight",
    )
    v.set_defaults(func=_validate)


def _train(args: argparse.Namespace) -> int:
    import dataclasses
    import sys

    from pumba.io import InputError, make_output_dir
    from pumba.model.config import TrainConfig
    from pumba.model.train import Trainer, TrainingInterruptedError

    cfg = TrainConfig.from_yaml(args.config)
    if args.steps is not None:
        if args.steps < 1:
            raise InputError(f"--steps {args.steps}: need at least one step")
        cfg = dataclasses.replace(cfg, steps=args.steps)
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads {args.threads}: need at least one thread")
    make_output_dir(args.out)  # a file in the way, no permission: before any work
    trainer = Trainer(cfg, args.out, device=args.device, threads=args.threads, progress=not args.no_progress)
    try:
        path = trainer.run(resume=args.resume)
    except TrainingInterruptedError as exc:
        print(f"pumba train: {exc}", file=sys.stderr)
        return 128 + exc.signum
    print(
        f"pumba train: wrote {path} after {trainer.step} steps ({trainer.elapsed:.0f} s)",
        file=sys.stderr,
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    import sys

    from pumba.io import InputError
    from pumba.model.checkpoint import load_model, save_model

    model, info = load_model(args.checkpoint, stage=None)
    if "refine" in info:
        raise InputError(f"{args.checkpoint}: a two-stage model; write it with pumba cascade")
    meta = dict(info.get("meta") or {})
    meta["exported_from"] = str(args.checkpoint)
    save_model(
        model,
        args.out,
        info["input_size"],
        info["fov_mm"],
        meta,
        half=args.half,
        stage=info["stage"],
        grid_size=info["grid_size"],
        boundary_class=info["boundary_class"],
    )
    print(f"pumba export-model: wrote {args.out}", file=sys.stderr)
    return 0


def _cascade(args: argparse.Namespace) -> int:
    import sys

    from pumba.model.checkpoint import save_cascade

    save_cascade(args.coarse, args.fine, args.out, half=args.half)
    print(f"pumba cascade: wrote {args.out}", file=sys.stderr)
    return 0


def _validate(args: argparse.Namespace) -> int:
    import sys

    import torch

    from pumba.io import InputError, write_text_atomic
    from pumba.model.validate import dice_by_dataset, score_models

    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads {args.threads}: need at least one thread")
    if args.threads:
        torch.set_num_threads(args.threads)
    scores = score_models(
        args.model, args.manifest, args.mode, args.postprocess, tta=args.tta, fine_paths=args.fine
    )
    write_text_atomic(args.out, scores.to_csv(index=False))
    print(dice_by_dataset(scores).to_string(index=False, float_format="%.3f"), file=sys.stderr)
    return 0
