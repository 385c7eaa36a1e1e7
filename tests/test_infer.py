"""Inference: normalisation, geometry modes and their inverse, post-processing, `pumba strip` end to end."""

from __future__ import annotations

import hashlib

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import head_phantom, itk_manifest

from pumba.cli import main
from pumba.infer.postprocess import largest_component, postprocess
from pumba.infer.preprocess import choose_mode, normalise, plan_geometry, to_grid, to_input
from pumba.io import InputError, Volume, load_volume


def _volume(img: nib.Nifti1Image, tmp_path, name="head.nii.gz") -> Volume:
    path = tmp_path / name
    nib.save(img, path)
    return load_volume(path)


def test_normalise_percentiles_nan_and_errors():
    data = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    data[0, 0, 0] = np.nan
    out = normalise(data)
    assert out.min() == 0.0 and out.max() == 1.0 and out[0, 0, 0] == 0.0
    assert np.isclose(
        out[5, 0, 0], (500 - np.nanpercentile(data, 1)) / np.ptp(np.nanpercentile(data, [1, 99]))
    )
    with pytest.raises(InputError, match=r"x\.nii: image is all zero"):
        normalise(np.zeros((4, 4, 4)), "x.nii")
    with pytest.raises(InputError, match="constant"):
        normalise(np.full((4, 4, 4), 7.0), "x.nii")
    with pytest.raises(InputError, match="NaN or Inf"):
        normalise(np.full((4, 4, 4), np.nan), "x.nii")


def test_auto_mode_follows_the_field_of_view(tmp_path):
    human = _volume(head_phantom((48, 56, 40), (4.0, 4.0, 4.0)), tmp_path, "h.nii.gz")
    mouse = _volume(head_phantom((64, 64, 20), (0.125, 0.125, 0.75)), tmp_path, "m.nii.gz")
    assert choose_mode(human) == "transform"  # without the image only the field of view's size decides
    assert choose_mode(mouse) == "resize"
    assert choose_mode(mouse, "transform") == "transform"
    with pytest.raises(InputError, match="--mode sideways"):
        choose_mode(human, "sideways")


def test_auto_mode_resizes_a_head_that_fills_its_field_of_view_whatever_the_header(tmp_path):
    # a mouse whose header was scaled 10x (1.25 x 1.25 x 7.5 mm voxels, a 160 mm field of view)
    mouse10 = _volume(head_phantom((128, 128, 20), (1.25, 1.25, 7.5)), tmp_path, "m10.nii.gz")
    human = _volume(head_phantom((90, 108, 90), (2.0, 2.0, 2.0)), tmp_path, "h.nii.gz")
    for vol in (mouse10, human):
        assert choose_mode(vol, "auto", normalise(vol.data)) == "resize"
    # the same human head in a 512 mm field of view (a localiser, neck and shoulders): in world space
    padded = np.zeros((256, 256, 256), np.float32)
    padded[83:173, 74:182, 83:173] = human.data
    wide = _volume(nib.Nifti1Image(padded, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path, "wide.nii.gz")
    assert choose_mode(wide, "auto", normalise(wide.data)) == "transform"


@pytest.mark.parametrize("mode", ["transform", "resize"])
def test_grid_round_trip_recovers_a_mask(tmp_path, mode):
    img = head_phantom((60, 70, 50), (3.0, 3.0, 3.0))
    vol = _volume(img, tmp_path)
    norm = normalise(vol.data)
    geom = plan_geometry(vol, norm, 64, 256.0, mode)
    ref = vol.data > 0.6
    on_grid = to_grid(ref.astype(np.float32), geom) > 0.5
    back = to_input(on_grid.astype(np.float32), geom) > 0.5
    dice = 2 * (back & ref).sum() / (back.sum() + ref.sum())
    assert dice > 0.93


def test_transform_grid_is_world_aligned_and_centred_on_the_head(tmp_path):
    vol = _volume(head_phantom((60, 70, 50), (3.0, 3.0, 3.0)), tmp_path)
    geom = plan_geometry(vol, normalise(vol.data), 64, 256.0, "transform")
    grid_to_world = vol.affine @ geom.grid_to_input
    assert np.allclose(grid_to_world[:3, :3], np.eye(3) * 4.0)
    centre = grid_to_world @ np.array([31.5, 31.5, 31.5, 1.0])
    assert np.allclose(centre[:3], 0.0, atol=3.0)  # the phantom's head is centred on the world origin


def test_transform_is_orientation_invariant(tmp_path):
    """The same head stored RAS and LPI gives the same grid image."""
    img = head_phantom((60, 70, 50), (3.0, 3.0, 3.0))
    data = np.asarray(img.dataobj)
    ras = _volume(img, tmp_path, "ras.nii.gz")
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])
    flip[:3, 3] = [59, 0, 49]
    lpi = _volume(nib.Nifti1Image(data[::-1, :, ::-1].copy(), img.affine @ flip), tmp_path, "lpi.nii.gz")
    grids = []
    for vol in (ras, lpi):
        norm = normalise(vol.data)
        grids.append(to_grid(norm, plan_geometry(vol, norm, 64, 256.0, "transform")))
    assert np.abs(grids[0] - grids[1]).max() < 1e-4


def test_postprocess_keeps_the_largest_interior_component_and_adds_one_voxel():
    prob = np.zeros((3, 20, 20, 20), np.float32)
    prob[0] = 1.0
    prob[:, 5:12, 5:12, 5:12] = [[[[0]]], [[[1]]], [[[0]]]]  # interior cube 7^3
    prob[:, 15:17, 15:17, 15:17] = [[[[0]]], [[[1]]], [[[0]]]]  # small island
    tight = postprocess(prob, "tight")
    assert not tight[16, 16, 16]
    assert tight[5:12, 5:12, 5:12].all() and tight[4, 8, 8] and not tight[3, 8, 8]
    assert tight.sum() == 7**3 + 6 * 7**2
    prob[:, 4, 5:12, 5:12] = [[[0]], [[0]], [[1]]]  # a boundary face
    ref = postprocess(prob, "pumba")
    assert ref[4, 8, 8] and not ref[3, 8, 8]
    # a model trained without the boundary class: its interior is the whole brain, nothing is added to it
    for method in ("tight", "pumba"):
        alone = postprocess(prob, method, boundary_class=False)
        assert alone.sum() == 7**3 and alone[5:12, 5:12, 5:12].all() and not alone[16, 16, 16]


def test_largest_component_of_empty_is_empty():
    assert not largest_component(np.zeros((4, 4, 4), bool)).any()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_strip_writes_mask_on_the_input_grid_and_leaves_the_input_alone(tmp_path, itk_head, tiny_model):
    image, _ = itk_head
    before = _sha(image)
    mask, out = tmp_path / "mask.nii.gz", tmp_path / "stripped.nii.gz"
    assert (
        main(
            [
                "strip",
                "-i",
                str(image),
                "-m",
                str(mask),
                "-o",
                str(out),
                "--model",
                str(tiny_model),
                "--device",
                "cpu",
                "-q",
            ]
        )
        == 0
    )
    ref = nib.load(image)
    got = nib.load(mask)
    assert got.shape == ref.shape and np.allclose(got.affine, ref.affine)
    assert set(np.unique(np.asarray(got.dataobj))) <= {0, 1}
    assert _sha(image) == before
    assert not list(tmp_path.glob(".*tmp*"))


def test_strip_accepts_mgz_and_a_4d_singleton(tmp_path, tiny_model):
    img = head_phantom((48, 56, 40), (4.0, 4.0, 4.0))
    data = np.asarray(img.dataobj)
    mgz = tmp_path / "head.mgz"
    nib.save(nib.MGHImage(data, img.affine), mgz)
    four = tmp_path / "head4d.nii.gz"
    nib.save(nib.Nifti1Image(data[..., None], img.affine), four)
    for src, dst in ((mgz, tmp_path / "m1.mgz"), (four, tmp_path / "m2.nii.gz")):
        assert main(["strip", "-i", str(src), "-m", str(dst), "--model", str(tiny_model), "-q"]) == 0
        out = nib.load(dst)
        assert out.shape[:3] == data.shape and np.allclose(out.affine, img.affine)


def test_strip_bad_inputs_are_one_line_errors(tmp_path, tiny_model, capsys):
    missing = tmp_path / "nope.nii.gz"
    assert (
        main(
            [
                "strip",
                "-i",
                str(missing),
                "-m",
                str(tmp_path / "m.nii.gz"),
                "--model",
                str(tiny_model),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope.nii.gz: no such file" in err
    empty = tmp_path / "zeros.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 20, 20), np.float32), np.eye(4)), empty)
    assert (
        main(
            [
                "strip",
                "-i",
                str(empty),
                "-m",
                str(tmp_path / "m.nii.gz"),
                "--model",
                str(tiny_model),
            ]
        )
        == 2
    )
    assert "zeros.nii.gz: image is all zero" in capsys.readouterr().err
    assert not (tmp_path / "m.nii.gz").exists()
    multi = tmp_path / "multi.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8, 3), np.float32), np.eye(4)), multi)
    assert (
        main(
            [
                "strip",
                "-i",
                str(multi),
                "-m",
                str(tmp_path / "m.nii.gz"),
                "--model",
                str(tiny_model),
            ]
        )
        == 2
    )
    assert "4-D image with 3 frames" in capsys.readouterr().err


def test_strip_uses_the_shipped_weights_by_default(tmp_path, itk_head):
    from pumba.infer.strip import default_model_path

    assert default_model_path().name == "pumba-v2.pt"
    image, reference = itk_head
    mask = tmp_path / "mask.nii.gz"
    assert main(["strip", "-i", str(image), "-m", str(mask), "--device", "cpu", "-q"]) == 0
    got = np.asarray(nib.load(mask).dataobj) > 0
    ref = np.asarray(nib.load(reference).dataobj) > 0
    assert 2 * (got & ref).sum() / (got.sum() + ref.sum()) > 0.7  # a brain, not noise (MODEL_CARD.md)


def test_export_model_in_half_precision_keeps_predictions(tmp_path, tiny_model):
    from pumba.model.checkpoint import load_model

    out = tmp_path / "half.pt"
    assert main(["export-model", "--checkpoint", str(tiny_model), "--out", str(out), "--half"]) == 0
    assert out.stat().st_size < 0.6 * tiny_model.stat().st_size
    (full, _), (half, info) = load_model(tiny_model), load_model(out)
    assert info["input_size"] == 32
    for a, b in zip(full.parameters(), half.parameters(), strict=True):
        assert torch.allclose(a, b, atol=2e-3)


def test_flip_tta_is_equivariant_and_averages_eight_passes(tiny_model):
    from pumba.infer.predict import flip_sets, predict
    from pumba.model.checkpoint import load_model

    assert len(flip_sets(True)) == 8 and flip_sets(False) == [()]
    model, _ = load_model(tiny_model)
    image = np.random.default_rng(0).random((32, 32, 32), dtype=np.float32)
    cpu = torch.device("cpu")
    plain, tta = predict(model, image, cpu), predict(model, image, cpu, tta=True)
    assert plain.shape == tta.shape == (3, 32, 32, 32)
    assert np.allclose(tta.sum(axis=0), 1.0, atol=1e-5)
    assert not np.allclose(plain, tta)
    # flipping the input flips the averaged output: the 8 flips are a group
    flipped = predict(model, np.ascontiguousarray(image[::-1, :, ::-1]), cpu, tta=True)
    assert np.allclose(flipped[:, ::-1, :, ::-1], tta, atol=1e-5)


def test_validate_scores_models_on_a_manifest(tmp_path, tiny_model, itk_head):
    import pandas as pd

    image, mask = itk_head
    manifest = itk_manifest(tmp_path, image, mask)
    out = tmp_path / "scores.csv"
    argv = ["validate", "--model", str(tiny_model), str(tiny_model), "--manifest", str(manifest)]
    assert main([*argv, "--out", str(out), "--no-tta"]) == 0
    scores = pd.read_csv(out)
    assert list(scores["dataset"]) == ["itk", "itk"] and list(scores["step"]) == [3, 3]
    assert scores["dice"].between(0, 1).all() and (scores["fp_ml"] >= 0).all()
    assert scores["dice"].nunique() == 1  # the same model twice, deterministic
    # the post-processing arm of the ablation: the authors' post-processing instead of ours
    assert main([*argv, "--out", str(out), "--no-tta", "--postprocess", "pumba"]) == 0
    assert pd.read_csv(out)["dice"].between(0, 1).all()
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(out), "--postprocess", "none"])
