"""Tests of the two-stage cascade (pumba.infer.cascade): the prior, the crop, the fine stage's training and
model files, stripping with a cascade, and the solid mask (pumba.infer.postprocess.finish_on_input)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import TINY_TRAIN, itk_manifest

from pumba.cli import main
from pumba.infer import cascade
from pumba.infer.postprocess import finish_on_input
from pumba.io import InputError
from pumba.metrics.overlap import dice
from pumba.synth import SynthConfig, generate

TINY_FINE = {**TINY_TRAIN, "stage": "fine", "steps": 3}
"""A fine stage of a few steps: 32^3 crops of 64^3 heads (the tiny whole-head model's grid is 32^3)."""


@pytest.fixture(scope="module")
def tiny_fine(tmp_path_factory):
    from pumba.model.config import TrainConfig
    from pumba.model.train import Trainer

    out = tmp_path_factory.mktemp("tiny_fine")
    return Trainer(TrainConfig.from_dict(TINY_FINE), out, device="cpu", progress=False).run()


@pytest.fixture(scope="module")
def tiny_cascade(tmp_path_factory, tiny_model, tiny_fine):
    from pumba.model.checkpoint import save_cascade

    out = tmp_path_factory.mktemp("tiny_cascade") / "cascade.pt"
    save_cascade(tiny_model, tiny_fine, out)
    return out


def test_prior_doubles_the_grid_and_keeps_the_mask_where_it_was() -> None:
    coarse = torch.zeros((1, 32, 32, 32))
    coarse[:, 8:24, 9:23, 10:22] = 1.0  # brain-sized: a dozen coarse voxels or more across
    prior = cascade.prior_from_coarse(coarse, cascade.PRIOR_SIGMA)
    assert prior.shape == (1, 64, 64, 64)
    assert float(prior.min()) >= 0.0 and float(prior.max()) <= 1.0
    up = coarse[0].repeat_interleave(2, 0).repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert dice(prior[0].numpy() > 0.5, up.numpy() > 0.5) > 0.9


def test_synthetic_prior_is_seeded_and_stays_near_the_mask() -> None:
    _, mask = generate([5], SynthConfig(size=64))
    a = cascade.synthetic_prior(mask[0], np.random.default_rng(1), (0.5, 1.5), 1)
    b = cascade.synthetic_prior(mask[0], np.random.default_rng(1), (0.5, 1.5), 1)
    assert torch.equal(a, b)
    assert a.shape == (1, 64, 64, 64)
    scores = [
        dice(
            cascade.synthetic_prior(mask[0], np.random.default_rng(s), (0.5, 1.5), 1)[0].numpy() > 0.5,
            mask[0].numpy() > 0,
        )
        for s in range(6)
    ]
    # a coarse voxel of growth or shift moves the edge by 2 fine voxels: near, but not the mask
    assert min(scores) > 0.7 and max(scores) < 0.999


def test_crop_box_holds_the_prior_and_fits_the_network() -> None:
    prior = np.zeros((128, 128, 128), np.float32)
    prior[30:100, 20:90, 40:110] = 1.0
    box = cascade.crop_box(prior, 32)
    for sl, (lo, hi) in zip(box, [(30, 100), (20, 90), (40, 110)], strict=True):
        assert (sl.stop - sl.start) % 32 == 0 and sl.start >= 0 and sl.stop <= 128
        assert sl.start <= lo - cascade.CROP_MARGIN or sl.start == 0
        assert sl.stop >= hi + cascade.CROP_MARGIN or sl.stop == 128
    assert cascade.crop_box(np.zeros((64, 64, 64)), 32) == (slice(0, 64),) * 3


def test_fine_stage_trains_and_is_refused_where_a_whole_head_model_is_needed(tiny_fine, tmp_path) -> None:
    from pumba.model.checkpoint import load_model

    model, info = load_model(tiny_fine, stage="fine")
    assert info["stage"] == "fine" and info["grid_size"] == 64 and info["input_size"] == 32
    assert model.in_channels == 2 and model.n_classes == 2
    header = (tiny_fine.parent / "train_log.csv").read_text().splitlines()[0]
    assert header == "step,seconds,loss,dice_brain,dice_edge,lr,samples_generated"
    with pytest.raises(InputError, match=r"fine-stage model.*pumba cascade"):
        load_model(tiny_fine)


def test_cascade_needs_a_coarse_and_a_fine_stage(tiny_model, tiny_fine, tmp_path) -> None:
    from pumba.model.checkpoint import load_model, save_cascade, save_model

    with pytest.raises(InputError, match="a fine-stage model, expected a coarse-stage one"):
        save_cascade(tiny_fine, tiny_fine, tmp_path / "x.pt")
    with pytest.raises(InputError, match="a coarse-stage model, expected a fine-stage one"):
        save_cascade(tiny_model, tiny_model, tmp_path / "x.pt")
    model, info = load_model(tiny_fine, stage="fine")
    save_model(model, tmp_path / "f48.pt", info["input_size"], info["fov_mm"], {}, stage="fine", grid_size=48)
    with pytest.raises(InputError, match="is not twice the coarse model's"):
        save_cascade(tiny_model, tmp_path / "f48.pt", tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_strip_with_a_cascade_gives_a_solid_mask_on_the_input_grid(tiny_cascade, itk_head, tmp_path) -> None:
    from pumba.model.checkpoint import load_model

    _, info = load_model(tiny_cascade)
    assert info["refine"][1]["stage"] == "fine"
    image, _ = itk_head
    out = tmp_path / "mask.nii.gz"
    assert (
        main(["strip", "-i", str(image), "-m", str(out), "--model", str(tiny_cascade), "--threads", "1"]) == 0
    )
    mask = nib.load(out)
    assert mask.shape == nib.load(image).shape
    assert np.allclose(mask.affine, nib.load(image).affine)
    data = np.asarray(mask.dataobj) > 0
    if data.any():  # a three-step model may find nothing; when it does, the mask is solid
        from scipy import ndimage

        assert ndimage.label(data, np.ones((3, 3, 3)))[1] == 1
        assert np.array_equal(ndimage.binary_fill_holes(data), data)


def test_cascade_cli_writes_a_loadable_file(tiny_model, tiny_fine, tmp_path) -> None:
    from pumba.model.checkpoint import load_model

    out = tmp_path / "c.pt"
    assert main(["cascade", "--coarse", str(tiny_model), "--fine", str(tiny_fine), "--out", str(out)]) == 0
    _, info = load_model(out)
    assert "refine" in info and info["grid_size"] == 32
    assert main(["export-model", "--checkpoint", str(tiny_fine), "--out", str(tmp_path / "f.pt")]) == 0
    assert load_model(tmp_path / "f.pt", stage="fine")[1]["grid_size"] == 64


def _tube_mask() -> np.ndarray:
    """A block with a tube through it along the last axis: a hole in every slice across that axis, open in
    3-D."""
    mask = np.zeros((20, 20, 12), bool)
    mask[4:16, 4:16, 2:10] = True
    mask[9:11, 9:11, :] = False
    return mask


def test_thick_slice_scans_get_holes_filled_in_every_slice() -> None:
    thick = finish_on_input(_tube_mask().astype(np.float32), (1.0, 1.0, 5.0))
    assert thick[9:11, 9:11, 2:10].all()
    iso = finish_on_input(_tube_mask().astype(np.float32), (1.0, 1.0, 1.0))
    assert not iso[9:11, 9:11, 2:10].any()  # open to the outside in 3-D: not a hole
    # across another axis, the tube is not a hole within those slices
    other = finish_on_input(_tube_mask().astype(np.float32), (5.0, 1.0, 1.0))
    assert not other[9:11, 9:11, 2:10].any()


def test_solid_mask_is_one_component_without_cavities() -> None:
    mask = np.zeros((20, 20, 20), np.float32)
    mask[2:12, 2:12, 2:12] = 1
    mask[5:8, 5:8, 5:8] = 0  # a cavity
    mask[15:18, 15:18, 15:18] = 1  # a second, smaller component
    out = finish_on_input(mask, (1.0, 1.0, 1.0))
    assert out[5:8, 5:8, 5:8].all() and not out[15:18, 15:18, 15:18].any()


def test_validate_scores_the_cascade_of_one_model_with_each_fine_stage(
    tmp_path, tiny_model, tiny_fine, itk_head
):
    import pandas as pd

    image, mask = itk_head
    manifest = itk_manifest(tmp_path, image, mask)
    out = tmp_path / "scores.csv"
    argv = ["validate", "--model", str(tiny_model), "--fine", str(tiny_fine), str(tiny_fine)]
    assert main([*argv, "--manifest", str(manifest), "--out", str(out), "--no-tta"]) == 0
    scores = pd.read_csv(out)
    assert list(scores["model"]) == [str(tiny_fine)] * 2 and list(scores["step"]) == [3, 3]
    assert scores["dice"].between(0, 1).all()
    two = [*argv[:2], str(tiny_model), *argv[2:], "--manifest", str(manifest), "--out", str(out)]
    assert main(two) == 2  # "--fine needs exactly one whole-head --model", on stderr


def test_refine_adds_no_brain_far_from_the_coarse_mask(tiny_fine) -> None:
    from pumba.model.checkpoint import load_model

    model, _ = load_model(tiny_fine, stage="fine")
    coarse = np.zeros((32, 32, 32), bool)
    coarse[10:22, 9:23, 11:21] = True
    image = np.random.default_rng(0).random((64, 64, 64), dtype=np.float32)
    prob = cascade.refine(model, image, coarse, torch.device("cpu"))
    prior = cascade.prior_from_coarse(torch.from_numpy(coarse.astype(np.float32))[None], cascade.PRIOR_SIGMA)
    far = prior[0].numpy() <= cascade.PRIOR_LEVEL
    assert far.any() and not prob[far].any()
    assert prob.shape == (64, 64, 64) and prob.min() >= 0 and prob.max() <= 1
