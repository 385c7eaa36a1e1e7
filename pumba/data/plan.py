"""Which datasets a run can have, and their subjects, known before anything is fetched.

The workflow calls :func:`plan_datasets` when it is parsed, so that ``snakemake -n`` lists every prepare,
strip, evaluate and figure job: a dataset's subjects come from the registry, and a dataset whose files
cannot be had here (package not installed, reference mask missing, not in the cache or the mirror with
downloads off) is known then, with its reason, and gets no strip jobs. Nothing is read over the network
and no checksum is computed: a file that is found but turns out broken fails later, in ``prepare``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pumba.data.collect import FetchOptions, why_unavailable
from pumba.data.fetch import FetchError, locate, reference_mask_path
from pumba.data.registry import Dataset, ReferenceMaskFile, Registry
from pumba.io import InputError


def subject_slots(n: int) -> tuple[str, ...]:
    """The subject ids of a collection's first ``n`` scans: ``s0001``, ``s0002``, ...

    A collection's scans are known only once fetched, so the workflow names them by position (in
    the sorted order of the publisher's ids, kept in the manifest's ``source_id``).
    """
    return tuple(f"s{i:04d}" for i in range(1, n + 1))


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
    manual_path: Path | None = None,
) -> str | None:
    """Why ``dataset`` cannot be had here (one line), or None when every file can be."""
    if dataset.collection is not None:
        options = FetchOptions(Path(cache_dir), allow_download, manual_path)
        return why_unavailable(dataset, options)
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
    manual_data: Mapping[str, str | os.PathLike] | None = None,
    subjects: Mapping[str, int] | None = None,
) -> dict[str, DatasetPlan]:
    """A :class:`DatasetPlan` per requested dataset, in the order asked.

    ``manual_data`` maps a dataset id to the user's copy of its manual part; ``subjects`` maps a
    dataset id to the number of its first subjects to run (a quick look; all by default). A
    collection's subjects are :func:`subject_slots` of its count.

    Raises:
        InputError: a dataset id that is not in the registry (naming the registry and the known ids).
    """
    manual_data = manual_data or {}
    subjects = subjects or {}
    unknown = sorted(set(manual_data) - set(registry.ids())) + sorted(set(subjects) - set(registry.ids()))
    if unknown:
        raise InputError(f"{registry.path}: no dataset '{unknown[0]}' (named in manual_data or subjects)")
    plans = {}
    for dataset_id in dataset_ids:
        dataset = registry.get(dataset_id)
        manual = manual_data.get(dataset_id)
        manual_path = Path(manual) if manual else None
        reason = why_missing(dataset, cache_dir, mirror, reference_masks, allow_download, manual_path)
        n = min(subjects.get(dataset_id, dataset.n_subjects), dataset.n_subjects)
        if reason:
            names: tuple[str, ...] = ()
        elif dataset.collection is not None:
            names = subject_slots(n)
        else:
            names = tuple(dataset.subjects)[:n]
        plans[dataset_id] = DatasetPlan(dataset_id, names, reason)
    return plans
