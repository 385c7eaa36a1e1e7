"""Many scans in one run (pumba.infer.batch), --prob, --border and the Python API (pumba.infer.api)."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from pumba.cli import main
from pumba.infer.api import Stripper
from pumba.infer.batch import find_inputs, jobs_within_memory, plan_jobs
from pumba.infer.postprocess import apply_border
from pumba.io import InputError


def _ball_mm(shape, zooms, radius_mm):
    axes = [(np.arange(n) - (n - 1) / 2) * z for n, z in zip(shape, zooms, strict=True)]
    grid = np.meshgrid(*axes, indexing="ij")
    return np.sqrt(sum(g**2 for g in grid)) <= radius_mm


@pytest.mark.parametrize("border", [3.0, -3.0])
def test_border_moves_the_edge_by_a_distance_in_mm_whatever_the_voxel_size(border):
    shape, zooms = (48, 48, 24), (1.0, 1.0, 2.0)  # anisotropic: voxel dilation would grow z twice as far
    mask = _ball_mm(shape, zooms, 12.0)
    out = apply_border(mask, zooms, border)
    expected = _ball_mm(shape, zooms, 12.0 + border)
    assert 2 * (out & expected).sum() / (out.sum() + expected.sum()) > 0.95
    assert abs(int(out.sum()) - int(expected.sum())) < 0.05 * expected.sum()
    extent = [np.ptp(np.flatnonzero(out.any(axis=tuple(a for a in range(3) if a != k)))) for k in range(3)]
    assert abs(extent[0] * zooms[0] - extent[2] * zooms[2]) <= 2 * zooms[2]  # same mm along x and z
    assert np.array_equal(mask, _ball_mm(shape, zooms, 12.0))  # the input is not modified
    assert np.array_equal(apply_border(mask, zooms, 0.0), mask)


def test_border_keeps_the_mask_solid_and_handles_the_edge_of_the_field_of_view():
    mask = np.zeros((30, 30, 30), bool)
    mask[:12, 5:25, 5:25] = True  # touches the first face
    grown = apply_border(mask, (1.0, 1.0, 1.0), 2.0)
    assert grown[0, 4, 10] and grown[13, 10, 10] and not grown[15, 10, 10]
    shrunk = apply_border(mask, (1.0, 1.0, 1.0), -2.0)
    assert not shrunk[:, 5:7].any() and shrunk[5, 10, 10]
    assert not apply_border(mask, (1.0, 1.0, 1.0), -20.0).any()


def _heads(folder, itk_head, n=2):
    folder.mkdir()
    for k in range(n):
        shutil.copy(itk_head[0], folder / f"s{k}.nii.gz")
    return folder


def test_a_folder_is_stripped_once_resumed_and_a_bad_file_is_recorded(tmp_path, capsys, itk_head, tiny_model):
    scans = _heads(tmp_path / "scans", itk_head)
    (scans / "broken.nii.gz").write_text("not an image")
    out = tmp_path / "out"
    argv = ["strip", "-i", str(scans), "-m", str(out / "{name}_mask.nii.gz"), "--model", str(tiny_model)]
    argv += ["--threads", "1", "--no-tta", "--report", str(tmp_path / "report.tsv"), "--mode", "resize"]
    assert main(argv) == 1  # one bad file: non-zero at the end, the others done
    err = capsys.readouterr().err
    assert "3 scan(s): 2 stripped, 0 complete already (skipped), 1 failed" in err
    assert "failed: " in err and "broken.nii.gz: not a readable NIfTI/MGZ image" in err
    masks = sorted(p.name for p in out.iterdir())
    assert masks == ["s0_mask.json", "s0_mask.nii.gz", "s1_mask.json", "s1_mask.nii.gz"]
    report = (tmp_path / "report.tsv").read_text().splitlines()
    assert report[0].startswith("input\tstatus\terror") and report[1].split("\t")[1] == "failed"
    sidecar = json.loads((out / "s0_mask.json").read_text())
    assert sidecar["Settings"]["tta"] is False and len(sidecar["GeneratedBy"]["WeightsSHA256"]) == 64
    assert 0.0 <= sidecar["QC"]["score"] <= 1.0 and isinstance(sidecar["QC"]["flag"], bool)
    # the same mask as one scan's run
    single = tmp_path / "single.nii.gz"
    one = ["strip", "-i", str(scans / "s0.nii.gz"), "-m", str(single), "--model", str(tiny_model)]
    assert main([*one, "--threads", "1", "--no-tta", "--mode", "resize", "-q"]) == 0
    assert np.array_equal(nib.load(single).get_fdata(), nib.load(out / "s0_mask.nii.gz").get_fdata())
    # resumed: complete outputs are skipped, untouched
    stamp = (out / "s0_mask.nii.gz").stat().st_mtime_ns
    (scans / "broken.nii.gz").unlink()
    assert main(argv) == 0
    assert "2 scan(s): 0 stripped, 2 complete already (skipped), 0 failed" in capsys.readouterr().err
    assert (out / "s0_mask.nii.gz").stat().st_mtime_ns == stamp
    # another setting is another result: redone
    assert main([*argv, "--border", "1"]) == 0
    assert "2 stripped" in capsys.readouterr().err
    assert (out / "s0_mask.nii.gz").stat().st_mtime_ns != stamp


def test_globs_templates_and_collisions(tmp_path, capsys, itk_head):
    scans = tmp_path / "scans"
    (scans / "a").mkdir(parents=True)
    (scans / "b").mkdir()
    for sub in ("a", "b"):
        shutil.copy(itk_head[0], scans / sub / "t1.nii.gz")
    (scans / "a" / ".t1.nii.gz.x1.tmp.nii.gz").write_text("a temporary file")
    found = find_inputs([str(scans / "**" / "*.nii.gz")])
    assert [rel for _, rel in found] == ["a/t1", "b/t1"]
    with pytest.raises(InputError, match=r"both .* would write it; use \{rel\}"):
        plan_jobs(found, {"mask": str(tmp_path / "{name}_mask.nii.gz")})
    jobs = plan_jobs(found, {"mask": str(tmp_path / "out" / "{rel}_mask.nii.gz")})
    assert [str(j.outputs["mask"].relative_to(tmp_path)) for j in jobs] == [
        "out/a/t1_mask.nii.gz",
        "out/b/t1_mask.nii.gz",
    ]
    assert main(["strip", "-i", str(scans), "-m", str(tmp_path / "mask.nii.gz")]) == 2
    assert "needs {name} or {rel}" in capsys.readouterr().err
    assert main(["strip", "-i", str(tmp_path / "nothing*.nii.gz"), "-m", "{name}.nii.gz"]) == 2
    assert "no image matches this pattern" in capsys.readouterr().err
    # outputs written into the input folder are not taken for inputs on the next run
    (scans / "a" / "t1_mask.nii.gz").write_bytes(b"")
    jobs = plan_jobs(find_inputs([str(scans)]), {"mask": str(scans / "{rel}_mask.nii.gz")})
    assert len(jobs) == 2


def test_jobs_are_bounded_by_memory(tmp_path, itk_head):
    images = [itk_head[0]] * 3
    assert jobs_within_memory(4, images, None) == 4
    assert jobs_within_memory(4, images, 10 * 2**30) == 4
    assert jobs_within_memory(4, images, 2**30) == 1  # one scan's work (about 0.6 GB) fits 0.8 GB, two do not


def test_parallel_jobs_give_the_same_masks(tmp_path, capsys, itk_head, tiny_model):
    scans = _heads(tmp_path / "scans", itk_head, 2)
    base = ["strip", "-i", str(scans), "--model", str(tiny_model), "--no-tta", "--mode", "resize", "-q"]
    assert main([*base, "-m", str(tmp_path / "one" / "{name}.nii.gz"), "--threads", "1"]) == 0
    assert main([*base, "-m", str(tmp_path / "two" / "{name}.nii.gz"), "--jobs", "2", "--threads", "1"]) == 0
    for k in range(2):
        a = nib.load(tmp_path / "one" / f"s{k}.nii.gz").get_fdata()
        b = nib.load(tmp_path / "two" / f"s{k}.nii.gz").get_fdata()
        assert np.array_equal(a, b)


def test_the_api_strips_images_in_memory_and_writes_prob_and_border(tmp_path, itk_head):
    stripper = Stripper(device="cpu", threads=1)
    image = nib.load(itk_head[0])
    in_memory = nib.Nifti1Image(np.asarray(image.dataobj), image.affine)  # no file behind it
    result = stripper.strip(in_memory, prob=True, stripped=True)
    mask = np.asarray(result.mask.dataobj)
    prob = np.asarray(result.prob.dataobj)
    assert result.mask.shape == image.shape and mask.dtype == np.uint8
    assert prob.dtype == np.float32 and prob.min() >= 0.0 and prob.max() <= 1.0
    agree = 2 * ((prob > 0.5) & (mask > 0)).sum() / ((prob > 0.5).sum() + (mask > 0).sum())
    assert agree > 0.98
    reference = nib.load(itk_head[1]).get_fdata() > 0
    assert 2 * (reference & (mask > 0)).sum() / (reference.sum() + (mask > 0).sum()) > 0.9
    assert not result.qc.flag and result.qc.score > 0.8
    assert np.all(np.asarray(result.stripped.dataobj)[mask == 0] == 0)
    grown = stripper.strip(in_memory, border_mm=4.0, qc=False)
    assert grown.qc is None and grown.brain_ml > result.brain_ml * 1.1
    # the CLI writes the same mask and the probability map to files
    out, prob_path = tmp_path / "m.nii.gz", tmp_path / "p.nii.gz"
    assert (
        main(
            [
                "strip",
                "-i",
                str(itk_head[0]),
                "-m",
                str(out),
                "--prob",
                str(prob_path),
                "--threads",
                "1",
                "-q",
            ]
        )
        == 0
    )
    assert np.array_equal(nib.load(out).get_fdata(), mask)
    assert np.allclose(nib.load(prob_path).get_fdata(), prob, atol=1e-6)
    # any method's mask gets a score: a mask grown 8 mm is worse than ours
    worse = stripper.qc(
        in_memory,
        nib.Nifti1Image(apply_border(mask > 0, (2.0, 2.0, 3.0), 8.0).astype(np.uint8), image.affine),
    )
    assert worse.score < result.qc.score
    with pytest.raises(InputError, match="not on the grid"):
        stripper.qc(in_memory, nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)))
