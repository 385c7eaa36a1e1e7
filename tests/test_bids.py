"""``pumba bids``: a BIDS dataset stripped into BIDS derivatives, checked with pybids and the BIDS schema."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from pumba.cli import main


def _bids_tree(root, image):
    """Three participants (one with two sessions), a functional file that must be left alone, a T2w."""
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps({"Name": "test", "BIDSVersion": "1.10.0"}))
    (root / "participants.tsv").write_text("participant_id\nsub-01\nsub-02\nsub-03\n")
    paths = [
        "sub-01/ses-a/anat/sub-01_ses-a_T1w.nii.gz",
        "sub-01/ses-b/anat/sub-01_ses-b_run-1_T1w.nii.gz",
        "sub-02/anat/sub-02_T1w.nii.gz",
        "sub-03/anat/sub-03_acq-fast_T1w.nii.gz",
    ]
    for rel in paths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, root / rel)
    shutil.copy(image, root / "sub-02/anat/sub-02_T2w.nii.gz")
    (root / "sub-02/func").mkdir()
    nib.save(
        nib.Nifti1Image(np.zeros((8, 8, 8, 3), np.float32), np.eye(4)),
        root / "sub-02/func/sub-02_task-rest_bold.nii.gz",
    )
    return paths


def test_a_bids_dataset_becomes_valid_derivatives_with_sidecars_and_qc(tmp_path, capsys, itk_head):
    bids = pytest.importorskip("bids")
    from bidsschematools import validator

    raw, out = tmp_path / "raw", tmp_path / "derivatives" / "pumba"
    _bids_tree(raw, itk_head[0])
    argv = ["bids", str(raw), str(out), "participant", "--prob", "--stripped", "--threads", "1", "--no-tta"]
    assert main(argv) == 0
    assert "4 scan(s): 4 stripped" in capsys.readouterr().err
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "pumba"
    # pybids reads it as a derivatives dataset and parses every entity of every output
    layout = bids.BIDSLayout(raw, derivatives=str(out), validate=True)
    masks = layout.get(scope="pumba", suffix="mask", desc="brain", extension=".nii.gz")
    assert len(masks) == 4
    assert sorted(m.entities["subject"] for m in masks) == ["01", "01", "02", "03"]
    assert {m.entities.get("session") for m in masks} == {"a", "b", None}
    assert len(layout.get(scope="pumba", suffix="probseg", label="brain", extension=".nii.gz")) == 4
    assert len(layout.get(scope="pumba", suffix="T1w", desc="brain", extension=".nii.gz")) == 4
    # the BIDS schema's rules (bidsschematools) accept every file written
    files = [str(p) for p in out.rglob("*") if p.is_file() and p.name != ".bidsignore"]
    result = validator.validate_bids(
        [*files, str(out / "dataset_description.json")], accept_non_bids_dir=True
    )
    unmatched = [p for p in result["path_tracking"] if not p.endswith("dataset_description.json")]
    assert unmatched == [], unmatched
    # a sidecar names its source, the tool, its weights, the settings, the geometry and the QC
    side = json.loads((out / "sub-02/anat/sub-02_desc-brain_mask.json").read_text())
    assert side["Type"] == "Brain" and side["Sources"] == ["bids:raw:sub-02/anat/sub-02_T1w.nii.gz"]
    assert len(side["GeneratedBy"]["WeightsSHA256"]) == 64 and side["Settings"]["tta"] is False
    assert side["Geometry"]["mode"] in ("resize", "transform") and 0 <= side["QC"]["score"] <= 1
    assert isinstance(side["QC"]["flag"], bool)
    reference = nib.load(itk_head[1]).get_fdata() > 0
    mask = nib.load(out / "sub-02/anat/sub-02_desc-brain_mask.nii.gz").get_fdata() > 0
    assert 2 * (mask & reference).sum() / (mask.sum() + reference.sum()) > 0.9
    assert not (out / "sub-02/func").exists() and not list(out.rglob("*T2w*"))
    # resumable; the group level lists every mask with its score
    assert main(argv) == 0
    assert "4 complete already" in capsys.readouterr().err
    assert main(["bids", str(raw), str(out), "group"]) == 0
    table = (out / "pumba_qc.tsv").read_text().splitlines()
    assert table[0].startswith("mask\tqc_score\tqc_flag") and len(table) == 5


def test_participant_labels_and_refusals(tmp_path, capsys, itk_head, tiny_model):
    raw, out = tmp_path / "raw", tmp_path / "out"
    _bids_tree(raw, itk_head[0])
    base = [
        "bids",
        str(raw),
        str(out),
        "participant",
        "--model",
        str(tiny_model),
        "--threads",
        "1",
        "--no-tta",
    ]
    assert main([*base, "--participant-label", "02", "--mode", "resize"]) == 0
    assert sorted(p.name for p in out.rglob("*.nii.gz")) == ["sub-02_desc-brain_mask.nii.gz"]
    capsys.readouterr()
    assert main([*base, "--participant-label", "09"]) == 2
    assert "no participant sub-09" in capsys.readouterr().err
    assert main([*base, "--participant-label", "02", "--suffix", "T1w", "T2w"]) == 2
    assert "would get this mask; choose one with --suffix" in capsys.readouterr().err
    assert main(["bids", str(tmp_path), str(out), "participant"]) == 2
    assert "not a BIDS dataset" in capsys.readouterr().err
