"""The quality score without a reference (pumba.infer.qc) and the parts of its validation."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from conftest import head_phantom

from pumba.infer.qc import (
    QC_THRESHOLD,
    dice,
    flip_agreement,
    qc_from_prediction,
    shape_term,
    volume_term,
)
from pumba.infer.qc_validate import DAMAGES, summary_markdown, youden_threshold
from pumba.io import load_volume


def _ball(shape=(40, 40, 40), radius=10.0, centre=None) -> np.ndarray:
    centre = np.asarray(centre if centre is not None else [(n - 1) / 2 for n in shape])
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return np.linalg.norm(grid - centre, axis=-1) <= radius


def test_terms_are_one_for_a_solid_plausible_mask_and_drop_for_pieces_holes_and_odd_volumes():
    ball = _ball()
    assert shape_term(ball) == pytest.approx(1.0)
    pieces = ball | _ball(radius=4, centre=(4, 4, 4))
    assert shape_term(pieces) < 0.95
    holey = ball & ~_ball(radius=6)
    assert shape_term(holey) < 0.9
    assert shape_term(np.zeros((4, 4, 4), bool)) == 0.0
    assert volume_term(0.3) == 1.0 and volume_term(0.0) == 0.0
    assert 0 < volume_term(0.03) < 1 and volume_term(0.01) == 0.0
    assert 0 < volume_term(0.9) < 1 and volume_term(2.5) == 0.0
    assert dice(ball, ball) == 1.0 and dice(ball, ~ball) == 0.0


def test_flip_agreement_falls_when_the_flips_disagree():
    ball = _ball().astype(np.float32)
    assert flip_agreement([ball] * 8) == pytest.approx(1.0)
    assert flip_agreement([ball]) == 1.0  # no flips: nothing to compare
    shifted = [np.roll(ball, 3 * k, axis=0) for k in range(8)]
    assert flip_agreement(shifted) < 0.8


def test_the_score_rates_a_mask_by_its_agreement_with_the_model():
    head = np.where(_ball(radius=16), 0.4, 0.0) + np.where(_ball(radius=10), 0.5, 0.0)
    prob = _ball(radius=10).astype(np.float32)
    flips = [prob[::2, ::2, ::2]] * 8
    good = qc_from_prediction(head, _ball(radius=10), prob, flips, 0.001)
    assert good.score > 0.95 and not good.flag and good.agreement == pytest.approx(1.0)
    assert good.brain_share == pytest.approx(_ball(radius=10).sum() / _ball(radius=16).sum(), rel=1e-6)
    bad = qc_from_prediction(head, _ball(radius=15), prob, flips, 0.001)
    assert bad.score < QC_THRESHOLD and bad.flag
    assert bad.score < good.score
    record = bad.sidecar()
    assert list(record)[:2] == ["score", "flag"] and record["flag"] is True
    assert record["threshold"] == QC_THRESHOLD
    with pytest.raises(ValueError, match="differ in shape"):
        qc_from_prediction(head, _ball((30, 30, 30)), prob, flips, 0.001)


def test_youden_threshold_separates_and_the_summary_names_its_numbers():
    score = np.array([0.2, 0.3, 0.5, 0.85, 0.9, 0.95])
    bad = np.array([True, True, True, False, False, False])
    t = youden_threshold(score, bad)
    assert 0.5 < t < 0.85
    import pandas as pd

    table = pd.DataFrame(
        {
            "dataset": ["d"] * 6,
            "subject": ["s"] * 6,
            "variant": ["original", "original", "noise", "noise", "original", "original"],
            "method": ["a", "early:x", "pumba", "otsu", "b", "c"],
            "dice": [0.5, 0.6, 0.8, 0.93, 0.95, 0.97],
            "score": score,
            "agreement": score,
            "flip_agreement": [1.0] * 6,
            "shape": [1.0] * 6,
            "volume": [1.0] * 6,
        }
    )
    text = summary_markdown(table, 1.0)
    assert "Spearman (score, Dice) **1.000**" in text and "AUC" in text and "**1.000**" in text
    assert "| damaged: noise | 2 | 1 |" in text and "| early-training models | 1 | 1 |" in text


@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_each_damage_keeps_image_and_reference_on_one_grid(tmp_path, name):
    path = tmp_path / "h.nii.gz"
    nib.save(head_phantom((40, 44, 36), (2.0, 2.0, 2.0)), path)
    volume = load_volume(path)
    ref = volume.data > 0.6
    damaged, dref = DAMAGES[name](volume, ref, 0)
    assert damaged.data.shape == dref.shape and damaged.data.dtype == np.float32
    assert dref.any()
    again, _ = DAMAGES[name](volume, ref, 0)
    assert np.array_equal(again.data, damaged.data)  # seeded
    if name == "header-flip":
        assert np.array_equal(damaged.data, volume.data) and damaged.affine[2, 2] == -volume.affine[2, 2]
    else:
        assert not np.array_equal(damaged.data.shape, volume.data.shape) or not np.allclose(
            damaged.data, volume.data
        )
    # the reference stays where the brain is: the damaged image is brighter inside it than outside
    if name not in ("noise", "bias"):
        assert damaged.data[dref].mean() > damaged.data[~dref].mean()
