"""The paper's tables from measured results, each a CSV plus Markdown and LaTeX (:func:`render.write_table`).

- Table 1, :func:`dataset_table`: one row per requested dataset: species, modality, pathology, subjects,
  voxel size (mm, read from the prepared images' headers), how its reference mask was made, licence, and
  whether it ran here (and why not).
- Table 2, :func:`accuracy_table`: median (IQR) Dice and HD95 (mm) per dataset and method over the successful
  runs, failures counted, a paired Wilcoxon signed-rank test of each method against ours per dataset with
  Holm's correction over the methods (:mod:`pumba.metrics.stats`; "n too small" below 6 pairs), the best
  median per column marked.
- :func:`runtime_table`: wall seconds per scan (median, IQR, total) and peak resident memory (MB) per method.
- Table 3, :func:`ablation_table`: every ablation arm's Dice against the reference arm, read against the
  spread between seeds (:func:`seed_spread`).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pumba.figures.palette import method_order
from pumba.io import InputError
from pumba.metrics.stats import MIN_PAIRS, TOO_SMALL, holm, paired_wilcoxon
from pumba.metrics.tables import read_table

VALIDATE_COLUMNS = ("model", "dataset", "subject", "dice", "hd95_mm")
"""Columns of a ``pumba validate`` table that the ablation and seed tables read."""
ALPHA = 0.05
DASH = "–"


# ----------------------------------------------------------------------------------------------- Table 1
def mask_provenance(dataset) -> tuple[str, bool]:
    """How a dataset's reference mask was made, and whether the registry said so (False: derived from notes).

    Reads the registry's ``mask_provenance`` when the :class:`pumba.data.registry.Dataset` has it; else it
    is derived: a team-made reference mask names its tool (``made_by``), else the notes are read for
    "BET output", "HD-BET", "manual", "template" or a tool's "own reference".
    """
    given = getattr(dataset, "mask_provenance", None)
    if given:
        return str(given), True
    from pumba.data.registry import ReferenceMaskFile

    for subject in dataset.subjects.values():
        if isinstance(subject.mask, ReferenceMaskFile):
            return f"tool-made: {subject.mask.made_by}", False
    notes = " ".join(dataset.notes).lower()
    for pattern, text in (
        (r"hd-bet", "tool-made: HD-BET"),
        (r"\bbet output|made by bet", "tool-made: BET"),
        (r"own reference", "tool's own reference"),
        (r"labels? \{|tissue labels", "tool-made: tissue labels"),
        (r"manual", "manual"),
        (r"template", "template"),
    ):
        if re.search(pattern, notes):
            return text, False
    return "as shipped (see the registry's notes)", False


def _voxel_text(zooms: Sequence[float]) -> str:
    return "x".join(f"{z:.3g}" for z in zooms)


def image_resolution(paths: Sequence[str | os.PathLike]) -> str:
    """The voxel sizes (mm) of the images, 'AxBxC' (the first image's; '; '-joined when they differ)."""
    import nibabel as nib

    texts: list[str] = []
    for path in paths:
        try:
            zooms = nib.load(str(path)).header.get_zooms()[:3]
        except (OSError, ValueError, nib.filebasedimages.ImageFileError):
            continue
        text = _voxel_text([float(z) for z in zooms])
        if text not in texts:
            texts.append(text)
    return "; ".join(texts[:3]) + (" ..." if len(texts) > 3 else "") if texts else DASH


def dataset_table(
    registry_path: str | os.PathLike, data_dirs: Sequence[str | os.PathLike]
) -> tuple[pd.DataFrame, list[str], list[list[str]]]:
    """Table 1 from the registry and the prepared dataset directories (status.json, manifest.tsv).

    Returns the CSV frame (one row per directory's dataset, in the given order) and the display table.
    """
    from pumba.data.registry import load_registry

    registry = load_registry(registry_path)
    rows = []
    for directory in map(Path, data_dirs):
        status_path = directory / "status.json"
        try:
            status = json.loads(status_path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{status_path}: unreadable dataset status ({exc})") from None
        dataset = registry.get(status["dataset"])
        manifest = directory / "manifest.tsv"
        images = []
        if status.get("available") and manifest.is_file():
            frame = pd.read_csv(manifest, sep="\t", dtype=str, keep_default_na=False)
            images = [p if os.path.isabs(p) else str(Path(p)) for p in frame["image"]]
        provenance, stated = mask_provenance(dataset)
        n = status.get("n_subjects")
        if n is None:
            n = getattr(dataset, "n_subjects", None) or len(dataset.subjects)
        rows.append(
            {
                "dataset": dataset.id,
                "species": dataset.species,
                "modality": dataset.modality,
                "pathology": dataset.pathology,
                "n": int(n),
                "resolution_mm": image_resolution(images) if images else DASH,
                "mask_provenance": provenance,
                "provenance_source": "registry" if stated else "derived from notes",
                "licence": " ".join(str(dataset.licence).split()),
                "available": bool(status.get("available")),
                "reason": status.get("reason") or "",
            }
        )
    frame = pd.DataFrame(rows)
    header = ["dataset", "species", "modality", "pathology", "n", "voxels (mm)", "reference mask", "licence"]
    display = [
        [
            r["dataset"] + ("" if r["available"] else " (not run)"),
            r["species"],
            r["modality"],
            r["pathology"],
            str(r["n"]),
            r["resolution_mm"],
            r["mask_provenance"],
            r["licence"],
        ]
        for r in rows
    ]
    return frame, header, display


# ----------------------------------------------------------------------------------------------- Table 2
def _quartiles(values: np.ndarray) -> tuple[float, float, float]:
    if values.size == 0:
        return math.nan, math.nan, math.nan
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return float(med), float(q1), float(q3)


def _cell(med: float, q1: float, q3: float, n_ok: int, n_failed: int, digits: int) -> str:
    if not math.isfinite(med):
        text = "failed" if n_failed else DASH
    elif n_ok == 1:
        text = f"{med:.{digits}f}"
    else:
        text = f"{med:.{digits}f} ({q1:.{digits}f}{DASH}{q3:.{digits}f})"
    if n_failed and math.isfinite(med):
        text += f" [{n_failed} failed]"
    return text


METRICS = (("dice", "Dice", 3, "max"), ("hd95_mm", "HD95 (mm)", 1, "min"))


def accuracy_table(
    per_subject: pd.DataFrame, ours: str, methods: Sequence[str] | None = None
) -> tuple[pd.DataFrame, list[str], list[list[str]]]:
    """Table 2: one CSV row per (dataset, method); the display has Dice rows then HD95 rows.

    CSV columns: dataset, method, n, n_failed, {dice,hd95}_{median,q1,q3}, {dice,hd95}_{n_pairs,p,p_holm,
    test}, {dice,hd95}_best. ``test`` is 'n too small', 'ours', 'identical' or '' (tested). The best is the
    highest median Dice / lowest median HD95 of the column (ties all marked).
    """
    if ours not in set(per_subject["method"]):
        raise InputError(f"Table 2: our method {ours!r} has no rows in the per-subject table")
    order = method_order(per_subject["method"], methods)
    datasets = list(dict.fromkeys(per_subject["dataset"].astype(str)))
    table = per_subject.assign(
        dataset=per_subject["dataset"].astype(str), subject=per_subject["subject"].astype(str)
    )
    rows = []
    for dataset in datasets:
        here = table[table["dataset"] == dataset]
        values = {
            col: here[here["status"] == "ok"].pivot_table(
                index="subject", columns="method", values=col, aggfunc="first"
            )
            for col, *_ in METRICS
        }
        block = []
        for method in order:
            runs = here[here["method"] == method]
            if runs.empty:
                continue
            row = {
                "dataset": dataset,
                "method": method,
                "n": len(runs),
                "n_failed": int((runs["status"] != "ok").sum()),
            }
            for col, _, _, _ in METRICS:
                key = col.removesuffix("_mm")
                v = (
                    pd.to_numeric(runs.loc[runs["status"] == "ok", col], errors="coerce")
                    .dropna()
                    .to_numpy(float)
                )
                row[f"{key}_median"], row[f"{key}_q1"], row[f"{key}_q3"] = _quartiles(v)
                row[f"{key}_n_ok"] = int(v.size)
                if method == ours:
                    row.update({f"{key}_n_pairs": int(v.size), f"{key}_p": math.nan, f"{key}_test": "ours"})
                    continue
                pivot = values[col]
                pair = (
                    paired_wilcoxon(pivot[method].to_numpy(float), pivot[ours].to_numpy(float))
                    if method in pivot and ours in pivot
                    else paired_wilcoxon([], [])
                )
                row.update({f"{key}_n_pairs": pair.n_pairs, f"{key}_p": pair.p, f"{key}_test": pair.note})
            block.append(row)
        for col, _, _, better in METRICS:
            key = col.removesuffix("_mm")
            adjusted = holm([r[f"{key}_p"] for r in block])
            medians = [r[f"{key}_median"] for r in block]
            finite = [m for m in medians if math.isfinite(m)]
            best = (max if better == "max" else min)(finite) if finite else math.nan
            for r, p in zip(block, adjusted, strict=True):
                r[f"{key}_p_holm"] = p
                r[f"{key}_best"] = bool(math.isfinite(r[f"{key}_median"]) and r[f"{key}_median"] == best)
        rows.extend(block)
    columns = ["dataset", "method", "n", "n_failed"]
    for col, *_ in METRICS:
        key = col.removesuffix("_mm")
        columns += [
            f"{key}_{s}" for s in ("median", "q1", "q3", "n_ok", "n_pairs", "p", "p_holm", "test", "best")
        ]
    frame = pd.DataFrame(rows)[columns]

    header = ["method", *datasets]
    display: list[list[str]] = []
    for col, label, digits, _ in METRICS:
        key = col.removesuffix("_mm")
        display.append([f"*{label}, median (IQR)*", *[""] * len(datasets)])
        for method in order:
            cells = [method]
            for dataset in datasets:
                hit = frame[(frame["dataset"] == dataset) & (frame["method"] == method)]
                if hit.empty:
                    cells.append(DASH)
                    continue
                r = hit.iloc[0]
                text = _cell(
                    r[f"{key}_median"],
                    r[f"{key}_q1"],
                    r[f"{key}_q3"],
                    r[f"{key}_n_ok"],
                    r["n_failed"],
                    digits,
                )
                if r[f"{key}_best"]:
                    text = f"**{text}**"
                if math.isfinite(r[f"{key}_p_holm"]) and r[f"{key}_p_holm"] < ALPHA:
                    text += " *"
                cells.append(text)
            display.append(cells)
        tests = []
        for dataset in datasets:
            here = frame[(frame["dataset"] == dataset) & (frame["method"] != ours)]
            pairs = int(here[f"{key}_n_pairs"].max()) if not here.empty else 0
            if here.empty:
                tests.append(DASH)
            elif (here[f"{key}_test"] == TOO_SMALL).all():
                tests.append(f"{TOO_SMALL} ({pairs} of {MIN_PAIRS} pairs)")
            else:
                n_sig = int((here[f"{key}_p_holm"] < ALPHA).sum())
                tests.append(f"{n_sig} of {len(here)} differ (Holm p < {ALPHA})")
        display.append([f"Wilcoxon vs {ours}", *tests])
    return frame, header, display


def accuracy_caption(ours: str) -> str:
    """Table 2's caption."""
    return (
        "Table 2. Median (IQR) Dice and HD95 (mm) per dataset (columns) and method (rows) over successful "
        "runs; [k failed]: runs without a mask. Bold: the best median of the column. *: differs from "
        f"{ours} in a paired two-sided Wilcoxon signed-rank test, Holm-corrected over the methods of the "
        f"dataset, p < {ALPHA}; '{TOO_SMALL}': fewer than {MIN_PAIRS} paired subjects, no test run."
    )


# ---------------------------------------------------------------------------------------- runtime table
def runtime_table(
    per_subject: pd.DataFrame,
    methods_table: pd.DataFrame | None = None,
    methods: Sequence[str] | None = None,
    training: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, list[str], list[list[str]]]:
    """Wall seconds per scan and peak resident memory (MB = 2^20 bytes) per method, over successful runs.

    ``methods_table`` (``pumba method-table``) adds tool and version and lists skipped methods with their
    reason; ``training`` maps a trained method to its training job's wall seconds.
    """
    order = method_order(per_subject["method"], methods)
    info = methods_table.set_index("method") if methods_table is not None else None
    if info is not None:
        order += [m for m in info.index if m not in order]
    rows = []
    for method in order:
        runs = per_subject[per_subject["method"] == method]
        ok = runs[runs["status"] == "ok"]
        sec = pd.to_numeric(ok["seconds"], errors="coerce").dropna().to_numpy(float)
        mem = pd.to_numeric(ok["peak_rss_mb"], errors="coerce").dropna().to_numpy(float)
        med, q1, q3 = _quartiles(sec)
        row = {
            "method": method,
            "tool": "",
            "version": "",
            "ran": not runs.empty,
            "reason": "",
            "n_runs": len(runs),
            "n_failed": int((runs["status"] != "ok").sum()),
            "seconds_median": med,
            "seconds_q1": q1,
            "seconds_q3": q3,
            "seconds_total": float(pd.to_numeric(runs["seconds"], errors="coerce").sum())
            if len(runs)
            else math.nan,
            "peak_rss_mb_median": float(np.median(mem)) if mem.size else math.nan,
            "peak_rss_mb_max": float(mem.max()) if mem.size else math.nan,
            "training_seconds": float((training or {}).get(method, math.nan)),
        }
        if info is not None and method in info.index:
            r = info.loc[method]
            row.update(tool=str(r["tool"]), version="" if pd.isna(r["version"]) else str(r["version"]))
            row.update(
                ran=bool(r["ran"]) and len(runs) > 0, reason="" if pd.isna(r["reason"]) else str(r["reason"])
            )
        rows.append(row)
    frame = pd.DataFrame(rows)
    header = [
        "method",
        "version",
        "runs (failed)",
        "s per scan, median (IQR)",
        "s in all",
        "peak MB (max)",
        "training",
    ]
    display = []
    for r in rows:
        if not r["ran"]:
            display.append(
                [
                    r["method"],
                    r["version"] or DASH,
                    "0",
                    f"not run: {r['reason'] or 'no runs'}",
                    DASH,
                    DASH,
                    DASH,
                ]
            )
            continue
        sec = _cell(r["seconds_median"], r["seconds_q1"], r["seconds_q3"], r["n_runs"] - r["n_failed"], 0, 1)
        train = r["training_seconds"]
        display.append(
            [
                r["method"],
                r["version"] or DASH,
                f"{r['n_runs']} ({r['n_failed']})",
                sec,
                f"{r['seconds_total']:.0f}",
                f"{r['peak_rss_mb_median']:.0f} ({r['peak_rss_mb_max']:.0f})"
                if math.isfinite(r["peak_rss_mb_max"])
                else DASH,
                f"{train:.0f} s" if math.isfinite(train) else DASH,
            ]
        )
    return frame, header, display


def read_benchmark_seconds(path: str | os.PathLike) -> float:
    """Wall seconds (column ``s``) of a Snakemake ``benchmark:`` TSV (the last repeat)."""
    frame = read_table(path, "benchmark file", ["s"], sep="\t")
    if frame.empty:
        raise InputError(f"{path}: benchmark file has no rows")
    return float(frame["s"].iloc[-1])


# ------------------------------------------------------------------------------- seeds and ablations
def read_validate(
    paths: Sequence[str | os.PathLike], named: Mapping[str, str | os.PathLike] | None = None
) -> pd.DataFrame:
    """``pumba validate`` tables concatenated, with an ``arm`` column: in ``paths``' tables the model file's
    folder name (``results/ablation/<arm>/model.pt``), in each of ``named``'s (arm -> table) its arm for every
    row (one model scored with another inference setting). Each arm keeps its last step (a table of
    snapshots has several)."""
    frames = []
    for path in paths:
        frame = read_table(path, "validation table", VALIDATE_COLUMNS, dtype={"subject": str})
        frames.append(frame.assign(arm=[Path(str(m)).parent.name for m in frame["model"]]))
    trained = {a for f in frames for a in f["arm"]}
    for arm, path in (named or {}).items():
        if arm in trained:
            raise InputError(f"{path}: arm {arm!r} is also a trained arm of the scores tables")
        frame = read_table(path, "validation table", VALIDATE_COLUMNS, dtype={"subject": str})
        frames.append(frame.assign(arm=arm))
    if not frames:
        raise InputError("no validation table given")
    frame = pd.concat(frames, ignore_index=True)
    if "step" in frame:
        last = frame.groupby("arm")["step"].transform("max")
        frame = frame[frame["step"] == last]
    return frame


def arm_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Per arm: mean Dice over every scan, per-dataset Dice (columns dice:DATASET), median HD95 (mm)."""
    rows = []
    for arm, group in scores.groupby("arm", sort=False):
        row = {"arm": arm, "n_scans": len(group), "dice_mean": float(group["dice"].mean())}
        row["hd95_median"] = float(group["hd95_mm"].median())
        for dataset, part in group.groupby("dataset", sort=False):
            row[f"dice:{dataset}"] = float(part["dice"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def seed_spread(scores: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[list[str]]]:
    """The spread between the seed arms of one recipe: per arm its mean Dice, then the spread's summary row.

    The summary gives the mean over seeds, their sample standard deviation and range (max - min) of the
    mean Dice, and per dataset the range: a difference between recipes smaller than that range is within
    what a different seed alone gives.
    """
    means = arm_means(scores)
    if len(means) < 2:
        raise InputError(f"seed spread: need at least two seeds' scores, got {len(means)}")
    datasets = [c for c in means.columns if c.startswith("dice:")]
    spread = {"arm": "spread (sd; range)", "n_scans": int(means["n_scans"].iloc[0])}
    spread["dice_mean"] = float(means["dice_mean"].std(ddof=1))
    spread["dice_range"] = float(means["dice_mean"].max() - means["dice_mean"].min())
    spread["hd95_median"] = float(means["hd95_median"].max() - means["hd95_median"].min())
    for c in datasets:
        spread[c] = float(means[c].max() - means[c].min())
    frame = pd.concat([means, pd.DataFrame([spread])], ignore_index=True)
    header = ["seed arm", "mean Dice", "median HD95 (mm)", *(c.removeprefix("dice:") for c in datasets)]
    display = [
        [r["arm"], f"{r['dice_mean']:.3f}", f"{r['hd95_median']:.1f}", *(f"{r[c]:.3f}" for c in datasets)]
        for _, r in means.iterrows()
    ]
    display.append(
        [
            f"sd (range) over {len(means)} seeds",
            f"{spread['dice_mean']:.3f} ({spread['dice_range']:.3f})",
            f"range {spread['hd95_median']:.1f}",
            *(f"range {spread[c]:.3f}" for c in datasets),
        ]
    )
    return frame, header, display


def ablation_table(
    scores: pd.DataFrame,
    reference: str,
    seed_arms: Sequence[str] = (),
    groups: Mapping[str, str] | None = None,
    against: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, list[str], list[list[str]]]:
    """Table 3: per arm its mean Dice, the difference from the arm it changes (``against[arm]``, else the
    ``reference`` arm), and whether that difference exceeds the seed-to-seed range of ``seed_arms`` (those
    arms' mean-Dice max - min; needs two or more of them).

    ``groups`` maps an arm to its group (e.g. 'inference'); by default the group is read from the arm's name:
    'no-boundary*' the label without the boundary class, 'no-*' a switch removed, 'plus-*' a switch added,
    '*seed*' a seed. InputError when the reference or an arm named in ``against`` has no scores.
    """
    means = arm_means(scores)
    arms = set(means["arm"])
    against = dict(against or {})
    for arm, base in [(reference, reference), *against.items()]:
        if base not in arms:
            raise InputError(
                f"Table 3: arm {base!r} (against which {arm!r} is read) has no scores "
                f"(arms: {', '.join(means['arm'])})"
            )
    mean_of = dict(zip(means["arm"], means["dice_mean"], strict=True))
    seeds = means[means["arm"].isin(seed_arms)]
    seed_range = float(seeds["dice_mean"].max() - seeds["dice_mean"].min()) if len(seeds) >= 2 else math.nan

    def group_of(arm: str) -> str:
        if groups and arm in groups:
            return groups[arm]
        if arm in seed_arms or "seed" in arm:
            return "seed"
        if arm.startswith("no-boundary"):
            return "label: no boundary class"
        if arm.startswith("no-"):
            return "generator: one switch removed"
        if arm.startswith("plus-"):
            return "generator: one switch added"
        return "recipe"

    means["group"] = [group_of(a) for a in means["arm"]]
    bases = [None if a == reference else against.get(a, reference) for a in means["arm"]]
    means["against"] = bases
    means["delta_dice"] = [
        math.nan if base is None else d - mean_of[base]
        for base, d in zip(bases, means["dice_mean"], strict=True)
    ]
    means["seed_range"] = seed_range
    means["beyond_seed_range"] = [
        bool(math.isfinite(seed_range) and math.isfinite(d) and abs(d) > seed_range and a not in seed_arms)
        for a, d in zip(means["arm"], means["delta_dice"], strict=True)
    ]
    header = ["arm", "group", "scans", "mean Dice", "against", "Δ Dice", "median HD95 (mm)"]
    best = means["dice_mean"].max()
    display = []
    for base, (_, r) in zip(bases, means.iterrows(), strict=True):
        dice = f"{r['dice_mean']:.3f}"
        if r["dice_mean"] == best:
            dice = f"**{dice}**"
        if base is None:
            base, delta = DASH, DASH
        else:
            delta = f"{r['delta_dice']:+.3f}" + (" †" if r["beyond_seed_range"] else "")
        row = [r["arm"], r["group"], str(r["n_scans"]), dice, base, delta, f"{r['hd95_median']:.1f}"]
        display.append(row)
    if math.isfinite(seed_range):
        display.append(
            [f"seed range ({len(seeds)} seeds)", "seed", DASH, f"{seed_range:.3f}", DASH, DASH, DASH]
        )
    return means, header, display
