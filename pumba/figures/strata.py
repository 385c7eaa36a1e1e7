"""Figure 3b: every method against ours per stratum (species, contrast, pathology).

A heat map, one row per method and one column per stratum value (grouped: species, then contrast, then
pathology); a cell is the median over the stratum's subjects of (method's Dice - ours) on the subjects where
both ran, blue where the method is better, red where worse, with the number of subjects and the method's
failures in that stratum written in it. A failed run counts as Dice 0 here (a failure is the worst outcome
for a user), and the cell says how many there were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pumba.figures.palette import method_order
from pumba.figures.plots import figure_style, save_figure
from pumba.io import InputError

STRATA = (("species", "species"), ("modality", "contrast"), ("pathology", "pathology"))


def stratum_differences(per_subject: pd.DataFrame, strata: pd.DataFrame, ours: str) -> pd.DataFrame:
    """Long table: stratum, value, method, n (paired subjects), n_failed, median_diff (Dice, method - ours).

    ``strata`` maps (dataset, subject) to species, modality and pathology (the manifests' columns).
    """
    table = per_subject.merge(
        strata[["dataset", "subject", "modality", "pathology"]], on=["dataset", "subject"], how="left"
    )
    dice = pd.to_numeric(table["dice"], errors="coerce")
    table = table.assign(_dice=np.where(table["status"] == "ok", dice, 0.0))
    mine = table[table["method"] == ours].set_index(["dataset", "subject"])["_dice"]
    if mine.empty:
        raise InputError(f"strata figure: our method {ours!r} has no rows")
    rows = []
    for column, name in STRATA:
        for value, group in table.groupby(table[column].fillna("unknown").astype(str), sort=True):
            for method, runs in group.groupby("method", sort=False):
                if method == ours:
                    continue
                runs = runs.set_index(["dataset", "subject"])
                common = runs.index.intersection(mine.index)
                diff = runs.loc[common, "_dice"] - mine.loc[common]
                rows.append(
                    {
                        "stratum": name,
                        "value": value,
                        "method": method,
                        "n": len(common),
                        "n_failed": int((runs["status"] != "ok").sum()),
                        "median_diff": float(diff.median()) if len(common) else math.nan,
                    }
                )
    return pd.DataFrame(rows)


def strata_figure(diffs: pd.DataFrame, ours: str, methods: Sequence[str] | None = None) -> Figure:
    """Build the heat map of :func:`stratum_differences`' table."""
    if diffs.empty:
        raise InputError("strata figure: nothing to compare (only our method ran?)")
    order = [m for m in method_order(diffs["method"], methods) if m != ours]
    columns = list(dict.fromkeys(zip(diffs["stratum"], diffs["value"], strict=True)))
    grid = np.full((len(order), len(columns)), np.nan)
    notes = [["" for _ in columns] for _ in order]
    for r in diffs.itertuples():
        i, j = order.index(r.method), columns.index((r.stratum, r.value))
        grid[i, j] = r.median_diff
        notes[i][j] = f"{r.median_diff:+.2f}\nn={r.n}" + (f", {r.n_failed}F" if r.n_failed else "")
    limit = max(0.05, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.05)
    fig = Figure(figsize=(1.0 + 0.95 * len(columns), 1.3 + 0.48 * len(order)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for i in range(len(order)):
        for j in range(len(columns)):
            value = grid[i, j]
            dark = math.isfinite(value) and abs(value) > 0.6 * limit
            ax.text(
                j, i, notes[i][j], ha="center", va="center", fontsize=7, color="white" if dark else "black"
            )
    ax.set_yticks(range(len(order)), order)
    ax.set_xticks(range(len(columns)), [v for _, v in columns], rotation=30, ha="right")
    for k, (_, name) in enumerate(STRATA):
        span = [j for j, (s, _) in enumerate(columns) if s == name]
        if span:
            ax.text(np.mean(span), -0.9, name, ha="center", va="bottom", fontsize=9, fontweight="bold")
            if k:
                ax.axvline(span[0] - 0.5, color="black", linewidth=1.5)
    ax.set_ylim(len(order) - 0.5, -1.4)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_label(f"median Dice difference, method - {ours}")
    ax.set_title(
        f"Every method against {ours} per stratum (blue: better than {ours}; a failed run counts as Dice 0; "
        "F: failures)",
        fontsize=10,
    )
    return fig


def plot_strata(
    per_subject: pd.DataFrame, strata: pd.DataFrame, ours: str, out: str | Path, methods: Sequence[str] | None
) -> pd.DataFrame:
    """Write the strata figure to ``out``; returns the differences it drew."""
    diffs = stratum_differences(per_subject, strata, ours)
    with figure_style(None):
        save_figure(strata_figure(diffs, ours, methods), out)
    return diffs
