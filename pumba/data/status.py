"""The table of requested datasets: which could be had, which were not run, and why."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pumba.data.registry import Registry
from pumba.io import InputError

COLUMNS = (
    "dataset",
    "species",
    "modality",
    "pathology",
    "source",
    "available",
    "n_subjects",
    "mask_provenance",
    "reason",
    "licence",
    "notes",
)


def dataset_table(registry: Registry, status_files: list[str | Path]) -> pd.DataFrame:
    """One row per status.json (written by ``prepare_dataset``) joined with the registry's description."""
    rows = []
    for path in status_files:
        try:
            status = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: unreadable dataset status ({exc})") from None
        ds = registry.get(status["dataset"])
        rows.append(
            {
                "dataset": ds.id,
                "species": ds.species,
                "modality": ds.modality,
                "pathology": ds.pathology,
                "source": ds.source,
                "available": bool(status["available"]),
                "n_subjects": int(status["n_subjects"]),
                "mask_provenance": ds.mask_provenance,
                "reason": status.get("reason") or "",
                "licence": ds.licence,
                "notes": "; ".join(ds.notes),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))
