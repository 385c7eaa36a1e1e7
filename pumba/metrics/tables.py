"""Per-subject metric tables from run records and dataset manifests, and their per-method summary.

A *run record* is the JSON file written by :func:`pumba.bench.runner.run_method` (its fields:
:mod:`pumba.bench.record`). A *manifest* is the data stage's TSV (:mod:`pumba.data.manifest`) with columns
dataset, subject, image, mask, species, modality, pathology; its ``mask`` column is the reference brain
mask, on the grid of its ``image``. Records and manifest rows are matched on (dataset, subject). Relative
paths are taken relative to the current directory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from pumba.bench.record import SCORED_FIELDS
from pumba.data.manifest import MANIFEST_COLUMNS
from pumba.grid import check_same_grid
from pumba.io import InputError, Volume, load_volume
from pumba.metrics.distance import hd95
from pumba.metrics.overlap import dice, sensitivity, specificity, volume_ml

PER_SUBJECT_COLUMNS = (
    "method",
    "dataset",
    "subject",
    "species",
    "status",
    "error",
    "dice",
    "hd95_mm",
    "sensitivity",
    "specificity",
    "volume_ref_ml",
    "volume_pred_ml",
    "volume_diff_pct",
    "seconds",
    "peak_rss_mb",
    "qc_score",
    "qc_flag",
)
"""qc_score and qc_flag: the mask's quality score without a reference (:mod:`pumba.infer.qc`) where the tool
reported one in its record (our models do), else empty."""
SUMMARY_COLUMNS = (
    "method",
    "dataset",
    "species",
    "n",
    "n_failed",
    "dice_mean",
    "dice_median",
    "dice_std",
    "hd95_mean",
    "hd95_median",
    "seconds_mean",
    "peak_rss_mb_max",
)

# Reference masks may be stored as probabilities or labels; predictions as any non-zero label.
REF_THRESHOLD = 0.5
PRED_THRESHOLD = 0.0


def evaluate_volumes(pred: Volume, ref: Volume) -> dict[str, float]:
    """Metrics of a prediction against a reference on the same grid (checked: :func:`pumba.grid.same_grid`).

    The reference is binarised at > 0.5 and the prediction at > 0. Voxel sizes come from the
    reference's affine. Returns the per-subject metric columns: dice, hd95_mm (see
    :func:`pumba.metrics.distance.hd95` for empty masks), sensitivity, specificity,
    volume_ref_ml, volume_pred_ml, volume_diff_pct (signed, prediction - reference, in percent
    of the reference).

    Raises:
        InputError: the grids differ; the message names both files.
    """
    check_same_grid(pred, ref, what="prediction", reference_what="reference")
    p = pred.data > PRED_THRESHOLD
    r = ref.data > REF_THRESHOLD
    voxel_mm3 = ref.voxel_ml * 1000.0  # |det| of the affine: right on a sheared grid too
    v_ref, v_pred = volume_ml(r, voxel_mm3), volume_ml(p, voxel_mm3)
    return {
        "dice": dice(p, r),
        "hd95_mm": hd95(p, r, ref.zooms),
        "sensitivity": sensitivity(p, r),
        "specificity": specificity(p, r),
        "volume_ref_ml": v_ref,
        "volume_pred_ml": v_pred,
        "volume_diff_pct": 100.0 * (v_pred - v_ref) / v_ref if v_ref > 0 else math.nan,
    }


def evaluate_pair(pred_path: str | os.PathLike, ref_path: str | os.PathLike) -> dict[str, float]:
    """Load a predicted and a reference mask and compute :func:`evaluate_volumes`' metrics.

    Raises:
        InputError: either file is unreadable, or their grids differ (shapes or affines).
    """
    return evaluate_volumes(load_volume(pred_path), load_volume(ref_path))


def read_record(path: str | os.PathLike) -> dict:
    """Read a run record JSON file; InputError if it is unreadable or lacks a required key."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such run record") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON run record ({exc})") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: run record is not a JSON object")
    missing = [k for k in SCORED_FIELDS if k not in record]
    if missing:
        raise InputError(f"{path}: run record lacks {', '.join(missing)}")
    if record["status"] not in ("ok", "failed"):
        raise InputError(f"{path}: run record status must be 'ok' or 'failed', not {record['status']!r}")
    return record


def read_manifests(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Concatenate dataset manifests (TSV); InputError on a missing column or a repeated subject."""
    frames = [
        read_table(path, "manifest", MANIFEST_COLUMNS, sep="\t", dtype=str, keep_default_na=False).assign(
            _manifest=str(path)
        )
        for path in paths
    ]
    if not frames:
        raise InputError("no manifest given")
    manifest = pd.concat(frames, ignore_index=True)
    dup = manifest.duplicated(["dataset", "subject"], keep=False)
    if dup.any():
        row = manifest[dup].iloc[0]
        raise InputError(
            f"{row['_manifest']}: subject ({row['dataset']}, {row['subject']}) is listed more "
            "than once across the manifests"
        )
    return manifest


def per_subject_row(record: dict, manifest_row: pd.Series) -> dict:
    """One per-subject table row (PER_SUBJECT_COLUMNS) from a run record and its manifest row.

    A failed record gives status 'failed', its error and empty metrics. A record that says 'ok'
    but whose mask cannot be read or lies on another grid than the reference is a failure of the
    method, recorded the same way. A missing or unreadable reference mask is a data error and
    raises InputError.
    """
    row = dict.fromkeys(PER_SUBJECT_COLUMNS, math.nan)
    row.update(
        method=record["method"],
        dataset=record["dataset"],
        subject=record["subject"],
        species=manifest_row["species"],
        status=record["status"],
        error=record["error"] or "",
        seconds=_float(record.get("seconds")),
        peak_rss_mb=_float(record.get("peak_rss_mb")),
    )
    qc = record.get("qc") or {}
    if qc:
        row.update(qc_score=_float(qc.get("score")), qc_flag=bool(qc.get("flag")))
    if record["status"] != "ok":
        return row
    ref = load_volume(manifest_row["mask"])
    try:
        if not record["mask"]:
            raise InputError("record says ok but names no mask")
        metrics = evaluate_volumes(load_volume(record["mask"]), ref)
    except InputError as exc:
        row.update(status="failed", error=str(exc))
        return row
    row.update(metrics)
    return row


def _float(value) -> float:
    return math.nan if value is None else float(value)


def per_subject_table(
    record_paths: Sequence[str | os.PathLike], manifest_paths: Sequence[str | os.PathLike]
) -> pd.DataFrame:
    """The per-subject table (columns PER_SUBJECT_COLUMNS, in order) for the given run records.

    Raises:
        InputError: an unreadable record or manifest, a record whose (dataset, subject) is in no
            manifest, or two records for the same (method, dataset, subject).
    """
    manifest = read_manifests(manifest_paths).set_index(["dataset", "subject"])
    rows, seen = [], {}
    for path in record_paths:
        record = read_record(path)
        key = (record["dataset"], record["subject"])
        if key not in manifest.index:
            raise InputError(
                f"{path}: ({record['dataset']}, {record['subject']}) is in none of the manifests"
            )
        run_key = (record["method"], *key)
        if run_key in seen:
            raise InputError(f"{path}: same method, dataset and subject as {seen[run_key]}")
        seen[run_key] = path
        rows.append(per_subject_row(record, manifest.loc[key]))
    return pd.DataFrame(rows, columns=list(PER_SUBJECT_COLUMNS))


def read_per_subject(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Concatenate per-subject CSV tables; InputError if one lacks a column."""
    dtypes = {"subject": str, "dataset": str, "error": str}
    frames = [
        read_table(path, "per-subject table", PER_SUBJECT_COLUMNS, dtype=dtypes)[list(PER_SUBJECT_COLUMNS)]
        for path in paths
    ]
    if not frames:
        raise InputError("no per-subject table given")
    return pd.concat(frames, ignore_index=True)


def summarise(per_subject: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, dataset), columns SUMMARY_COLUMNS, sorted by dataset then method.

    ``n`` counts every run, ``n_failed`` the runs whose status is not 'ok'. All other statistics
    are over the successful runs only: a failed run is excluded from the means, medians, the
    standard deviation and the peak memory. An ok run whose HD95 is missing (exactly one mask
    empty) is left out of the HD95 statistics only, so an empty prediction shows as a Dice of 0
    and not as an HD95. ``dice_std`` is the sample standard deviation (nan below two runs).
    ``species`` joins the distinct species of the group with '+'.
    """
    rows = []
    for (method, dataset), group in per_subject.groupby(["method", "dataset"], sort=False):
        ok = group[group["status"] == "ok"]
        species = "+".join(sorted({str(s) for s in group["species"].dropna()}))
        rows.append(
            {
                "method": method,
                "dataset": dataset,
                "species": species,
                "n": len(group),
                "n_failed": int((group["status"] != "ok").sum()),
                "dice_mean": ok["dice"].mean(),
                "dice_median": ok["dice"].median(),
                "dice_std": ok["dice"].std(ddof=1),
                "hd95_mean": ok["hd95_mm"].mean(),
                "hd95_median": ok["hd95_mm"].median(),
                "seconds_mean": ok["seconds"].mean(),
                "peak_rss_mb_max": ok["peak_rss_mb"].max(),
            }
        )
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return table.sort_values(["dataset", "method"], kind="stable", ignore_index=True)


def read_table(path: str | os.PathLike, what: str, columns: Iterable[str], **read_csv) -> pd.DataFrame:
    """Read a CSV/TSV file that must have ``columns``; InputError naming the file otherwise."""
    try:
        frame = pd.read_csv(path, **read_csv)
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable {what} ({exc})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: {what} lacks column(s) {', '.join(missing)}")
    return frame
