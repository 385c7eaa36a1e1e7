import json
import os
import shlex
from pathlib import Path

from snakemake.utils import validate

from pumba.bench.registry import method_plan
from pumba.data.plan import plan_datasets
from pumba.data.registry import load_registry
from pumba.model.config import config_inputs

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
# Every requested dataset with its subjects, or why it cannot be had here (known now: a static DAG).
# Per-dataset subsets (config subjects; --config passes the numbers as strings).
SUBSETS = {ds: int(n) for ds, n in config["subjects"].items()}
# The user's copies of the datasets downloaded by hand (config manual_data), by dataset id.
MANUAL_DATA = {ds: repo_path(path) for ds, path in config["manual_data"].items()}
DATASET_PLANS = plan_datasets(
    load_registry(REGISTRY),
    DATASETS,
    config["cache"],
    MIRROR if MIRROR and os.path.isdir(MIRROR) else None,
    REFERENCE_MASKS or None,
    config["download"],
    manual_data=MANUAL_DATA,
    subjects=SUBSETS,
)
for _plan in DATASET_PLANS.values():
    if not _plan.available:
        logger.warning(f"dataset {_plan.id} skipped: {_plan.reason}")
SUBJECTS = [(p.id, s) for p in DATASET_PLANS.values() for s in p.subjects]


def source_flags(dataset):
    """The `pumba data fetch|prepare` flags that say where a dataset's files may come from."""
    flags = ["--registry", REGISTRY, "--cache", config["cache"]]
    flags += ["--s3-endpoint", config["s3_endpoint"]]
    if MIRROR:
        flags += ["--mirror", MIRROR]
    if REFERENCE_MASKS:
        flags += ["--reference-masks", REFERENCE_MASKS]
    if dataset in MANUAL_DATA:
        flags += ["--manual", MANUAL_DATA[dataset]]
    return shlex.join(flags)


def _entry(name, spec):
    """A config method entry as the registry sees it: 'train' becomes the weights this run trains."""
    entry = {k: v for k, v in spec.items() if k != "train"}
    if "train" in spec:
        if spec["tool"] != "pumba" or "weights" in spec:
            raise ValueError(
                f"config methods.{name}: 'train' is for tool pumba, without 'weights'"
            )
        entry["weights"] = f"results/model/{name}/model.pt"
    elif spec["tool"] == "pumba" and "weights" in spec:
        entry["weights"] = repo_path(spec["weights"])
    return entry


# Every configured method checked against the package's registry (a bad tool or setting stops here).
# A method set to null (by a layered config) is not run.
CONFIG_METHODS = {n: spec for n, spec in config["methods"].items() if spec is not None}
if not CONFIG_METHODS:
    raise ValueError("config methods: every method is set to null; nothing to score")
PLANS = {}
for _name, _spec in CONFIG_METHODS.items():
    try:
        PLANS[_name] = method_plan(_name, _entry(_name, _spec), ROOT)
    except ValueError as exc:
        raise ValueError(f"config methods: {exc}") from None
# The methods that run here; the others are skipped (results/tables/methods.csv says why).
METHODS = [name for name, plan in PLANS.items() if plan.skipped is None]
for _name, _plan in PLANS.items():
    if _plan.skipped:
        logger.warning(f"method {_name} skipped: {_plan.skipped}")
# Training configs of the models this workflow trains, and of the release candidate (`snakemake release`).
TRAIN_CONFIGS = {
    name: spec["train"] for name, spec in CONFIG_METHODS.items() if "train" in spec
}
TRAIN_CONFIGS["release"] = config["release"]["coarse"]
TRAIN_CONFIGS["release-fine"] = config["release"]["fine"]
TRAINED = [m for m in METHODS if m in TRAIN_CONFIGS]


def train_inputs(wildcards):
    """A training config and every file it reads (its base: chain, its init: model): edit one, retrain.

    A relative init: path is taken from the repository root, where training runs (snakemake's directory).
    """
    return [
        repo_path(p) for p in config_inputs(repo_path(TRAIN_CONFIGS[wildcards.model]))
    ]


def method_inputs(wildcards):
    """Files a method's run depends on: the model file of our models (trained here or shipped)."""
    plan = PLANS[wildcards.method]
    return (
        [plan.settings["weights"]]
        if plan.tool == "pumba" and plan.settings["weights"]
        else []
    )


wildcard_constraints:
    dataset="[A-Za-z0-9_.-]+",
    subject="[A-Za-z0-9_.-]+",
    method="[A-Za-z0-9_-]+",


def dataset_dirs(wildcards=None):
    """Prepared dataset directories (each holds manifest.tsv and status.json)."""
    return [f"results/data/{dataset}" for dataset in DATASETS]


def records(method):
    """Run records of one method on every subject of every dataset that can be had."""
    return [
        f"results/predictions/{method}/{dataset}/{subject}.json"
        for dataset, subject in SUBJECTS
    ]


MONTAGES = [
    f"results/figures/montage/{dataset}/{subject}.png" for dataset, subject in SUBJECTS
]

FINAL_TARGETS = [
    "results/tables/summary.csv",
    "results/tables/datasets.csv",
    "results/tables/methods.csv",
    "results/figures/dice.png",
    "results/figures/hd95.png",
    "results/figures/cost.png",
    "results/figures/synth_gallery.png",
    "results/figures/synth/switch_gallery.png",
    "results/figures/synth_steps.png",
    "results/figures/release_switches.png",
    "results/figures/qualitative.png",
    "results/figures/strata.png",
    "results/tables/table1_datasets.csv",
    "results/tables/table2_accuracy.csv",
    "results/tables/runtime.csv",
    "results/report/provenance.html",
] + (["results/figures/training.png"] if TRAINED else [])
