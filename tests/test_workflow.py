"""The Snakemake workflow: lint, schema validation, dry runs, and the real DAG end to end on a tiny config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

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


def test_dry_run_of_the_default_config(tmp_path):
    res = snakemake("-n", "--cores", "2", "--configfile", str(REPO / "config" / "config.yaml"), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "prepare_dataset" in res.stdout and "train" in res.stdout


def test_a_method_that_is_neither_a_model_nor_a_baseline_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("methods:\n", "methods:\n  - hdbet3\n"))
    res = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert res.returncode != 0
    assert "hdbet3 is neither one of 'models'" in res.stdout + res.stderr


@pytest.mark.parametrize("target", ["release", "ablation"])
def test_dry_run_of_the_release_and_ablation_targets(tmp_path, target):
    config = str(REPO / "config" / "config.yaml")
    res = snakemake("-n", "--cores", "2", target, "--configfile", config, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    expected = {"release": ["train", "export_release", "release_scores"], "ablation": ["train_arm"]}[target]
    for rule in expected:
        assert rule in res.stdout


@pytest.mark.slow
def test_tiny_dag_end_to_end(tmp_path):
    res = snakemake("--cores", "2", "--configfile", str(TINY), cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    summary = pd.read_csv(tmp_path / "results" / "tables" / "summary.csv")
    datasets = pd.read_csv(tmp_path / "results" / "tables" / "datasets.csv")
    available = set(datasets.loc[datasets["available"], "dataset"])
    assert "itk-kmeans" in available
    pairs = set(zip(summary["method"], summary["dataset"], strict=True))
    methods = ("pumba", "pumba-quick", "otsu", "gmm", "bet")
    assert pairs == {(m, d) for m in methods for d in available}
    ok = summary[summary["n_failed"] < summary["n"]]
    assert ok["dice_mean"].between(0, 1).all()
    otsu_itk = summary[(summary["method"] == "otsu") & (summary["dataset"] == "itk-kmeans")].iloc[0]
    assert otsu_itk["dice_mean"] > 0.3
    per_subject = pd.read_csv(tmp_path / "results" / "tables" / "per_subject.csv")
    failed = per_subject[per_subject["status"] == "failed"]
    assert failed["error"].notna().all()  # a failure is recorded with its reason, not dropped
    rep = snakemake("--report", "results/report.html", "--configfile", str(TINY), cwd=tmp_path)
    assert rep.returncode == 0, rep.stdout[-4000:] + rep.stderr[-4000:]
    html = (tmp_path / "results" / "report.html").read_text(errors="replace")
    assert len(html) > 10_000 and "summary" in html


@pytest.mark.slow
def test_datasets_that_cannot_be_had_are_skipped_and_reported(tmp_path):
    """No network and no mirror: the url datasets are skipped with a reason; the run still succeeds."""
    offline = tmp_path / "offline.yaml"
    text = TINY.read_text().replace("mirror: ../shared/data/mirror", 'mirror: ""')
    offline.write_text(text.replace("  - gmm\n  - bet\n", ""))
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
