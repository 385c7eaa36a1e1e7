"""Writing a table three ways: CSV (every column, full precision), Markdown and LaTeX (the paper's cells).

A *display table* is a list of header cells and rows of string cells; a cell wrapped as ``**x**`` is the
best of its column and is bold in both Markdown and LaTeX (``\\textbf{x}``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pumba.io import InputError, atomic_outputs

SUFFIXES = (".csv", ".md", ".tex")

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    """A GitHub Markdown table (pipes in cells escaped), after an optional caption paragraph."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    text = [line(header), "|" + "|".join("---" for _ in header) + "|", *(line(r) for r in rows)]
    return (f"{caption}\n\n" if caption else "") + "\n".join(text) + "\n"


def _latex_cell(cell: str) -> str:
    cell = str(cell)
    if cell.startswith("**") and cell.endswith("**") and len(cell) > 4:
        return r"\textbf{" + latex_escape(cell[2:-2]) + "}"
    return latex_escape(cell)


def latex(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "", label: str = "") -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``), first column left-aligned."""
    spec = "l" + "r" * (len(header) - 1)
    body = [" & ".join(_latex_cell(c) for c in r) + r" \\" for r in rows]
    parts = [
        r"\begin{table}[t]",
        r"\centering",
        *([r"\caption{" + latex_escape(caption) + "}"] if caption else []),
        *([r"\label{" + label + "}"] if label else []),
        r"\begin{tabular}{" + spec + "}",
        r"\toprule",
        " & ".join(_latex_cell(h) for h in header) + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(parts) + "\n"


def write_table(
    prefix: str | os.PathLike,
    data: pd.DataFrame,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    caption: str = "",
    label: str = "",
) -> list[Path]:
    """Write ``prefix``.csv (``data``), ``prefix``.md and ``prefix``.tex (the display table), atomically.

    Returns the three paths. A row whose length differs from the header's is an InputError (a bug upstream).
    """
    for r in rows:
        if len(r) != len(header):
            raise InputError(f"table {prefix}: a row has {len(r)} cells, the header {len(header)}")
    prefix = Path(prefix)
    paths = [prefix.with_name(prefix.name + s) for s in SUFFIXES]
    texts = [
        data.to_csv(index=False),
        markdown(header, rows, caption),
        latex(header, rows, caption, label or f"tab:{prefix.name}"),
    ]
    with atomic_outputs(paths) as tmps:
        for tmp, text in zip(tmps, texts, strict=True):
            Path(tmp).write_text(text)
    return paths
