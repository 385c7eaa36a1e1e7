"""Accuracy against cost: one point per method, mean Dice over its scans against its mean seconds per scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pumba.figures.plots import figure_style, save_figure
from pumba.metrics.methods_table import METHOD_COLUMNS
from pumba.metrics.tables import read_table

# marker area (points^2) per GB of peak memory, and the smallest marker
AREA_PER_GB = 120.0
MIN_AREA = 20.0


def read_method_table(path: str | Path) -> pd.DataFrame:
    """The methods table (``pumba method-table``); InputError naming the file if it is not one."""
    return read_table(path, "methods table", METHOD_COLUMNS)


def cost_figure(table: pd.DataFrame, methods: list[str] | None = None) -> Figure:
    """Mean Dice (y) against mean wall seconds per scan (x, log scale); marker area = peak memory.

    Methods that were skipped or never succeeded are listed under the axes with the reason. Each method has
    its colour of :mod:`pumba.figures.palette` (``methods``: the config's order).
    """
    from pumba.figures.palette import method_palette

    scored = table[table["ran"].astype(bool) & table["dice_mean"].notna() & table["seconds_mean"].notna()]
    left_out = table.drop(scored.index)
    with figure_style():
        fig = Figure(figsize=(7.0, 4.8))
        ax = fig.subplots()
        area = np.maximum(scored["peak_rss_mb_max"].fillna(0).to_numpy() / 1024 * AREA_PER_GB, MIN_AREA)
        palette = method_palette(list(table["method"]), methods or list(table["method"]))
        colors = [palette[m] for m in scored["method"]]
        ax.scatter(
            scored["seconds_mean"], scored["dice_mean"], s=area, c=colors, alpha=0.7, edgecolor="black"
        )
        for row in scored.itertuples():
            failed = f" ({row.n_failed} failed)" if row.n_failed else ""
            ax.annotate(
                f"{row.method}{failed}",
                (row.seconds_mean, row.dice_mean),
                xytext=(5, 4),
                textcoords="offset points",
                fontsize=8,
            )
        ax.set_xscale("log")
        ax.set_xlabel("wall seconds per scan (mean over successful runs, log scale)")
        ax.set_ylabel("Dice (mean over successful runs)")
        ax.set_title("Accuracy and cost per method (marker area: peak memory)")
        notes = [f"{row.method}: {row.reason or 'no successful run'}" for row in left_out.itertuples()]
        if notes:
            fig.text(0.01, -0.02, "Not shown: " + "; ".join(notes), fontsize=7, va="top", wrap=True)
    return fig


def plot_cost(table_csv: Path, out: Path, methods: list[str] | None = None) -> None:
    """Draw :func:`cost_figure` of a methods table and write it atomically."""
    save_figure(cost_figure(read_method_table(table_csv), methods), out)
