"""From each publisher's layout to the benchmark's subjects: one function per collection dataset.

A converter takes the fetched parts of a collection (part name -> the directory in the publisher's
layout, :func:`pumba.data.collect.fetch_collection`) and returns the scans it finds, each an image
and its reference brain mask, sorted by the publisher's id. It reads only; preparation
(:func:`pumba.data.prepare.prepare_collection`) checks grids, binarises and writes.

The layouts are the publishers' as documented (README files, archive listings); what could not be
checked against a real download is listed in the registry entry's ``unverified``. Converters glob
below the part's directory rather than hard-coding an archive's top folder, accept ``.nii`` and
``.nii.gz``, and skip a scan without its image or its mask only where the publisher documents
such scans (SynthStrip's CIM masks come without images; PRIME-DE's encrypted sites).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pumba.io import InputError


@dataclass(frozen=True)
class SourceScan:
    """One scan found in a publisher's layout.

    Attributes:
        source_id: the publisher's id of the scan (unique in the dataset; sorted on it).
        image: the image file.
        mask: the reference brain mask (or a label map, brain where ``> mask_threshold``).
        mask_threshold: the mask is ``value > mask_threshold``.
        modality: the scan's modality where a collection mixes contrasts, else None (the dataset's).
        pathology: the scan's pathology where a collection mixes cohorts, else None.
    """

    source_id: str
    image: Path
    mask: Path
    mask_threshold: float = 0.0
    modality: str | None = None
    pathology: str | None = None


Converter = Callable[[dict[str, Path]], list[SourceScan]]
_NIFTI = (".nii.gz", ".nii")


def _part(roots: dict[str, Path], name: str, dataset: str) -> Path:
    if name not in roots:
        raise InputError(f"{dataset}: the converter needs part '{name}' (have: {', '.join(roots)})")
    return roots[name]


def _stem(path: Path) -> str:
    """A NIfTI file's name without .nii or .nii.gz."""
    for suffix in _NIFTI:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def _niftis(root: Path, pattern: str) -> Iterable[Path]:
    """Files under ``root`` matching ``pattern`` + '.nii' or '.nii.gz', in sorted order."""
    return sorted({p for suffix in _NIFTI for p in root.rglob(pattern + suffix) if p.is_file()})


def _sibling(path: Path, stem: str) -> Path | None:
    """``stem``.nii.gz or ``stem``.nii beside ``path``, whichever exists."""
    for suffix in _NIFTI:
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def _sorted_unique(scans: list[SourceScan], dataset: str, root: Path) -> list[SourceScan]:
    ids = [s.source_id for s in scans]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"{root}: {dataset}: the same scan id twice: {', '.join(duplicates[:5])}")
    if not scans:
        raise InputError(f"{root}: {dataset}: no scan found in the publisher's layout")
    return sorted(scans, key=lambda s: s.source_id)


# --- SynthStrip dataset v1.5 ---------------------------------------------------------------------

# SUBSET_MODALITY_SUBJECT folder names: the modality token -> the manifest's modality
_SYNTHSTRIP_MODALITY = {
    "t1": "T1w",
    "t2": "T2w",
    "pd": "PD",
    "flair": "FLAIR",
    "epi": "EPI",
    "dwi": "DWI",
    "mra": "MRA",
    "qt1": "qT1",
    "ct": "CT",
    "pet": "PET",
}
# cohorts with pathology: QIN is a glioblastoma cohort
_SYNTHSTRIP_PATHOLOGY = {"qin": "glioblastoma"}


def synthstrip(roots: dict[str, Path]) -> list[SourceScan]:
    """The SynthStrip dataset: ``<top>/<subset>_<modality>_<subject>/{image,mask}.nii.gz``.

    Folders without ``image.nii.gz`` (the CIM CT and PET masks, whose images are not distributed)
    are skipped. The modality and the pathology come from the folder name.
    """
    root = _part(roots, "archive", "synthstrip")
    scans = []
    for mask in sorted(root.rglob("mask.nii.gz")):
        image = mask.with_name("image.nii.gz")
        if not image.is_file():
            continue
        folder = mask.parent.name
        fields = folder.split("_", 2)
        if len(fields) != 3:
            raise InputError(f"{mask.parent}: synthstrip: folder name is not SUBSET_MODALITY_SUBJECT")
        subset, modality, _ = fields
        scans.append(
            SourceScan(
                source_id=folder,
                image=image,
                mask=mask,
                modality=_SYNTHSTRIP_MODALITY.get(modality, modality),
                pathology=_SYNTHSTRIP_PATHOLOGY.get(subset, "none"),
            )
        )
    return _sorted_unique(scans, "synthstrip", root)


# --- NFBS ----------------------------------------------------------------------------------------


def nfbs(roots: dict[str, Path]) -> list[SourceScan]:
    """NFBS: ``NFBS_Dataset/<ID>/sub-<ID>_ses-NFB3_T1w.nii.gz`` and ``..._T1w_brainmask.nii.gz``."""
    root = _part(roots, "archive", "nfbs")
    scans = []
    for image in _niftis(root, "sub-*_T1w"):
        mask = _sibling(image, _stem(image) + "_brainmask")
        if mask is None:
            raise InputError(f"{image}: nfbs: no {_stem(image)}_brainmask.nii.gz beside it")
        scans.append(SourceScan(source_id=image.parent.name, image=image, mask=mask))
    return _sorted_unique(scans, "nfbs", root)


# --- CC-359 --------------------------------------------------------------------------------------

_CC359_NAME = re.compile(r"^CC\d{4}_(philips|siemens|ge)_(15|3)_\d+_[MF]$")


def cc359(roots: dict[str, Path]) -> list[SourceScan]:
    """CC-359: ``Original/CC0001_philips_15_55_M.nii.gz`` and the silver-standard masks
    ``Silver-standard/CC0001_philips_15_55_M_ss.nii.gz`` (Original.zip and
    Silver-standard-machine-learning.zip unpacked side by side)."""
    root = _part(roots, "download", "cc359")
    masks = {_stem(p)[: -len("_ss")]: p for p in _niftis(root, "CC*_ss")}
    scans = []
    for image in _niftis(root, "CC*"):
        stem = _stem(image)
        if not _CC359_NAME.match(stem):
            continue
        if stem not in masks:
            raise InputError(f"{image}: cc359: no silver-standard mask {stem}_ss.nii.gz under {root}")
        scans.append(SourceScan(source_id=stem, image=image, mask=masks[stem]))
    return _sorted_unique(scans, "cc359", root)


# --- IBSR v2 -------------------------------------------------------------------------------------


def ibsr(roots: dict[str, Path]) -> list[SourceScan]:
    """IBSR v2.0: ``IBSR_nifti_stripped/IBSR_01/IBSR_01_ana.nii.gz`` and ``IBSR_01_ana_brainmask``."""
    root = _part(roots, "download", "ibsr")
    scans = []
    for image in _niftis(root, "IBSR_[0-9][0-9]_ana"):
        mask = _sibling(image, _stem(image) + "_brainmask")
        if mask is None:
            raise InputError(f"{image}: ibsr: no {_stem(image)}_brainmask.nii.gz beside it")
        scans.append(SourceScan(source_id=_stem(image)[: -len("_ana")], image=image, mask=mask))
    return _sorted_unique(scans, "ibsr", root)


# --- PRIME-DE with the NHP-BrainExtraction masks -------------------------------------------------


def _from_site(path: Path, root: Path, stem: str) -> str | None:
    """``site-<s>/.../<stem>``: ``path`` below ``root`` from its last ``site-`` folder on, named ``stem``
    (None when no folder of the path is a site's)."""
    relative = path.relative_to(root).parts
    sites = [i for i, p in enumerate(relative) if p.startswith("site-")]
    if not sites:
        return None
    return Path(*relative[sites[-1] :]).with_name(stem).as_posix()


def prime_de(roots: dict[str, Path]) -> list[SourceScan]:
    """PRIME-DE: masks ``.../brainmasks/data/site-<s>/sub-<i>/ses-<n>/anat/<T1w name>_mask.nii.gz``
    (NHP-BrainExtraction), images ``site-<s>/sub-<i>/ses-<n>/anat/<T1w name>.nii.gz`` from the
    sites' archives on INDI's bucket. A mask whose site's images are not there (the encrypted
    sites, NIMH and oxford) is skipped."""
    masks_root = _part(roots, "masks", "prime-de")
    images_root = _part(roots, "images", "prime-de")
    images = {}
    for image in _niftis(images_root, "sub-*_T1w"):
        key = _from_site(image, images_root, _stem(image))
        if key is not None:
            images[key] = image
    scans = []
    for mask in _niftis(masks_root, "sub-*_mask"):
        key = _from_site(mask, masks_root, _stem(mask)[: -len("_mask")])
        if key in images:
            scans.append(SourceScan(source_id=key.replace("/", "_"), image=images[key], mask=mask))
    return _sorted_unique(scans, "prime-de", masks_root)


# --- CAMRI rat (OpenNeuro ds002870) --------------------------------------------------------------

_SUBJECT = re.compile(r"sub-([A-Za-z0-9]+)")


def camri_rat(roots: dict[str, Path]) -> list[SourceScan]:
    """CAMRI rats: images ``sub-XXX/ses-1/anat/sub-XXX_ses-1_acq-RARE_T2w.nii.gz`` (ds002870),
    masks ``CAMRI_Rat-sub-XXX_ses-1_acq-RARE_T2w_NNN.nii.gz`` (RS2-Net's annotated masks; the
    trailing number varies), paired by the ``sub-XXX`` token."""
    images_root = _part(roots, "images", "camri-rat")
    masks_root = _part(roots, "masks", "camri-rat")
    masks: dict[str, list[Path]] = {}
    for mask in _niftis(masks_root, "*sub-*RARE*"):
        found = _SUBJECT.search(mask.name)
        if found:
            masks.setdefault(found.group(1), []).append(mask)
    scans = []
    for image in _niftis(images_root, "sub-*_acq-RARE_T2w"):
        found = _SUBJECT.search(image.name)
        if not found or found.group(1) not in masks:
            continue
        candidates = masks[found.group(1)]
        if len(candidates) > 1:
            raise InputError(f"{image}: camri-rat: several masks for sub-{found.group(1)}: {candidates[:3]}")
        scans.append(SourceScan(source_id=f"sub-{found.group(1)}", image=image, mask=candidates[0]))
    return _sorted_unique(scans, "camri-rat", images_root)


# --- BEN mouse (Zenodo 6844489) ------------------------------------------------------------------


def ben_mouse(roots: dict[str, Path]) -> list[SourceScan]:
    """BEN's mouse T2 set: ``src/<name>`` images and ``label/<name>`` masks of the same name."""
    images_root = _part(roots, "images", "ben-mouse")
    labels_root = _part(roots, "labels", "ben-mouse")
    labels = {p.name: p for p in _niftis(labels_root, "*")}
    scans = []
    for image in _niftis(images_root, "*"):
        if image.name not in labels:
            raise InputError(f"{image}: ben-mouse: no label of the same name under {labels_root}")
        scans.append(SourceScan(source_id=_stem(image), image=image, mask=labels[image.name]))
    return _sorted_unique(scans, "ben-mouse", images_root)


# --- UPenn-GBM -----------------------------------------------------------------------------------


def upenn_gbm(roots: dict[str, Path]) -> list[SourceScan]:
    """UPenn-GBM's NIfTI release: ``images_structural_unstripped/<ID>/<ID>_T1_unstripped.nii.gz``,
    and as its mask the skull-stripped ``images_structural/<ID>/<ID>_T1.nii.gz`` (brain where it is
    not 0: UPenn's own stripping; the release has no mask file). ``old/`` folders are skipped."""
    root = _part(roots, "download", "upenn-gbm")
    stripped = {
        _stem(p): p for p in _niftis(root, "UPENN-GBM-*_T1") if "old" not in p.relative_to(root).parts
    }
    scans = []
    for image in _niftis(root, "UPENN-GBM-*_T1_unstripped"):
        if "old" in image.relative_to(root).parts:
            continue
        case = _stem(image)[: -len("_T1_unstripped")]
        mask = stripped.get(f"{case}_T1")
        if mask is None:
            raise InputError(f"{image}: upenn-gbm: no skull-stripped {case}_T1.nii.gz under {root}")
        scans.append(SourceScan(source_id=case, image=image, mask=mask))
    return _sorted_unique(scans, "upenn-gbm", root)


CONVERTERS: dict[str, Converter] = {
    "synthstrip": synthstrip,
    "nfbs": nfbs,
    "cc359": cc359,
    "ibsr": ibsr,
    "prime_de": prime_de,
    "camri_rat": camri_rat,
    "ben_mouse": ben_mouse,
    "upenn_gbm": upenn_gbm,
}
"""The registry's ``converter`` vocabulary (the schema's enum lists the same names)."""
