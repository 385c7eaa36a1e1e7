"""Print the model card's tables (markdown) from the CSV files the workflow wrote: no number typed by hand.

    .venv/bin/python scripts/model_card_tables.py [--results results]

Reads (each optional; a missing file is said so):
  results/release/scores.csv          `snakemake release`: the release model on every prepared scan
  results/release/learning_curve.csv  the same for every snapshot of the release run
  results/ablation/scores.csv         `snakemake ablation`: one model per generator-extension arm
  results/tables/summary.csv          `snakemake --cores all`: every method of the default run
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from pumba.model.validate import dice_by_dataset

DATASET_ORDER = (
    "robex-atlas",
    "itk-kmeans",
    "colin27",
    "tcga-glioma",
    "allineate-t1-neck",
    "allineate-flair-neck",
    "yerkes19-macaque",
    "sherm-mouse",
)


def markdown(frame: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    """A plain markdown table (no extra dependency)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):  # per-column types (iterrows would make integer steps floats)
        cells = [floatfmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ordered(datasets) -> list[str]:
    known = [d for d in DATASET_ORDER if d in set(datasets)]
    return known + sorted(set(datasets) - set(known))


def release_table(scores: pd.DataFrame) -> pd.DataFrame:
    per = scores.groupby("dataset")[["dice", "hd95_mm", "fp_ml", "fn_ml"]].mean()
    return per.loc[ordered(per.index)].reset_index()


def wide(scores: pd.DataFrame, key: str) -> pd.DataFrame:
    """Mean Dice per (key, dataset), datasets as columns in the card's order, plus the mean over datasets."""
    table = dice_by_dataset(scores, [key])
    table = table[[key, *ordered([c for c in table.columns if c not in (key, "mean")]), "mean"]]
    if key == "step":
        table["step"] = table["step"].astype(int)
    return table


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    cell = summary.apply(
        lambda r: "failed" if r["n_failed"] >= r["n"] else f"{r['dice_mean']:.3f} / {r['hd95_mean']:.1f}",
        axis=1,
    )
    table = summary.assign(cell=cell).pivot(index="dataset", columns="method", values="cell")
    return table.loc[ordered(table.index)].reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="the workflow's results directory")
    args = parser.parse_args()
    root = Path(args.results)
    sections = {
        "release model (Dice, HD95 mm, false-positive / false-negative ml)": (
            root / "release" / "scores.csv",
            lambda f: release_table(f),
        ),
        "learning curve (Dice by step)": (
            root / "release" / "learning_curve.csv",
            lambda f: wide(f, "step"),
        ),
        "ablation (Dice by arm)": (
            root / "ablation" / "scores.csv",
            lambda f: wide(f.assign(arm=f["model"].map(lambda p: Path(p).parent.name)), "arm"),
        ),
        "default run (Dice / HD95 mm)": (
            root / "tables" / "summary.csv",
            summary_table,
        ),
    }
    for title, (path, make) in sections.items():
        print(f"### {title}\nfrom `{path}`\n")
        if not path.is_file():
            print("(not there)\n")
            continue
        print(markdown(make(pd.read_csv(path))) + "\n")


if __name__ == "__main__":
    main()
