import csv
import os
from pathlib import Path

from snakemake.utils import validate

from pumba.baselines.methods import available_methods

validate(config, schema="../schemas/config.schema.yaml")

ROOT = Path(workflow.basedir).parent


def repo_path(path):
    """A config path: absolute as given, else relative to the repository root."""
    p = Path(path)
    return str(p if p.is_absolute() else ROOT / p)


REGISTRY = repo_path(config["registry"])
MIRROR = repo_path(config["mirror"]) if config["mirror"] else ""
REFERENCE_MASKS = (
    repo_path(config["reference_masks"]) if config["reference_masks"] else ""
)
DATASETS = list(config["datasets"])
METHODS = list(config["methods"])
# the baselines the package can run: its method registry, less our own model runner
KNOWN_BASELINES = tuple(m for m in available_methods() if m != "pumba")
_unknown = [
    m for m in METHODS if m not in config["models"] and m not in KNOWN_BASELINES
]
if _unknown:
    raise ValueError(
        f"config 'methods': {', '.join(_unknown)} is neither one of 'models' "
        f"({', '.join(config['models'])}) nor a baseline ({', '.join(KNOWN_BASELINES)})"
    )
# Our models among the methods (config["models"]) and the baselines (the rest).
MODELS = [m for m in METHODS if m in config["models"]]
BASELINES = [m for m in METHODS if m not in config["models"]]
# Training configs of the models this workflow trains, and of the release candidate (`snakemake release`).
TRAIN_CONFIGS = {
    name: spec["train"] for name, spec in config["models"].items() if "train" in spec
}
TRAIN_CONFIGS["release"] = config["release"]["coarse"]
TRAIN_CONFIGS["release-fine"] = config["release"]["fine"]
TRAINED = [m for m in MODELS if m in TRAIN_CONFIGS]


def model_file(name):
    """The model file of one of our models: its release weights, or the model trained by this workflow."""
    spec = config["models"][name]
    if "weights" in spec:
        return repo_path(spec["weights"])
    return f"results/model/{name}/model.pt"


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
    "results/figures/synth_gallery.png",
    "results/figures/synth/switch_gallery.png",
] + (["results/figures/training.png"] if TRAINED else [])
