"""``pumba tables ...`` (the paper's tables) and ``pumba report ...`` (the provenance page, the viewer)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pumba.figures.palette import parse_methods
from pumba.io import InputError

METHODS_HELP = "the config's methods, comma separated (their order in the tables)"
PREFIX_HELP = "output prefix: writes PREFIX.csv, PREFIX.md and PREFIX.tex"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``tables`` and ``report`` commands."""
    tables = sub.add_parser(
        "tables",
        help="the paper's tables (CSV, Markdown, LaTeX)",
        description="Write one table as PREFIX.csv (every column), PREFIX.md and PREFIX.tex, atomically.",
    )
    kinds = tables.add_subparsers(dest="table", metavar="TABLE", required=True)

    ds = kinds.add_parser(
        "datasets", help="Table 1: species, modality, pathology, n, voxels, mask provenance"
    )
    ds.add_argument("--registry", type=Path, required=True, help="dataset registry (config/datasets.yaml)")
    ds.add_argument("--data", nargs="+", type=Path, required=True, help="prepared dataset folders")
    ds.add_argument("--out", required=True, help=PREFIX_HELP)
    ds.set_defaults(func=_datasets)

    acc = kinds.add_parser("accuracy", help="Table 2: median (IQR) Dice and HD95, Wilcoxon vs ours, Holm")
    acc.add_argument("--table", type=Path, required=True, help="per-subject CSV (pumba summarise)")
    acc.add_argument("--ours", required=True, help="our method's name")
    acc.add_argument("--methods", default=None, help=METHODS_HELP)
    acc.add_argument("--out", required=True, help=PREFIX_HELP)
    acc.set_defaults(func=_accuracy)

    rt = kinds.add_parser("runtime", help="wall seconds per scan and peak memory per method")
    rt.add_argument("--table", type=Path, required=True, help="per-subject CSV (pumba summarise)")
    rt.add_argument("--method-table", type=Path, default=None, help="methods CSV (pumba method-table)")
    rt.add_argument(
        "--training",
        action="append",
        default=[],
        metavar="METHOD=TSV",
        help="a trained method's training benchmark file (Snakemake benchmark TSV), repeatable",
    )
    rt.add_argument("--methods", default=None, help=METHODS_HELP)
    rt.add_argument("--out", required=True, help=PREFIX_HELP)
    rt.set_defaults(func=_runtime)

    ab = kinds.add_parser("ablation", help="Table 3: every arm against the reference arm and the seed spread")
    ab.add_argument("--scores", nargs="+", type=Path, required=True, help="pumba validate tables")
    ab.add_argument(
        "--named",
        action="append",
        default=[],
        metavar="ARM=CSV",
        help="a validate table scored as the arm ARM (e.g. inference settings of one model), repeatable",
    )
    ab.add_argument("--reference", required=True, help="the reference arm (a model folder's name)")
    ab.add_argument("--seed-arms", default="", help="arms that differ only by seed, comma separated")
    ab.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="ARM=GROUP",
        help="an arm's group (default: read from its name), repeatable",
    )
    ab.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="ARM=BASE",
        help="the arm that ARM changes, whose mean Dice its difference is taken from (default: --reference), "
        "repeatable",
    )
    ab.add_argument("--out", required=True, help=PREFIX_HELP)
    ab.set_defaults(func=_ablation)

    sd = kinds.add_parser("seeds", help="the spread of one recipe's scores between training seeds")
    sd.add_argument("--scores", nargs="+", type=Path, required=True, help="pumba validate tables")
    sd.add_argument("--out", required=True, help=PREFIX_HELP)
    sd.set_defaults(func=_seeds)

    report = sub.add_parser("report", help="the report's provenance page, NiiVue viewer, seed configs")
    parts = report.add_subparsers(dest="part", metavar="PART", required=True)
    prov = parts.add_parser(
        "provenance", help="config, package versions, seeds, git commit, what was skipped"
    )
    prov.add_argument("--config-json", required=True, help="the workflow's config as JSON")
    prov.add_argument("--repo", type=Path, required=True, help="the repository (its git commit is named)")
    prov.add_argument("--datasets", type=Path, required=True, help="datasets CSV (pumba data table)")
    prov.add_argument("--method-table", type=Path, required=True, help="methods CSV (pumba method-table)")
    prov.add_argument("--out", type=Path, required=True, help="output HTML")
    prov.set_defaults(func=_provenance)

    view = parts.add_parser("viewer", help="every scan with every method's mask in NiiVue, one offline page")
    view.add_argument("--manifest", nargs="+", type=Path, required=True, help="dataset manifests (TSV)")
    view.add_argument(
        "--predictions", type=Path, required=True, help="folder of METHOD/DATASET/SUBJECT.nii.gz masks"
    )
    view.add_argument("--methods", required=True, help=METHODS_HELP)
    view.add_argument("--ours", default=None, help="the method shown with the reference at first")
    view.add_argument("--bundle", type=Path, required=True, help="NiiVue UMD bundle (scripts/setup.sh)")
    view.add_argument("--out", type=Path, required=True, help="output HTML")
    view.set_defaults(func=_viewer)

    seed = parts.add_parser("seed-config", help="a training config that is BASE with its seed set")
    seed.add_argument("--base", type=Path, required=True, help="training config")
    seed.add_argument("--seed", type=int, required=True, help="training seed (>= 0)")
    seed.add_argument("--out", type=Path, required=True, help="training config to write")
    seed.set_defaults(func=_seed_config)


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"{flag} {item!r}: expected NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


def _datasets(args: argparse.Namespace) -> int:
    from pumba.report.render import write_table
    from pumba.report.tables import dataset_table

    frame, header, rows = dataset_table(args.registry, args.data)
    caption = (
        "Table 1. Datasets: species, contrast, pathology, subjects, voxel size (mm, from the prepared "
        "images), how the reference mask was made, licence; '(not run)': not available here (see the "
        "datasets table)."
    )
    write_table(args.out, frame, header, rows, caption)
    return 0


def _accuracy(args: argparse.Namespace) -> int:
    from pumba.metrics.tables import read_per_subject
    from pumba.report.render import write_table
    from pumba.report.tables import accuracy_caption, accuracy_table

    frame, header, rows = accuracy_table(
        read_per_subject([args.table]), args.ours, parse_methods(args.methods)
    )
    write_table(args.out, frame, header, rows, accuracy_caption(args.ours))
    return 0


def _runtime(args: argparse.Namespace) -> int:
    from pumba.figures.cost import read_method_table
    from pumba.metrics.tables import read_per_subject
    from pumba.report.render import write_table
    from pumba.report.tables import read_benchmark_seconds, runtime_table

    methods_table = read_method_table(args.method_table) if args.method_table else None
    training = {m: read_benchmark_seconds(p) for m, p in _pairs(args.training, "--training").items()}
    frame, header, rows = runtime_table(
        read_per_subject([args.table]), methods_table, parse_methods(args.methods), training
    )
    caption = (
        "Runtime and memory per method: wall seconds per scan over successful runs (median, IQR), in all, "
        "and peak resident memory (MB, median and max), one CPU thread per run; training: the training job's "
        "wall seconds."
    )
    write_table(args.out, frame, header, rows, caption)
    return 0


def _ablation(args: argparse.Namespace) -> int:
    from pumba.report.render import write_table
    from pumba.report.tables import ablation_table, read_validate

    seed_arms = [a.strip() for a in args.seed_arms.split(",") if a.strip()]
    frame, header, rows = ablation_table(
        read_validate(args.scores, _pairs(args.named, "--named")),
        args.reference,
        seed_arms,
        _pairs(args.group, "--group"),
        _pairs(args.against, "--against"),
    )
    caption = (
        f"Table 3. Ablations: mean Dice of each arm over every prepared scan and its difference from the arm "
        f"it changes (against; {args.reference} unless named); †: the difference exceeds the range between "
        f"the seed arms ({', '.join(seed_arms) or 'none given'}). Bold: the best arm."
    )
    write_table(args.out, frame, header, rows, caption)
    return 0


def _seeds(args: argparse.Namespace) -> int:
    from pumba.report.render import write_table
    from pumba.report.tables import read_validate, seed_spread

    frame, header, rows = seed_spread(read_validate(args.scores))
    caption = (
        "Spread between training seeds of one recipe: each seed's mean Dice and median HD95 over every "
        "prepared scan, per-dataset Dice, and the seeds' standard deviation and range."
    )
    write_table(args.out, frame, header, rows, caption)
    return 0


def _provenance(args: argparse.Namespace) -> int:
    from pumba.report.provenance import write_provenance

    write_provenance(args.out, args.config_json, args.repo, args.datasets, args.method_table)
    return 0


def _viewer(args: argparse.Namespace) -> int:
    from pumba.report.viewer import manifest_scans, write_viewer

    methods = parse_methods(args.methods) or []
    write_viewer(
        args.out, manifest_scans(args.manifest, args.predictions, methods), args.bundle, methods, args.ours
    )
    return 0


def _seed_config(args: argparse.Namespace) -> int:
    from pumba.report.provenance import seed_config

    seed_config(args.base, args.seed, args.out)
    return 0
