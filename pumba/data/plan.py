"""Which datasets a run can have, and their subjects, known before anything is fetched.

The workflow calls :func:`plan_datasets` when it is parsed, so that ``snakemake -n`` lists every prepare,
strip, evaluate and figure job: a dataset's subjects come from the registry, and a dataset whose files
cannot be had here (package not installed, reference mask missing, not in the cache or the mirror with
downloads off) is known then, with its reason, and gets no strip jobs. Nothing is read over the network
and no checksum is computed: a file that is found but turns out broken fails later, in ``prepare``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from pumba.data.fetch import FetchError, locate, reference_mask_path
from pumba.data.registry import Dataset, ReferenceMaskFile, Registry


@dataclass(frozen=True)
class DatasetPlan:
    """One requested dataset: its subjects (registry order) when it can be had, else why not."""

    id: str
    subjects: tuple[str, ...]
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.reason is None


def why_missing(
    dataset: Dataset,
    cache_dir: str | os.PathLike,
    mirror: str | os.PathLike | None,
    reference_masks: str | os.PathLike | None,
    allow_download: bool,
) -> str | None:
    """Why ``dataset`` cannot be had here (one line), or None when every file can be."""
    for subject in dataset.subjects.values():
        for spec in (subject.image, subject.mask):
            where = locate(spec, cache_dir, mirror, reference_masks)
            if where == "download" and not allow_download:
                return f"{spec.name}: not in the cache or the mirror, and downloads are off"
            if where != "missing":
                continue
            if isinstance(spec, ReferenceMaskFile):
                try:
                    reference_mask_path(spec, reference_masks)
                except FetchError as exc:
                    return str(exc)
            install = f"; {dataset.install}" if dataset.install else ""
            return f"{spec.name}: not installed here{install}"
    return None


def plan_datasets(
    registry: Registry,
    dataset_ids: Sequence[str],
    cache_dir: str | os.PathLike,
    mirror: str | os.PathLike | None,
    reference_masks: str | os.PathLike | None,
    allow_download: bool,
) -> dict[str, DatasetPlan]:
    """A :class:`DatasetPlan` per requested dataset, in the order asked.

    Raises:
        InputError: a dataset id that is not in the registry (naming the registry and the known ids).
    """
    plans = {}
    for dataset_id in dataset_ids:
        dataset = registry.get(dataset_id)
        reason = why_missing(dataset, cache_dir, mirror, reference_masks, allow_download)
        subjects = () if reason else tuple(dataset.subjects)
        plans[dataset_id] = DatasetPlan(dataset_id, subjects, reason)
    return plans
