"""The dataset manifest: the data stage's list of prepared scans, the table later stages find them in.

``<out_dir>/<dataset>/manifest.tsv`` (written by :func:`pumba.data.prepare.prepare_dataset`) is tab-separated,
a header line of :data:`MANIFEST_COLUMNS` in that order, then one row per subject: the dataset id, the subject
id, the paths of the prepared ``image`` and of its reference brain ``mask`` (on the image's grid), and the
dataset's species, modality and pathology. A dataset that could not be had has the header only. The metrics
(:func:`pumba.metrics.tables.read_manifests`) and ``pumba validate`` read it; each requires these columns.

Kept light (no numpy, pandas or nibabel), so that importing the columns costs nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pumba.data.registry import Dataset

MANIFEST_NAME = "manifest.tsv"
MANIFEST_COLUMNS = ("dataset", "subject", "image", "mask", "species", "modality", "pathology")
IMAGE_NAME = "image.nii.gz"
MASK_NAME = "mask.nii.gz"
"""A subject's prepared files, ``<dataset>/<subject>/image.nii.gz`` and ``mask.nii.gz``."""


def manifest_row(dataset: Dataset, subject: str, subject_dir: Path) -> dict[str, str]:
    """The manifest row of ``subject`` of ``dataset``, prepared into ``subject_dir`` (paths as given)."""
    return {
        "dataset": dataset.id,
        "subject": subject,
        "image": str(subject_dir / IMAGE_NAME),
        "mask": str(subject_dir / MASK_NAME),
        "species": dataset.species,
        "modality": dataset.modality,
        "pathology": dataset.pathology,
    }


def manifest_text(rows: Iterable[Mapping[str, str]]) -> str:
    """The manifest.tsv text of ``rows`` (mappings with exactly the keys :data:`MANIFEST_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
