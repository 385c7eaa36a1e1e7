"""The dataset manifest: the data stage's list of prepared scans, the table later stages find them in.

``<out_dir>/<dataset>/manifest.tsv`` (written by :func:`pumba.data.prepare.prepare_dataset`) is tab-separated,
a header line of :data:`MANIFEST_COLUMNS` in that order, then one row per subject: the dataset id, the subject
id, the paths of the prepared ``image`` and of its reference brain ``mask`` (on the image's grid), the
scan's species, modality and pathology, and the publisher's id of the scan (``source_id``: the subject id of
a listed dataset; for a collection, whose subjects are numbered slots s0001, s0002, ..., the scan's id in
the publisher's layout). A dataset that could not be had has the header only. The metrics
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
MANIFEST_COLUMNS = ("dataset", "subject", "image", "mask", "species", "modality", "pathology", "source_id")
IMAGE_NAME = "image.nii.gz"
MASK_NAME = "mask.nii.gz"
"""A subject's prepared files, ``<dataset>/<subject>/image.nii.gz`` and ``mask.nii.gz``."""


def manifest_row(
    dataset: Dataset,
    subject: str,
    subject_dir: Path,
    source_id: str | None = None,
    modality: str | None = None,
    pathology: str | None = None,
) -> dict[str, str]:
    """The manifest row of ``subject`` of ``dataset``, prepared into ``subject_dir`` (paths as given).

    ``source_id`` is the publisher's id of the scan (a collection's subjects are numbered slots);
    ``modality`` and ``pathology`` override the dataset's where a collection mixes them.
    """
    return {
        "dataset": dataset.id,
        "subject": subject,
        "image": str(subject_dir / IMAGE_NAME),
        "mask": str(subject_dir / MASK_NAME),
        "species": dataset.species,
        "modality": modality or dataset.modality,
        "pathology": pathology or dataset.pathology,
        "source_id": source_id or subject,
    }


def manifest_text(rows: Iterable[Mapping[str, str]]) -> str:
    """The manifest.tsv text of ``rows`` (mappings with exactly the keys :data:`MANIFEST_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
