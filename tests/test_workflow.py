"""The Snakemake workflow: lint, schema validation, dry runs, and the real DAG end to end on a tiny config."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"
TINY = REPO / ".test" / "config" / "config.yaml"


def snakemake(*args: str, cwd: Path, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(cwd),
        *args,
    ]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_lint_is_clean(tmp_path):
    res = snakemake("--lint", "--configfile", str(TINY), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Congratulations" in res.stdout + res.stderr


def test_bad_config_is_rejected_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("methods:\n", "methodz: [otsu]\nmethods:\n"))
    res = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert res.returncode != 0
    assert "methodz" in res.stdout + res.stderr


def test_the_default_dag_is_static_one_strip_job_per_method_and_subject(tmp_path):
    """`snakemake -n` lists every prepare, strip, evaluate and figure job before anything has run."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    res = snakemake("-n", "--cores", "2", "--configfile", str(REPO / "config" / "config.yaml"), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout, flags=re.M))
    assert config["methods"]["synthstrip"]["weights"] == ""  # no weights file given: skipped, and said so
    run = [m for m in config["methods"] if m != "synthstrip"]
    assert "method synthstrip skipped: no weights given" in res.stdout + res.stderr
    n_subjects = int(counts["prepare_dataset"])  # one subject per dataset in the default registry
    assert n_subjects == len(config["datasets"])
    assert int(counts["strip"]) == len(run) * n_subjects
    assert int(counts["evaluate"]) == len(run)
    assert int(counts["figure_montage"]) == n_subjects
    assert {"train", "method_table", "figure_cost", "summarise"} <= set(counts)


PUBLIC_SETS = ["synthstrip", "nfbs", "cc359", "ibsr", "prime-de", "camri-rat", "ben-mouse", "upenn-gbm"]


def test_the_paper_dag_fetches_converts_strips_and_evaluates_every_public_set(tmp_path):
    """config/paper.yaml: every public set, 2 subjects each (config subjects), the hand-downloaded ones
    pointed at folders (config manual_data): fetch -> prepare -> strip (every method) -> evaluate."""
    manual = {}
    for dataset in ("cc359", "upenn-gbm", "camri-rat"):
        (tmp_path / dataset).mkdir()
        manual[dataset] = str(tmp_path / dataset)
    (tmp_path / "ibsr.tgz").write_bytes(b"")
    manual["ibsr"] = str(tmp_path / "ibsr.tgz")
    layered = tmp_path / "quick-look.yaml"
    layered.write_text(yaml.safe_dump({"manual_data": manual, "subjects": dict.fromkeys(PUBLIC_SETS, 2)}))
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    assert set(PUBLIC_SETS) <= set(paper["datasets"])
    res = snakemake(
        "-n",
        "--cores",
        "2",
        "--configfile",
        *(str(REPO / "config" / name) for name in ("config.yaml", "paper.yaml")),
        str(layered),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    wildcards: (.*)$", res.stdout, flags=re.M)
    by_rule: dict[str, list[dict[str, str]]] = {}
    for rule, wildcards in jobs:
        by_rule.setdefault(rule, []).append(dict(w.split("=", 1) for w in wildcards.split(", ")))
    methods = {
        n
        for n, spec in {
            **yaml.safe_load((REPO / "config" / "config.yaml").read_text())["methods"],
            **paper["methods"],
        }.items()
        if spec and spec.get("weights", "x")
    }
    for dataset in PUBLIC_SETS:
        assert {"dataset": dataset} in by_rule["fetch_dataset"]
        assert {"dataset": dataset} in by_rule["prepare_dataset"]
        strips = {(w["method"], w["subject"]) for w in by_rule["strip"] if w["dataset"] == dataset}
        assert strips == {(m, s) for m in methods for s in ("s0001", "s0002")}, dataset
    assert {w["method"] for w in by_rule["evaluate"]} == methods
    assert "pumba data prepare --dataset nfbs" in res.stdout and "--subjects 2" in res.stdout
    assert f"--manual {manual['cc359']}" in res.stdout


def test_a_manual_dataset_without_its_copy_is_skipped_with_the_instructions(tmp_path):
    layered = tmp_path / "cc.yaml"
    layered.write_text(yaml.safe_dump({"datasets": ["itk-kmeans", "cc359"]}))
    res = snakemake("-n", "--cores", "2", "--configfile", str(TINY), str(layered), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (
        "dataset cc359 skipped: cc359: download it by hand and set manual_data.cc359"
        in res.stdout + res.stderr
    )
    assert "Silver-standard-machine-learning.zip" in res.stdout + res.stderr
    assert "dataset=cc359, method" not in res.stdout


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("  hd: {tool: hdbet3}\n", "method hd: unknown tool 'hdbet3'"),
        ("  o2: {tool: otsu, seed: 1}\n", "method o2 (tool otsu): unknown setting 'seed' (settings: none)"),
        ("  h2: {tool: hdbet, mode: slow}\n", "mode: 'slow' is not one of fast, accurate"),
        ("  g2: {tool: gmm, train: x.yaml}\n", "methods.g2: 'train' is for tool pumba"),
    ],
)
def test_a_config_method_is_checked_against_the_registry(tmp_path, entry, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("methods:\n", "methods:\n" + entry))
    res = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert res.returncode != 0
    assert message in res.stdout + res.stderr


@pytest.mark.parametrize("target", ["release", "ablation", "seeds"])
def test_dry_run_of_the_release_and_ablation_targets(tmp_path, target):
    config = REPO / "config" / "config.yaml"
    settings = yaml.safe_load(config.read_text())
    # the training scale of the ablation and seed runs comes from the config, not from the arms' files
    settings["ablation"]["steps"], settings["seed_spread"]["steps"] = 7, 9
    changed = tmp_path / "config.yaml"
    changed.write_text(yaml.safe_dump(settings))
    res = snakemake("-n", "-p", "--cores", "2", target, "--configfile", str(changed), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    expected = {
        "release": ["train", "export_release", "release_scores"],
        "ablation": ["train_arm", "ablation_inference_scores", "table_ablation"],
        "seeds": ["seed_config", "train_seed", "seed_scores", "table_seeds"],
    }[target]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout, flags=re.M))
    for rule in expected:
        assert rule in counts, rule
    if target == "seeds":  # one training per seed of config seed_spread, none of the default run's
        seeds = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["seed_spread"]["seeds"]
        assert int(counts["train_seed"]) == len(seeds) >= 3 and "strip" not in counts
    trains = re.findall(r"pumba train .*$", res.stdout + res.stderr, flags=re.M)
    if target == "seeds":
        assert len(trains) == len(settings["seed_spread"]["seeds"]) and all("--steps 9 " in t for t in trains)
    if target == "ablation":  # as shipped, resize, transform, no TTA, the authors' post-processing
        assert int(counts["ablation_inference_scores"]) == 5
        assert len(trains) == len(settings["ablation"]["arms"]) and all("--steps 7 " in t for t in trains)
        assert any("no-boundary-class.yaml" in t for t in trains)


@pytest.mark.slow
def test_tiny_dag_end_to_end(tiny_run):
    tmp_path, res, rep = tiny_run
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    summary = pd.read_csv(tmp_path / "results" / "tables" / "summary.csv")
    datasets = pd.read_csv(tmp_path / "results" / "tables" / "datasets.csv")
    available = set(datasets.loc[datasets["available"], "dataset"])
    assert "itk-kmeans" in available
    pairs = set(zip(summary["method"], summary["dataset"], strict=True))
    methods = ("pumba", "pumba-quick", "otsu", "gmm", "bet")
    assert pairs == {(m, d) for m in methods for d in available}
    table = pd.read_csv(tmp_path / "results" / "tables" / "methods.csv").set_index("method")
    assert list(table.index) == [*methods, "synthstrip"]
    assert not table.loc["synthstrip", "ran"] and "no weights given" in table.loc["synthstrip", "reason"]
    assert table.loc[list(methods), "ran"].all() and table.loc["bet", "version"] == "brainextractor 0.3.0"
    assert (table.loc[list(methods), "seconds_total"] > 0).all()
    assert json.loads(table.loc["gmm", "settings"]) == {"seed": 1}  # config -> record -> table
    record = json.loads(
        (tmp_path / "results" / "predictions" / "pumba-quick" / "itk-kmeans" / "kmeans.json").read_text()
    )
    assert record["tool"] == "pumba" and record["settings"]["tta"] is False
    assert (tmp_path / "results" / "figures" / "cost.png").stat().st_size > 10_000
    ok = summary[summary["n_failed"] < summary["n"]]
    assert ok["dice_mean"].between(0, 1).all()
    otsu_itk = summary[(summary["method"] == "otsu") & (summary["dataset"] == "itk-kmeans")].iloc[0]
    assert otsu_itk["dice_mean"] > 0.3
    per_subject = pd.read_csv(tmp_path / "results" / "tables" / "per_subject.csv")
    failed = per_subject[per_subject["status"] == "failed"]
    assert failed["error"].notna().all()  # a failure is recorded with its reason, not dropped
    assert rep.returncode == 0, rep.stdout[-4000:] + rep.stderr[-4000:]
    html = (tmp_path / "results" / "report.html").read_text(errors="replace")
    assert len(html) > 10_000 and "summary" in html
    for table in ("table1_datasets", "table2_accuracy", "runtime"):
        for suffix in (".csv", ".md", ".tex"):
            assert (tmp_path / "results" / "tables" / f"{table}{suffix}").stat().st_size > 100
    table2 = pd.read_csv(tmp_path / "results" / "tables" / "table2_accuracy.csv")
    assert set(table2.loc[table2["method"] != "pumba", "dice_test"]) == {"n too small"}  # one subject each
    for figure in ("synth_steps", "release_switches", "qualitative", "strata"):
        assert (tmp_path / "results" / "figures" / f"{figure}.png").stat().st_size > 20_000


@pytest.mark.slow
def test_datasets_that_cannot_be_had_are_skipped_and_reported(tmp_path):
    """No network and no mirror: the url datasets are skipped with a reason; the run still succeeds."""
    offline = tmp_path / "offline.yaml"
    text = TINY.read_text().replace("mirror: ../shared/data/mirror", 'mirror: ""')
    offline.write_text(text.replace("  gmm: {tool: gmm, seed: 1}\n  bet: {tool: bet}\n", ""))
    res = snakemake("--cores", "2", "--configfile", str(offline), cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    datasets = pd.read_csv(tmp_path / "results" / "tables" / "datasets.csv").set_index("dataset")
    assert datasets.loc["itk-kmeans", "available"]
    for skipped in ("sherm-mouse", "yerkes19-macaque"):
        assert not datasets.loc[skipped, "available"]
        assert "download" in datasets.loc[skipped, "reason"] or "mirror" in datasets.loc[skipped, "reason"]
    summary = pd.read_csv(tmp_path / "results" / "tables" / "summary.csv")
    assert set(summary["dataset"]) == {"itk-kmeans"}
    assert set(summary["method"]) == {"pumba", "pumba-quick", "otsu"}
