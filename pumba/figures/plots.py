"""Statistical figures: per-subject metrics by dataset and method, and training curves.

Figures are built on :class:`matplotlib.figure.Figure` objects (no pyplot state; PNG goes through
the Agg renderer) and written atomically with :func:`save_figure`.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from pumba.io import InputError, atomic_output

DPI = 120
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 12,
}
TABLE_COLUMNS = ("method", "dataset", "species", "status")


@dataclass(frozen=True)
class MetricSpec:
    """How one per-subject column is drawn.

    Attributes:
        label: axis label with its unit.
        worse: where a failed run is drawn: 'low' (below the data: higher is better, or signed)
            or 'high'.
        upper: a hard upper bound of the metric (1 for Dice), or None.
    """

    label: str
    worse: str
    upper: float | None = None


METRICS = {
    "dice": MetricSpec("Dice coefficient", "low", 1.0),
    "hd95_mm": MetricSpec("95th-percentile Hausdorff distance (mm)", "high"),
    "sensitivity": MetricSpec("Sensitivity", "low", 1.0),
    "specificity": MetricSpec("Specificity", "low", 1.0),
    "volume_diff_pct": MetricSpec("Volume difference (% of reference)", "low"),
    "seconds": MetricSpec("Run time (s)", "high"),
    "peak_rss_mb": MetricSpec("Peak memory (MB)", "high"),
}
ALIASES = {"hd95": "hd95_mm", "time": "seconds", "memory": "peak_rss_mb"}


@contextlib.contextmanager
def figure_style(seaborn_style: str | None = "whitegrid") -> Iterator[None]:
    """Apply the figures' font sizes (and a seaborn axes style) for a block; rcParams restored."""
    with contextlib.ExitStack() as stack:
        if seaborn_style:
            stack.enter_context(sns.axes_style(seaborn_style))
        stack.enter_context(mpl.rc_context(RC))
        yield


def save_figure(fig: Figure, out: str | Path, dpi: int = DPI) -> None:
    """Write ``fig`` to ``out`` atomically (temp file beside it, renamed on success).

    The format follows the suffix: .png (``dpi`` dots per inch), .pdf or .svg.

    Raises:
        InputError: unknown suffix, or the output directory is missing or not writable. Nothing
            is left behind when writing fails.
    """
    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InputError(f"{out}: unknown figure format; use .png, .pdf or .svg")
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, facecolor=fig.get_facecolor(), bbox_inches="tight")


def metric_spec(metric: str) -> tuple[str, MetricSpec]:
    """The per-subject column name and drawing spec of ``metric`` (aliases: hd95, time, memory)."""
    column = ALIASES.get(metric, metric)
    if column not in METRICS:
        known = ", ".join(METRICS)
        raise InputError(f"metric {metric!r}: unknown; choose one of {known}")
    return column, METRICS[column]


def check_per_subject(table: pd.DataFrame, column: str, source: str = "per-subject table") -> None:
    """Raise InputError (message starting with ``source``) if ``table`` cannot show ``column``."""
    missing = [c for c in (*TABLE_COLUMNS, column) if c not in table.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)}")
    if table.empty:
        raise InputError(f"{source}: no rows")


def metric_figure(
    per_subject: pd.DataFrame, metric: str, *, seed: int = 0, methods: list[str] | None = None
) -> Figure:
    """Build the box/strip figure of ``metric`` by dataset (x, in table order) and method (hue).

    Each subject is a point over its (method, dataset) box, jittered sideways with ``seed``. Rows
    whose status is 'failed' are drawn as 'x' in a band beyond the worst end of the axis (below the
    data for Dice, above it for HD95) labelled 'failed'; rows with status 'ok' but no value (e.g.
    HD95 when one mask is empty) are drawn as hollow triangles in the same band. Both are counted
    in the legend, per method and in total. ``methods`` (the config's order) fixes the methods' order and
    colours (:mod:`pumba.figures.palette`), the same in every figure.
    """
    from pumba.figures.palette import method_order, method_palette

    column, spec = metric_spec(metric)
    check_per_subject(per_subject, column)
    table = per_subject.copy()
    table["method"] = table["method"].astype(str)
    table["dataset"] = table["dataset"].astype(str)
    table["_value"] = pd.to_numeric(table[column], errors="coerce")
    failed = table["status"].astype(str).str.lower().eq("failed")
    valid = table[~failed & table["_value"].notna()]
    no_value = table[~failed & table["_value"].isna()]
    failures = table[failed]

    datasets = list(dict.fromkeys(table["dataset"]))
    configured = methods
    methods = method_order(table["method"], configured)
    palette = method_palette(methods, configured)
    n_hue = len(methods)
    width = 0.8
    # seaborn dodges hue levels side by side within `width`; points and markers use the same offsets
    offset = {m: -width / 2 + (i + 0.5) * width / n_hue for i, m in enumerate(methods)}

    lo, hi, band = _value_range(valid["_value"].to_numpy(dtype=float), spec)
    fig_w = max(7.0, 2.5 + len(datasets) * (0.45 + 0.27 * n_hue))
    fig = Figure(figsize=(fig_w, 4.6), layout="constrained")
    ax = fig.add_subplot()
    x_of = {d: i for i, d in enumerate(datasets)}
    slot = width / n_hue
    if not valid.empty:
        with warnings.catch_warnings():
            # seaborn 0.13 passes matplotlib 3.11 a deprecated argument (vert): not ours to fix
            warnings.simplefilter("ignore", mpl.MatplotlibDeprecationWarning)
            sns.boxplot(
                data=valid,
                x="dataset",
                y="_value",
                hue="method",
                order=datasets,
                hue_order=methods,
                palette=palette,
                dodge=True,
                ax=ax,
                width=width,
                fill=False,
                showfliers=False,
                linewidth=1.4,
                whis=1.5,
                legend=False,
            )
        # points drawn here, not by sns.stripplot: its jitter draws from numpy's global RNG
        rng = np.random.default_rng(seed)
        x = valid["dataset"].map(x_of) + valid["method"].map(offset)
        alone = valid.groupby(["dataset", "method"])["_value"].transform("size").to_numpy() == 1
        x = x + np.where(alone, 0.0, rng.uniform(-0.25, 0.25, len(valid)) * slot)
        ax.scatter(
            x,
            valid["_value"],
            s=32,
            c=[palette[m] for m in valid["method"]],
            edgecolors="black",
            linewidths=0.6,
            alpha=0.9,
            zorder=3,
        )
    for rows, marker, kwargs in (
        (failures, "x", {"s": 45, "linewidths": 2.0}),
        (no_value, "v" if spec.worse == "low" else "^", {"s": 40, "linewidths": 1.4}),
    ):
        for (d, m), group in rows.groupby(["dataset", "method"], sort=False):
            k = len(group)
            centre = x_of[d] + offset[m]
            # spread evenly within the method's slot (no random jitter: reproducible), count if > 1
            x = centre + (np.linspace(-0.3, 0.3, k) * slot if k > 1 else np.zeros(1))
            y = np.full(k, band)
            if marker == "x":
                ax.scatter(x, y, marker=marker, color=palette[m], zorder=4, **kwargs)
            else:
                ax.scatter(
                    x,
                    y,
                    marker=marker,
                    facecolors="none",
                    edgecolors=[palette[m]],
                    zorder=4,
                    **kwargs,
                )
            if k > 1:
                below = spec.worse == "low"
                ax.annotate(
                    f"{k}",
                    (centre, band),
                    xytext=(0, -8 if below else 8),
                    textcoords="offset points",
                    ha="center",
                    va="top" if below else "bottom",
                    fontsize=8,
                    color="0.2",
                )

    ax.set_xlim(-0.5, len(datasets) - 0.5)
    ax.set_ylim(lo, hi)
    span = hi - lo
    sep = band + (0.06 if spec.worse == "low" else -0.06) * span
    ax.axhline(sep, color="0.5", linewidth=0.8, linestyle="--", zorder=1)
    ax.axhspan(
        lo if spec.worse == "low" else sep,
        sep if spec.worse == "low" else hi,
        color="0.93",
        zorder=0,
    )
    # keep value ticks clear of the 'failed' label
    gap = 0.04 * span
    data_lo, data_hi = (sep + gap, hi) if spec.worse == "low" else (lo, sep - gap)
    ticks = [t for t in MaxNLocator(nbins=6).tick_values(data_lo, data_hi) if data_lo <= t <= data_hi]
    ax.set_yticks([*ticks, band], [*(f"{t:g}" for t in ticks), "failed"])

    species = table.groupby("dataset", sort=False)["species"].agg(
        lambda s: "/".join(str(v) for v in dict.fromkeys(s.dropna()))
    )
    subjects = table.groupby("dataset", sort=False)["subject"].nunique() if "subject" in table else None
    labels = []
    for d in datasets:
        parts = [d]
        if species.get(d):
            parts.append(f"({species[d]})")
        if subjects is not None:
            parts.append(f"n = {subjects[d]}")
        labels.append("\n".join(parts))
    ax.set_xticks(range(len(datasets)), labels)
    ax.set_xlabel("Dataset (species, subjects)")
    ax.set_ylabel(spec.label)
    ax.set_title(
        f"{spec.label.split(' (')[0]} by dataset and method\n"
        "(boxes: quartiles and 1.5 IQR whiskers; points: subjects)",
        fontsize=RC["axes.titlesize"],
    )
    ax.grid(axis="x", visible=False)

    handles = []
    for m in methods:
        n_fail = int((failures["method"] == m).sum())
        n_none = int((no_value["method"] == m).sum())
        notes = [f"{n_fail} failed"] * bool(n_fail) + [f"{n_none} no value"] * bool(n_none)
        label = m + (f" ({', '.join(notes)})" if notes else "")
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="-",
                color=palette[m],
                markeredgecolor="black",
                markeredgewidth=0.6,
                markersize=6,
                label=label,
            )
        )
    handles.append(
        Line2D(
            [],
            [],
            marker="x",
            linestyle="none",
            color="0.2",
            markersize=7,
            markeredgewidth=2,
            label=f"run failed, no mask (n = {len(failures)})",
        )
    )
    if not no_value.empty:
        handles.append(
            Line2D(
                [],
                [],
                marker="v" if spec.worse == "low" else "^",
                linestyle="none",
                markerfacecolor="none",
                markeredgecolor="0.2",
                markersize=7,
                label=f"ran, metric undefined (n = {len(no_value)})",
            )
        )
    ax.legend(
        handles=handles,
        title="Method",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    return fig


def _value_range(values: np.ndarray, spec: MetricSpec) -> tuple[float, float, float]:
    """Axis limits (lo, hi) and the y of the failure band, beyond the data at the worse end."""
    if values.size:
        dmin, dmax = float(values.min()), float(values.max())
    else:
        dmin, dmax = 0.0, 1.0 if spec.upper is None else spec.upper
    if spec.worse == "high":
        dmin = min(dmin, 0.0)  # costs (mm, s, MB) are read from zero
    if spec.upper is not None:
        dmax = max(dmax, min(spec.upper, dmax + 0.02))
    span = max(dmax - dmin, 0.05 * abs(dmax), 1e-3)
    if dmax - dmin < span:  # one value, or all equal: centre a minimal range on it
        middle = (dmin + dmax) / 2
        dmin, dmax = middle - span / 2, middle + span / 2
        if spec.upper is not None and dmax > spec.upper:
            dmin, dmax = dmin - (dmax - spec.upper), spec.upper
    pad = 0.05 * span
    if spec.worse == "low":
        hi = dmax + pad
        band = dmin - pad - 0.14 * span
        lo = band - 0.08 * span
    else:
        lo = dmin - pad
        band = dmax + pad + 0.14 * span
        hi = band + 0.08 * span
    return lo, hi, band


def plot_metric(
    per_subject: pd.DataFrame, metric: str, out: Path, *, seed: int = 0, methods: list[str] | None = None
) -> None:
    """Write the box/strip figure of ``metric`` ('dice', 'hd95_mm', ...) to ``out``.

    ``per_subject`` has the metrics stage's columns (method, dataset, subject, species, status,
    error, dice, hd95_mm, ...). Failed runs are drawn and counted, never dropped (see
    :func:`metric_figure`).
    """
    with figure_style():
        save_figure(metric_figure(per_subject, metric, seed=seed, methods=methods), out)


def read_training_log(log_csv: str | Path) -> pd.DataFrame:
    """Read a training CSV log (columns step, loss and dice_* at least; seconds, lr optional).

    Non-numeric cells become NaN; rows without a step are dropped; a step logged twice (a resumed
    run) keeps its last row; rows are sorted by step.

    Raises:
        InputError: unreadable file, missing columns or no rows.
    """
    log_csv = Path(log_csv)
    if not log_csv.is_file():
        raise InputError(f"{log_csv}: no such file")
    try:
        log = pd.read_csv(log_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{log_csv}: not a readable CSV ({first})") from None
    dice_cols = [c for c in log.columns if str(c).startswith("dice")]
    missing = [c for c in ("step", "loss") if c not in log.columns] + ["dice_*"] * (not dice_cols)
    if missing:
        raise InputError(f"{log_csv}: missing column(s) {', '.join(missing)}")
    log = log.apply(pd.to_numeric, errors="coerce")
    log = log[log["step"].notna()].drop_duplicates("step", keep="last").sort_values("step")
    if log.empty:
        raise InputError(f"{log_csv}: no rows with a step")
    return log.reset_index(drop=True)


def training_figure(log: pd.DataFrame) -> Figure:
    """Build training curves: loss and synthetic Dice per class vs step; learning rate if it varies.

    Raw values are drawn faintly; the solid line is a centred moving average over about 2 % of the
    steps.
    The title gives the last step and the wall time (the ``seconds`` column: elapsed seconds).
    """
    dice_cols = [c for c in log.columns if str(c).startswith("dice")]
    show_lr = "lr" in log.columns and log["lr"].dropna().nunique() > 1
    n_panels = 3 if show_lr else 2
    fig = Figure(figsize=(4.4 * n_panels, 3.8), layout="constrained")
    axes = fig.subplots(1, n_panels)
    step = log["step"].to_numpy(dtype=float)
    window = max(1, round(len(log) / 50))
    colors = sns.color_palette("colorblind", len(dice_cols) + 1)

    def curve(ax, column: str, color, label: str) -> None:
        values = log[column]
        if window > 1:
            ax.plot(step, values, color=color, alpha=0.25, linewidth=0.8)
            values = values.rolling(window, center=True, min_periods=1).mean()
        ax.plot(step, values, color=color, linewidth=1.8, label=label)

    curve(axes[0], "loss", colors[0], "loss")
    axes[0].set_ylabel("Loss: 1 - mean(Dice interior, Dice boundary)")
    axes[0].set_title("Training loss")
    for col, color in zip(dice_cols, colors[1:], strict=True):
        curve(axes[1], col, color, col.removeprefix("dice").strip("_") or col)
    axes[1].set_ylabel("Soft Dice on the training batch")
    axes[1].set_title("Synthetic Dice per class")
    lowest = float(np.nanmin(log[dice_cols].to_numpy(dtype=float)))
    axes[1].set_ylim(max(0.0, min(0.9, lowest) - 0.05) if math.isfinite(lowest) else 0.0, 1.0)
    axes[1].legend(title="class", loc="lower right")
    if show_lr:
        axes[2].plot(step, log["lr"], color="0.3", linewidth=1.8)
        axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        axes[2].set_ylim(bottom=0)
        axes[2].set_ylabel("Learning rate")
        axes[2].set_title("Learning-rate schedule")
    for ax in axes:
        ax.set_xlabel("Step (batches)")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    title = f"Training: {int(step[-1]):,} steps"
    if "seconds" in log.columns and log["seconds"].notna().any():
        title += f", {_duration(float(log['seconds'].max()))} wall time"
    if window > 1:
        title += f" (lines: moving average over {window} logged steps)"
    fig.suptitle(title)
    return fig


def _duration(seconds: float) -> str:
    """'42 s', '12.5 min' or '3.2 h'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def plot_training(log_csv: Path, out: Path) -> None:
    """Write the training curves of the CSV log ``log_csv`` (see read_training_log) to ``out``."""
    with figure_style():
        save_figure(training_figure(read_training_log(log_csv)), out)
