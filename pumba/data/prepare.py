"""Preparing a registry dataset: 3-D images, binary masks on the image grid, a manifest.

Layout written under ``out_dir/<dataset>/``::

    <subject>/image.nii.gz   3-D, the original grid and affine; the original integer dtype when
                             it holds the values exactly, else float32
    <subject>/mask.nii.gz    uint8 {0, 1} on the image's grid and affine: (mask > mask_threshold)
    manifest.tsv             dataset, subject, image, mask, species, modality, pathology
                             (:mod:`pumba.data.manifest`)
    status.json              {"dataset", "available", "reason", "n_subjects"}

A dataset that cannot be had here (package not installed, no copy and no network, a reference mask
not in the reference-masks directory, a checksum mismatch) is not an error: its manifest has only
the header and its status says why. Everything is written into a staging directory beside the
result and renamed into place at the end, so a failed run leaves the previous result (or nothing),
never a mix.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pumba.data.collect import FetchOptions, fetch_collection
from pumba.data.converters import CONVERTERS, SourceScan
from pumba.data.fetch import FetchError, fetch_file
from pumba.data.manifest import IMAGE_NAME, MANIFEST_NAME, MASK_NAME, manifest_row, manifest_text
from pumba.data.plan import subject_slots
from pumba.data.registry import Dataset, Registry
from pumba.grid import check_same_grid
from pumba.io import InputError, Volume, load_volume, save_like, write_text_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetStatus:
    """What ``prepare_dataset`` achieved; serialised as status.json."""

    dataset: str
    available: bool
    reason: str | None
    n_subjects: int

    def to_json(self) -> str:
        """The status.json text (one object, keys in field order)."""
        return json.dumps(asdict(self), indent=2) + "\n"


def _mask_affine_from_image(image: Volume, mask: Volume) -> tuple[Volume, Volume]:
    """The mask is on the image's voxel grid but its header is wrong: give it the image's affine."""
    if mask.data.shape != image.data.shape:
        raise InputError(
            f"{mask.path}: fix mask_affine_from_image needs the image's shape "
            f"{image.data.shape}, mask has {mask.data.shape}"
        )
    return image, Volume(data=mask.data, affine=image.affine.copy(), image=mask.image, path=mask.path)


Fix = Callable[[Volume, Volume], tuple[Volume, Volume]]

# The closed set of repairs a registry may declare (the schema's `fixes` enum lists the same names).
FIXES: dict[str, Fix] = {"mask_affine_from_image": _mask_affine_from_image}


def binarise_mask(mask: Volume, threshold: float) -> np.ndarray:
    """uint8 {0, 1} array, 1 where the mask's value > ``threshold``; InputError if empty or full."""
    binary = (mask.data > threshold).astype(np.uint8)
    n_in = int(binary.sum())
    if n_in == 0:
        raise InputError(f"{mask.path}: mask is empty (no voxel > {threshold})")
    if n_in == binary.size:
        raise InputError(f"{mask.path}: mask covers every voxel (all > {threshold})")
    return binary


def storage_dtype(volume: Volume) -> np.dtype:
    """The file's integer dtype if it holds ``volume.data`` exactly (no scaling), else float32."""
    on_disk = np.dtype(volume.image.get_data_dtype())
    if np.issubdtype(on_disk, np.integer) and np.array_equal(
        volume.data.astype(on_disk).astype(np.float32), volume.data
    ):
        return on_disk
    return np.dtype(np.float32)


def prepare_subject(
    image_path: Path, mask_path: Path, mask_threshold: float, fixes: tuple[str, ...], out_dir: Path
) -> None:
    """Write ``out_dir``/image.nii.gz and mask.nii.gz for one subject (``out_dir`` must exist).

    Fixes run in the order declared, then the grids are checked and the mask is binarised
    (``mask > mask_threshold``).
    """
    image = load_volume(image_path)
    mask = load_volume(mask_path)
    if not np.all(np.isfinite(image.data)):
        raise InputError(f"{image_path}: image has NaN or infinite values")
    for name in fixes:
        image, mask = FIXES[name](image, mask)
    check_same_grid(
        mask, image, hint="if the mask is on the image's voxel grid, declare the fix mask_affine_from_image"
    )
    binary = binarise_mask(mask, mask_threshold)
    dtype = storage_dtype(image)
    save_like(image.data.astype(dtype), image, out_dir / IMAGE_NAME, dtype=dtype)
    save_like(binary, image, out_dir / MASK_NAME, dtype=np.uint8)


def prepare_dataset(
    registry: Registry,
    dataset_id: str,
    out_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    allow_download: bool = True,
    reference_masks: str | os.PathLike | None = None,
    n_subjects: int | None = None,
) -> DatasetStatus:
    """Fetch and prepare every subject of ``dataset_id`` into ``out_dir/<dataset_id>/``.

    ``n_subjects`` takes the first N subjects in registry order (a quick look); None takes all.

    ``cache_dir``, ``mirror``, ``allow_download`` and ``reference_masks`` (the directory of the
    benchmark's own, undistributed masks) say where files may come from (:func:`fetch_file`).
    Manifest paths are ``out_dir/<dataset>/<subject>/{image,mask}.nii.gz`` as given (relative
    stays relative). A dataset whose files cannot be fetched yields an empty manifest and an
    unavailable status (logged as a warning), not an exception.

    Raises:
        InputError: unknown dataset id, or a fetched file that is broken (unreadable, NaNs, mask
            grid not matching the image after fixes, empty mask). Nothing is left half-written.
    """
    dataset = registry.get(dataset_id)
    if dataset.collection is not None:
        raise InputError(f"{dataset.id} is a collection: prepare it with prepare_collection")
    out_dir = Path(out_dir)
    final = out_dir / dataset.id
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    chosen = list(dataset.subjects.items())[: n_subjects or None]
    try:
        for subj_id, s in chosen:
            try:
                files[subj_id] = (
                    fetch_file(s.image, cache_dir, mirror, allow_download, reference_masks=reference_masks),
                    fetch_file(s.mask, cache_dir, mirror, allow_download, reference_masks=reference_masks),
                )
            except FetchError as exc:
                raise FetchError(f"dataset {dataset.id}, subject {subj_id}: {exc}") from None
    except FetchError as exc:
        log.warning("%s: dataset unavailable: %s", dataset.id, exc)
        files = {}
        status = DatasetStatus(dataset.id, available=False, reason=str(exc), n_subjects=0)
    else:
        status = DatasetStatus(dataset.id, available=True, reason=None, n_subjects=len(files))

    scans = [
        (subj_id, SourceScan(subj_id, image, mask, dataset.subjects[subj_id].mask_threshold))
        for subj_id, (image, mask) in files.items()
    ]
    _write_prepared(final, dataset, scans, status)
    return status


def prepare_collection(
    registry: Registry,
    dataset_id: str,
    out_dir: str | os.PathLike,
    options: FetchOptions,
    n_subjects: int | None = None,
) -> DatasetStatus:
    """Fetch a collection dataset, convert it from its publisher's layout, prepare its subjects.

    The converter's scans, sorted by the publisher's id, become the subjects ``s0001``, ``s0002``,
    ... (:func:`pumba.data.plan.subject_slots`: the workflow knows them before anything is
    fetched); the manifest's ``source_id`` column keeps the publisher's id. ``n_subjects`` takes the
    first N (a quick look); None takes as many as the registry says the publisher distributes.

    A dataset that cannot be had (no network, the manual copy missing, a failed download) yields
    an empty manifest and an unavailable status, as :func:`prepare_dataset` does.

    Raises:
        InputError: unknown dataset, a dataset that lists its subjects, fewer scans found than
            asked for (the registry's count is checked), a broken scan (naming dataset, scan, file).
    """
    dataset = registry.get(dataset_id)
    if dataset.collection is None:
        raise InputError(f"{dataset.id} lists its subjects: prepare it with prepare_dataset")
    wanted = dataset.n_subjects if n_subjects is None else min(n_subjects, dataset.n_subjects)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        roots = fetch_collection(dataset, options)
    except InputError as exc:
        log.warning("%s: dataset unavailable: %s", dataset.id, exc)
        status = DatasetStatus(dataset.id, available=False, reason=str(exc), n_subjects=0)
        _write_prepared(out_dir / dataset.id, dataset, [], status)
        return status
    scans = CONVERTERS[dataset.collection.converter](roots)
    if len(scans) != dataset.n_subjects:
        log.warning(
            "%s: the registry says the publisher distributes %d subjects; found %d",
            dataset.id,
            dataset.n_subjects,
            len(scans),
        )
    if len(scans) < wanted:
        raise InputError(
            f"{dataset.id}: {wanted} subject(s) asked for, {len(scans)} found in "
            f"{', '.join(str(r) for r in roots.values())} (the registry's n_subjects is "
            f"{dataset.n_subjects}; set the workflow's subjects.{dataset.id} to at most {len(scans)})"
        )
    chosen = list(zip(subject_slots(wanted), scans[:wanted], strict=True))
    status = DatasetStatus(dataset.id, available=True, reason=None, n_subjects=wanted)
    _write_prepared(out_dir / dataset.id, dataset, chosen, status)
    return status


def _write_prepared(
    final: Path, dataset: Dataset, chosen: list[tuple[str, SourceScan]], status: DatasetStatus
) -> None:
    """Prepare ``chosen`` (subject id, scan) into a staging directory, then rename it to ``final``."""
    staging = Path(tempfile.mkdtemp(prefix=f".{dataset.id}.", suffix=".tmp", dir=final.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary directory
        rows = []
        for slot, scan in chosen:
            (staging / slot).mkdir()
            try:
                prepare_subject(scan.image, scan.mask, scan.mask_threshold, dataset.fixes, staging / slot)
            except InputError as exc:
                scan_id = "" if scan.source_id == slot else f" ({scan.source_id})"
                raise InputError(f"dataset {dataset.id}, subject {slot}{scan_id}: {exc}") from None
            rows.append(
                manifest_row(dataset, slot, final / slot, scan.source_id, scan.modality, scan.pathology)
            )
            log.info("%s/%s (%s): prepared", dataset.id, slot, scan.source_id)
        write_text_atomic(staging / MANIFEST_NAME, manifest_text(rows))
        write_text_atomic(staging / "status.json", status.to_json())
        _replace_dir(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _replace_dir(new: Path, final: Path) -> None:
    """Put directory ``new`` at ``final``, removing a previous ``final`` only once ``new`` is in."""
    if not final.exists():
        os.rename(new, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
    old.rmdir()
    os.rename(final, old)
    try:
        os.rename(new, final)
    except OSError:
        os.rename(old, final)
        raise
    shutil.rmtree(old)
