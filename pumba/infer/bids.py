"""``pumba bids BIDS_DIR OUTPUT_DIR participant``: brain masks of a BIDS dataset as a BIDS-Derivatives
dataset, in the BIDS-Apps convention.

For each anatomical image ``sub-<label>[/ses-<label>]/anat/<entities>_<suffix>.nii[.gz]`` of the chosen
suffixes (default ``T1w``) it writes, into the same folders under OUTPUT_DIR:

- ``<entities>_desc-brain_mask.nii.gz``: the mask (uint8), with a JSON sidecar: ``Type`` "Brain",
  ``Sources`` (a BIDS URI of the image), the input's sha256, ``GeneratedBy`` (tool, version, weights and their
  sha256), every setting, the geometry used, the brain volume and ``QC`` (score, flag, its terms);
- with ``--stripped``, ``<entities>_desc-brain_<suffix>.nii.gz`` (the image times the mask) and its sidecar
  (``SkullStripped``: true, ``Sources``);
- with ``--prob``, ``<entities>_label-brain_probseg.nii.gz`` (the brain probability) and its sidecar;

and ``dataset_description.json`` (``DatasetType`` "derivative", ``GeneratedBy``, ``SourceDatasets``, the
``raw`` dataset link the sidecars' URIs use). ``<entities>`` are the image's own (sub, ses, acq, rec, run,
...) without the suffix. The ``group`` level reads every mask's sidecar and writes ``pumba_qc.tsv`` (every
mask, its score and flag, the flagged first), listed in ``.bidsignore``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pumba import __version__
from pumba.infer.batch import Job, image_stem
from pumba.io import InputError, make_output_dir, write_text_atomic

BIDS_VERSION = "1.10.0"
"""The BIDS version the derivatives follow."""
QC_TABLE = "pumba_qc.tsv"


def parse_name(path: Path) -> tuple[list[tuple[str, str]], str]:
    """A BIDS file name's entities (key, value) in order and its suffix: ``sub-01_ses-a_T1w.nii.gz`` ->
    ([("sub", "01"), ("ses", "a")], "T1w")."""
    parts = image_stem(path).split("_")
    entities = []
    for part in parts[:-1]:
        key, sep, value = part.partition("-")
        if not sep or not key or not value:
            raise InputError(f"{path}: not a BIDS file name (entity {part!r} is not key-value)")
        entities.append((key, value))
    return entities, parts[-1]


def bids_inputs(
    root: Path,
    participants: Sequence[str] = (),
    sessions: Sequence[str] = (),
    suffixes: Sequence[str] = ("T1w",),
) -> list[tuple[Path, str]]:
    """(image, BIDS path relative to ``root``) of each ``sub-*/[ses-*/]anat/*_<suffix>.nii[.gz]`` of the
    given participants (labels with or without ``sub-``; all when empty) and sessions, sorted."""
    wanted = {p.removeprefix("sub-") for p in participants}
    wanted_ses = {s.removeprefix("ses-") for s in sessions}
    found = []
    for sub in sorted(root.glob("sub-*")):
        if not sub.is_dir() or (wanted and sub.name.removeprefix("sub-") not in wanted):
            continue
        folders = [sub / "anat"] + [s / "anat" for s in sorted(sub.glob("ses-*")) if s.is_dir()]
        for anat in folders:
            session = anat.parent.name
            if session.startswith("ses-") and wanted_ses and session.removeprefix("ses-") not in wanted_ses:
                continue
            for suffix in suffixes:
                for ext in ("nii.gz", "nii"):
                    for image in sorted(anat.glob(f"{sub.name}_*{suffix}.{ext}")):
                        if parse_name(image)[1] == suffix and not image.name.startswith("."):
                            found.append((image, str(image.relative_to(root))))
    return sorted(found)


def derivative_name(entities: list[tuple[str, str]], tail: str) -> str:
    """``<entities>_<tail>`` with the source's ``desc`` (if any) dropped: the output names its own."""
    kept = [f"{k}-{v}" for k, v in entities if k not in ("desc", "label")]
    return "_".join([*kept, tail])


def dataset_description(bids_dir: Path) -> dict:
    """The derivatives' ``dataset_description.json``."""
    return {
        "Name": "pumba brain masks",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "pumba",
                "Version": __version__,
                "Description": "brain extraction by a network trained on purely synthetic data (pumba strip)",
            }
        ],
        "SourceDatasets": [{"URL": bids_dir.resolve().as_uri()}],
        "DatasetLinks": {"raw": bids_dir.resolve().as_uri()},
    }


def plan_bids(
    bids_dir: Path,
    out_dir: Path,
    participants: Sequence[str] = (),
    sessions: Sequence[str] = (),
    suffixes: Sequence[str] = ("T1w",),
    stripped: bool = False,
    prob: bool = False,
) -> list[Job]:
    """The jobs of a participant-level run (module docstring).

    Raises:
        InputError: BIDS_DIR is not a BIDS dataset, a participant label is not in it, no image is found, or
            two images (e.g. a T1w and a T2w of one session) would get one mask name.
    """
    if not (bids_dir / "dataset_description.json").is_file():
        raise InputError(f"{bids_dir}: not a BIDS dataset (no dataset_description.json)")
    if out_dir.resolve() == bids_dir.resolve():
        raise InputError(f"{out_dir}: the output folder must not be the BIDS dataset itself")
    for label in participants:
        if not (bids_dir / f"sub-{label.removeprefix('sub-')}").is_dir():
            raise InputError(f"{bids_dir}: no participant sub-{label.removeprefix('sub-')}")
    inputs = bids_inputs(bids_dir, participants, sessions, suffixes)
    if not inputs:
        raise InputError(f"{bids_dir}: no anatomical image with suffix {', '.join(suffixes)} to strip")
    jobs, owners = [], {}
    for image, rel in inputs:
        entities, suffix = parse_name(image)
        folder = out_dir / Path(rel).parent
        mask = folder / (derivative_name(entities, "desc-brain_mask") + ".nii.gz")
        if mask in owners:
            raise InputError(
                f"{mask}: both {owners[mask]} and {image} would get this mask; choose one with --suffix"
            )
        owners[mask] = image
        source = f"bids:raw:{rel}"
        outputs = {"mask": mask}
        side_files = {}
        if stripped:
            outputs["stripped"] = folder / (derivative_name(entities, f"desc-brain_{suffix}") + ".nii.gz")
            side_files[outputs["stripped"].with_name(image_stem(outputs["stripped"]) + ".json")] = {
                "SkullStripped": True,
                "Sources": [source, f"bids::{mask.relative_to(out_dir)}"],
            }
        if prob:
            outputs["prob"] = folder / (derivative_name(entities, "label-brain_probseg") + ".nii.gz")
            side_files[outputs["prob"].with_name(image_stem(outputs["prob"]) + ".json")] = {
                "Sources": [source],
                "Description": "brain probability of pumba's network, on the image's grid",
            }
        extra = {"Type": "Brain", "Sources": [source]}
        jobs.append(Job(image, outputs, mask.with_name(image_stem(mask) + ".json"), extra, side_files))
    return jobs


def write_dataset_description(bids_dir: Path, out_dir: Path) -> None:
    """Create OUTPUT_DIR and write its ``dataset_description.json`` (and ``.bidsignore``) atomically."""
    make_output_dir(out_dir)
    write_text_atomic(
        out_dir / "dataset_description.json", json.dumps(dataset_description(bids_dir), indent=2) + "\n"
    )
    ignore = out_dir / ".bidsignore"
    if not ignore.exists():
        write_text_atomic(ignore, f"{QC_TABLE}\n")


def group_table(out_dir: Path) -> Path:
    """The group level: ``OUTPUT_DIR/pumba_qc.tsv`` from every mask's sidecar (mask, score, flag, brain
    volume, source), the flagged first, then by score.

    Raises:
        InputError: no mask sidecar under OUTPUT_DIR (run the participant level first).
    """
    rows = []
    for side in sorted(out_dir.glob("sub-*/**/*_desc-brain_mask.json")):
        try:
            record = json.loads(side.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{side}: not a readable JSON sidecar ({exc})") from None
        q = record.get("QC") or {}
        rows.append(
            (
                not q.get("flag", False),
                q.get("score", 2.0),
                str(side.relative_to(out_dir)).removesuffix(".json") + ".nii.gz",
                q.get("score"),
                q.get("flag"),
                record.get("BrainVolume_ml"),
                ";".join(record.get("Sources", [])),
            )
        )
    if not rows:
        raise InputError(f"{out_dir}: no *_desc-brain_mask.json sidecar; run the participant level first")
    lines = ["mask\tqc_score\tqc_flag\tbrain_ml\tsources"]
    for row in sorted(rows):
        lines.append("\t".join("" if v is None else str(v) for v in row[2:]))
    path = out_dir / QC_TABLE
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path
