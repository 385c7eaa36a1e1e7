"""``pumba figures {metrics,cost,training,montage,gallery,switch-gallery,synth-steps,qualitative,strata}``."""

from __future__ import annotations

import argparse
from pathlib import Path

from pumba.figures.palette import parse_methods
from pumba.io import InputError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``figures`` command and its six sub-commands."""
    parser = sub.add_parser(
        "figures",
        help="draw benchmark figures (metrics, training curves, montages, synthetic gallery)",
        description="Draw one figure (PNG at 120 dpi; .pdf/.svg by suffix), written atomically.",
    )
    kinds = parser.add_subparsers(dest="figure", metavar="FIGURE", required=True)

    metrics = kinds.add_parser(
        "metrics", help="box/strip plot of a metric by dataset and method from a per-subject table"
    )
    metrics.add_argument("--table", type=Path, required=True, help="per-subject CSV (pumba evaluate)")
    metrics.add_argument(
        "--metric",
        default="dice",
        help="column to plot: dice (default), hd95_mm, sensitivity, specificity, volume_diff_pct, "
        "seconds, peak_rss_mb",
    )
    metrics.add_argument("--out", type=Path, required=True, help="output figure (.png)")
    metrics.add_argument("--methods", default=None, help=METHODS_HELP)
    metrics.set_defaults(func=_metrics)

    cost = kinds.add_parser("cost", help="mean Dice against seconds per scan and peak memory, per method")
    cost.add_argument("--table", type=Path, required=True, help="methods table (pumba method-table)")
    cost.add_argument("--out", type=Path, required=True, help="output figure (.png)")
    cost.add_argument("--methods", default=None, help=METHODS_HELP)
    cost.set_defaults(func=_cost)

    training = kinds.add_parser("training", help="loss and synthetic Dice vs step from a training log")
    training.add_argument("--log", type=Path, required=True, help="training CSV log (train_log.csv)")
    training.add_argument("--out", type=Path, required=True, help="output figure (.png)")
    training.set_defaults(func=_training)

    montage = kinds.add_parser(
        "montage", help="three orthogonal slices with reference and method mask outlines"
    )
    montage.add_argument("--image", type=Path, required=True, help="head scan (NIfTI/MGZ)")
    montage.add_argument("--reference", type=Path, required=True, help="reference brain mask")
    montage.add_argument(
        "--mask",
        action="append",
        default=[],
        metavar="METHOD=PATH",
        help="a method's mask on the image grid; PATH 'none' marks a failed run (repeatable)",
    )
    montage.add_argument(
        "--missing-as-failed",
        action="store_true",
        help="draw a mask PATH that does not exist as a failed run (a recorded failure left no mask)",
    )
    montage.add_argument("--out", type=Path, required=True, help="output figure (.png)")
    montage.add_argument("--title", default=None, help="figure title (default: the image file name)")
    montage.add_argument("--methods", default=None, help=METHODS_HELP)
    montage.set_defaults(func=_montage)

    gallery = kinds.add_parser("gallery", help="mid slices of synthetic samples with their labels")
    gallery.add_argument(
        "--dir", type=Path, required=True, help="generator output (synth_NNNN_{image,label}.nii.gz)"
    )
    gallery.add_argument("--out", type=Path, required=True, help="output figure (.png)")
    gallery.add_argument("--n", type=int, default=6, help="number of samples, the first by name (6)")
    gallery.set_defaults(func=_gallery)

    switches = kinds.add_parser(
        "switch-gallery",
        help="the same synthetic samples with each generator switch off and on",
        description=(
            "Generate samples 0..N-1 of a run seeded SEED (as pumba generate does) with each switch of "
            "a switch file off (the base config with the switch's fields at their SynthConfig defaults) "
            "and on, and draw their mid-sagittal and mid-coronal slices with the brain label outlined."
        ),
    )
    switches.add_argument(
        "--switches",
        type=Path,
        required=True,
        help="YAML file: switch name -> the SynthConfig fields that turn it on "
        "(workflow/resources/switch_gallery.yaml)",
    )
    switches.add_argument(
        "--base-config",
        type=Path,
        default=None,
        help="training config whose resolved synth mapping is the base (default: SynthConfig defaults)",
    )
    switches.add_argument("--size", type=int, default=None, help="grid size (default: the base's, 128)")
    switches.add_argument("--seed", type=int, required=True, help="run seed (>= 0)")
    switches.add_argument("--n", type=int, default=3, help="number of samples per row (3)")
    switches.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    switches.add_argument("--out", type=Path, required=True, help="output figure (.png)")
    switches.set_defaults(func=_switch_gallery)

    steps = kinds.add_parser(
        "synth-steps",
        help="Figure 1: the synthesis of a few heads step by step (shapes to label)",
    )
    steps.add_argument("--base-config", type=Path, default=None, help="training config whose synth is used")
    steps.add_argument("--size", type=int, default=None, help="grid size (default: the config's)")
    steps.add_argument("--seed", type=int, required=True, help="run seed (>= 0); sample i as pumba generate")
    steps.add_argument("--n", type=int, default=2, help="samples, one row each (1-6, default 2)")
    steps.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    steps.add_argument("--out", type=Path, required=True, help="output figure (.png)")
    steps.set_defaults(func=_synth_steps)

    qual = kinds.add_parser(
        "qualitative",
        help="Figure 2: one row per dataset, one column per method, mask outlines",
    )
    qual.add_argument("--manifest", nargs="+", type=Path, required=True, help="dataset manifests (TSV)")
    qual.add_argument(
        "--predictions", type=Path, required=True, help="folder of METHOD/DATASET/SUBJECT.nii.gz masks"
    )
    qual.add_argument("--methods", required=True, help=METHODS_HELP)
    qual.add_argument("--out", type=Path, required=True, help="output figure (.png)")
    qual.set_defaults(func=_qualitative)

    strata = kinds.add_parser(
        "strata", help="Figure 3b: every method against ours per species, contrast, pathology"
    )
    strata.add_argument("--table", type=Path, required=True, help="per-subject CSV (pumba summarise)")
    strata.add_argument("--manifest", nargs="+", type=Path, required=True, help="dataset manifests (TSV)")
    strata.add_argument("--ours", required=True, help="our method's name")
    strata.add_argument("--methods", default=None, help=METHODS_HELP)
    strata.add_argument("--out", type=Path, required=True, help="output figure (.png)")
    strata.add_argument("--csv", type=Path, default=None, help="also write the differences drawn (CSV)")
    strata.set_defaults(func=_strata)


METHODS_HELP = "the config's methods, comma separated: their order and colours in every figure"


def parse_masks(items: list[str]) -> dict[str, Path | None]:
    """``METHOD=PATH`` strings to an ordered mapping; PATH 'none' (any case) gives None (failed)."""
    masks: dict[str, Path | None] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise InputError(f"--mask {item!r}: expected METHOD=PATH (PATH may be 'none')")
        if name in masks:
            raise InputError(f"--mask {item!r}: method {name!r} given twice")
        masks[name] = None if path.lower() == "none" else Path(path)
    return masks


def _metrics(args: argparse.Namespace) -> int:
    import pandas as pd

    from pumba.figures.plots import check_per_subject, metric_spec, plot_metric

    if not args.table.is_file():
        raise InputError(f"{args.table}: no such file")
    try:
        table = pd.read_csv(args.table)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{args.table}: not a readable CSV ({type(exc).__name__})") from None
    column, _ = metric_spec(args.metric)
    check_per_subject(table, column, source=str(args.table))
    plot_metric(table, args.metric, args.out, methods=parse_methods(args.methods))
    return 0


def _cost(args: argparse.Namespace) -> int:
    from pumba.figures.cost import plot_cost

    plot_cost(args.table, args.out, parse_methods(args.methods))
    return 0


def _training(args: argparse.Namespace) -> int:
    from pumba.figures.plots import plot_training

    plot_training(args.log, args.out)
    return 0


def _montage(args: argparse.Namespace) -> int:
    from pumba.figures.montage import overlay_montage

    masks = parse_masks(args.mask)
    if args.missing_as_failed:
        masks = {name: p if p is not None and p.exists() else None for name, p in masks.items()}
    overlay_montage(args.image, masks, args.reference, args.out, args.title, parse_methods(args.methods))
    return 0


def _gallery(args: argparse.Namespace) -> int:
    from pumba.figures.gallery import find_synth_pairs, synth_gallery

    synth_gallery(find_synth_pairs(args.dir, args.n), args.out)
    return 0


def _switch_gallery(args: argparse.Namespace) -> int:
    from pumba.figures.switch_gallery import load_base, read_switches, switch_gallery

    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads: need at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    switches = read_switches(args.switches)
    base = load_base(args.base_config, args.size)
    name = f"synth of {args.base_config}" if args.base_config is not None else "SynthConfig defaults"
    switch_gallery(switches, args.out, base, args.seed, args.n, name)
    return 0


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise InputError(f"--threads: need at least 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def _synth_steps(args: argparse.Namespace) -> int:
    from pumba.figures.switch_gallery import load_base
    from pumba.figures.synth_steps import synth_steps

    _set_threads(args.threads)
    base = load_base(args.base_config, args.size)
    # the config's folder and name (v2/coarse.yaml), not the checkout's absolute path
    config = Path(args.base_config) if args.base_config is not None else None
    name = f"{config.parent.name}/{config.name}" if config is not None else "SynthConfig defaults"
    synth_steps(base, args.out, args.seed, args.n, name)
    return 0


def _qualitative(args: argparse.Namespace) -> int:
    from pumba.figures.qualitative import manifest_cases, qualitative

    methods = parse_methods(args.methods) or []
    qualitative(manifest_cases(args.manifest, args.predictions, methods), args.out, methods)
    return 0


def _strata(args: argparse.Namespace) -> int:
    import pandas as pd

    from pumba.figures.strata import plot_strata
    from pumba.io import write_text_atomic
    from pumba.metrics.tables import read_per_subject, read_table

    per_subject = read_per_subject([args.table])
    cols = ("dataset", "subject", "modality", "pathology")
    strata = pd.concat(
        [read_table(p, "manifest", cols, sep="\t", dtype=str, keep_default_na=False) for p in args.manifest],
        ignore_index=True,
    )
    diffs = plot_strata(per_subject, strata, args.ours, args.out, parse_methods(args.methods))
    if args.csv is not None:
        write_text_atomic(args.csv, diffs.to_csv(index=False))
    return 0
