"""Scoring models on real scans during development: learning curves and ablations.

A model is run on every scan of one or more dataset manifests (``results/data/<dataset>/manifest.tsv``, made
by ``pumba data prepare``) in memory, exactly as ``pumba strip`` would, and scored against the reference
masks. Nothing here feeds back into training: the scores only pick between recipes that are then applied to
every species alike.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from pumba.infer.strip import brain_mask
from pumba.io import InputError, load_volume
from pumba.metrics.distance import hd95
from pumba.metrics.overlap import dice
from pumba.metrics.tables import read_manifests
from pumba.model.checkpoint import check_cascade, load_model

COLUMNS = ("model", "step", "dataset", "subject", "species", "dice", "hd95_mm", "fp_ml", "fn_ml")


def model_step(path: str | os.PathLike) -> int:
    """The training step a model file stands for: its ``meta.steps``, else digits in its name, else -1."""
    _, info = load_model(path)
    steps = (info.get("meta") or {}).get("steps")
    if steps is not None:
        return int(steps)
    match = re.search(r"(\d+)", Path(path).stem)
    return int(match.group(1)) if match else -1


def score_model(
    model_path: str | os.PathLike,
    manifests: Iterable[str | os.PathLike],
    mode: str = "auto",
    postprocessing: str = "tight",
    tta: bool = True,
    fine_path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """One row per scan (:data:`COLUMNS`): Dice, HD95 (mm), false-positive and false-negative volume (ml).

    With ``fine_path`` the model is the cascade of ``model_path`` and that fine stage (combined in memory, as
    ``pumba cascade`` would write it); the rows then name the fine stage's file and step.
    """
    model, info = load_model(model_path)
    if fine_path is not None:
        refine = load_model(fine_path, stage="fine")
        check_cascade(model_path, info, fine_path, refine[1])
        info = {**info, "refine": refine}
        model_path = fine_path
        step = (info["refine"][1].get("meta") or {}).get("steps", -1)
    else:
        step = (info.get("meta") or {}).get("steps", -1)
    rows = []
    for _, item in read_manifests(manifests).iterrows():
        volume = load_volume(item["image"])
        ref = load_volume(item["mask"]).data > 0.5
        pred, _ = brain_mask(volume, model, info, mode, postprocessing, tta=tta)
        ml = volume.voxel_ml
        rows.append(
            {
                "model": str(model_path),
                "step": int(step),
                "dataset": item["dataset"],
                "subject": item["subject"],
                "species": item["species"],
                "dice": dice(pred, ref),
                "hd95_mm": hd95(pred, ref, volume.zooms),
                "fp_ml": float((pred & ~ref).sum()) * ml,
                "fn_ml": float((~pred & ref).sum()) * ml,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def score_models(
    model_paths: Iterable[str | os.PathLike],
    manifests: list[str | os.PathLike],
    mode: str = "auto",
    postprocessing: str = "tight",
    tta: bool = True,
    fine_paths: Sequence[str | os.PathLike] = (),
) -> pd.DataFrame:
    """:func:`score_model` for each model, concatenated; with ``fine_paths``, the cascade of the one model
    with each fine stage in turn (a fine stage's learning curve)."""
    model_paths = list(model_paths)
    if fine_paths:
        if len(model_paths) != 1:
            raise InputError(f"--fine needs exactly one whole-head --model, got {len(model_paths)}")
        tables = [score_model(model_paths[0], manifests, mode, postprocessing, tta, f) for f in fine_paths]
    else:
        tables = [score_model(p, manifests, mode, postprocessing, tta) for p in model_paths]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(COLUMNS))


def dice_by_dataset(scores: pd.DataFrame, by: Sequence[str] = ("model", "step")) -> pd.DataFrame:
    """Mean Dice per group of ``by`` (one row each), one column per dataset plus ``mean``: the mean over each
    dataset's scans first, then over the datasets (every dataset weighs the same)."""
    by = list(by)
    per_dataset = scores.groupby([*by, "dataset"], as_index=False)["dice"].mean()
    table = per_dataset.pivot_table(index=by, columns="dataset", values="dice")
    table["mean"] = table.mean(axis=1)
    return table.reset_index()
