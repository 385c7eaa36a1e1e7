import csv
import os
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

ROOT = Path(workflow.basedir).parent


def repo_path(path):
    """A config path: absolute as given, else relative to the repository root."""
    p = Path(path)
    return str(p if p.is_absolute() else ROOT / p)


REGISTRY = repo_path(config["registry"])
MIRROR = repo_path(config["mirror"]) if config["mirror"] else ""
DATASETS = list(config["datasets"])
METHODS = list(config["methods"])
BASELINES = [m for m in METHODS if m != "pumba"]


wildcard_constraints:
    dataset="[A-Za-z0-9_.-]+",
    subject="[A-Za-z0-9_.-]+",
    method="[A-Za-z0-9_-]+",


def manifest_rows(dataset):
    """Rows of a prepared dataset's manifest (waits for the prepare_dataset checkpoint)."""
    path = (
        Path(checkpoints.prepare_dataset.get(dataset=dataset).output[0])
        / "manifest.tsv"
    )
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def subjects(dataset):
    return [row["subject"] for row in manifest_rows(dataset)]


def dataset_dirs(wildcards=None):
    """Prepared dataset directories (each holds manifest.tsv and status.json)."""
    return [f"results/data/{dataset}" for dataset in DATASETS]


def records(method):
    """Run records of one method on every subject of every dataset that could be had."""
    return [
        f"results/predictions/{method}/{dataset}/{subject}.json"
        for dataset in DATASETS
        for subject in subjects(dataset)
    ]


def montages(wildcards):
    return [
        f"results/figures/montage/{dataset}/{subject}.png"
        for dataset in DATASETS
        for subject in subjects(dataset)
    ]


FINAL_TARGETS = [
    "results/tables/summary.csv",
    "results/tables/datasets.csv",
    "results/figures/dice.png",
    "results/figures/hd95.png",
    "results/figures/training.png",
    "results/figures/synth_gallery.png",
]
