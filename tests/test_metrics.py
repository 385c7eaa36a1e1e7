"""Metrics: hand-computed overlap and HD95 cases, agreement with MONAI, tables and their CLI."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from pumba.io import InputError, save_array
from pumba.metrics import (
    dice,
    evaluate_pair,
    hd95,
    sensitivity,
    specificity,
    summarise,
    volume_difference,
)
from pumba.metrics.distance import surface
from pumba.metrics.tables import PER_SUBJECT_COLUMNS, SUMMARY_COLUMNS


def _line(ones: list[int], n: int = 10) -> np.ndarray:
    a = np.zeros(n, dtype=bool)
    a[ones] = True
    return a


def test_overlap_hand_computed():
    pred = _line([0, 1, 2])
    ref = _line([1, 2, 3, 4])
    # TP 2, FP 1, FN 2, TN 5
    assert dice(pred, ref) == pytest.approx(4 / 7)
    assert sensitivity(pred, ref) == pytest.approx(2 / 4)
    assert specificity(pred, ref) == pytest.approx(5 / 6)
    diff_ml, diff_pct = volume_difference(pred, ref, voxel_volume_mm3=2000.0)
    assert diff_ml == pytest.approx(-2.0)  # 3 - 4 voxels of 2 ml
    assert diff_pct == pytest.approx(-25.0)


def test_empty_mask_rules():
    empty = np.zeros((6, 6, 6), dtype=bool)
    blob = empty.copy()
    blob[2:4, 2:4, 2:4] = True
    assert dice(empty, empty) == 1.0
    assert hd95(empty, empty, (1, 1, 1)) == 0.0
    assert dice(blob, empty) == 0.0 and dice(empty, blob) == 0.0
    assert math.isnan(hd95(blob, empty, (1, 1, 1)))
    assert math.isnan(hd95(empty, blob, (1, 1, 1)))
    assert math.isnan(sensitivity(blob, empty))
    assert math.isnan(volume_difference(blob, empty, 1.0)[1])
    assert math.isnan(specificity(blob, np.ones_like(blob)))


def test_surface_of_a_cube_and_at_the_border():
    a = np.zeros((9, 9, 9), dtype=bool)
    a[2:7, 2:7, 2:7] = True
    assert surface(a).sum() == 5**3 - 3**3
    # A mask filling the whole array: only the border voxels are surface.
    assert surface(np.ones((4, 5, 6), dtype=bool)).sum() == 4 * 5 * 6 - 2 * 3 * 4


def test_hd95_single_voxels_anisotropic():
    spacing = (1.0, 0.5, 2.5)
    ref = np.zeros((12, 12, 12), dtype=bool)
    ref[5, 5, 5] = True
    pred = np.zeros_like(ref)
    pred[5, 5, 8] = True
    assert hd95(pred, ref, spacing) == pytest.approx(3 * 2.5)
    # pred -> ref distances {0, 4 x 0.5 mm}: 95th percentile 0.95 x 2 = 1.9 (linear);
    # ref -> pred distances {0}. The larger direction wins, whichever argument comes first.
    pred = ref.copy()
    pred[5, 9, 5] = True
    assert hd95(pred, ref, spacing) == pytest.approx(1.9)
    assert hd95(ref, pred, spacing) == pytest.approx(1.9)


def test_hd95_concentric_boxes_anisotropic():
    """Reference box [10, 20)^3, prediction grown 4 mm on every side at spacing (1, 2, 4) mm.

    Every reference surface voxel is 4 mm from the nearest prediction face. A prediction surface
    voxel p lies outside the reference box, whose nearest point is the voxel clamp(p, 10, 19):
    its distance is |spacing * (p - clamp(p))|.
    """
    spacing = np.array([1.0, 2.0, 4.0])
    margin = (4 / spacing).astype(int)  # 4, 2, 1 voxels
    ref = np.zeros((40, 40, 40), dtype=bool)
    ref[10:20, 10:20, 10:20] = True
    lo, hi = 10 - margin, 20 + margin
    pred = np.zeros_like(ref)
    pred[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True

    coords = np.argwhere(pred)
    on_face = ((coords == lo) | (coords == hi - 1)).any(axis=1)
    p = coords[on_face]
    d_pred = np.linalg.norm(spacing * (p - np.clip(p, 10, 19)), axis=1)
    expected = max(np.percentile(d_pred, 95), 4.0)
    assert 4.0 < expected < 4.0 * math.sqrt(3)
    assert hd95(pred, ref, spacing) == pytest.approx(expected)
    assert hd95(ref, pred, spacing) == pytest.approx(expected)


def _blob(rng: np.random.Generator, shape=(40, 36, 30)) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=4)
    return field > np.percentile(field, 70)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MONAI deprecates its own argument
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hd95_agrees_with_monai(seed: int):
    torch = pytest.importorskip("torch")
    from monai.metrics import compute_hausdorff_distance

    rng = np.random.default_rng(seed)
    pred, ref = _blob(rng), _blob(rng)
    spacing = (1.0, 1.5, 3.0)
    ours = hd95(pred, ref, spacing)
    theirs = compute_hausdorff_distance(
        torch.from_numpy(pred[None, None]),
        torch.from_numpy(ref[None, None]),
        include_background=True,
        percentile=95,
        spacing=spacing,
    ).item()
    assert ours > 3.0  # the blobs differ: a real distance, not a degenerate 0
    assert abs(ours - theirs) <= max(spacing)


def _write_mask(path, mask: np.ndarray, affine: np.ndarray | None = None) -> str:
    save_array(mask.astype(np.uint8), np.diag([2.0, 2.0, 3.0, 1.0]) if affine is None else affine, path)
    return str(path)


def _cube(lo: int, hi: int, shape=(20, 20, 20)) -> np.ndarray:
    a = np.zeros(shape, dtype=bool)
    a[lo:hi, lo:hi, lo:hi] = True
    return a


def test_volumes_on_a_sheared_grid_use_the_affine_determinant(tmp_path):
    sheared = np.diag([2.0, 2.0, 3.0, 1.0])
    sheared[0, 1] = 1.5  # voxel axis j leans along x: column norms 2, 2.5, 3, but |det| 12 mm^3
    ref = _write_mask(tmp_path / "ref.nii.gz", _cube(5, 15), affine=sheared)
    m = evaluate_pair(ref, ref)
    assert m["volume_ref_ml"] == pytest.approx(1000 * 12 / 1000)  # not 1000 * 15 / 1000


def test_evaluate_pair_values_and_grid_check(tmp_path):
    ref = _write_mask(tmp_path / "ref.nii.gz", _cube(5, 15))
    pred = _write_mask(tmp_path / "pred.nii.gz", _cube(5, 13))
    m = evaluate_pair(pred, ref)
    voxel_ml = 2 * 2 * 3 / 1000
    assert m["dice"] == pytest.approx(2 * 512 / (512 + 1000))
    assert m["volume_ref_ml"] == pytest.approx(1000 * voxel_ml)
    assert m["volume_pred_ml"] == pytest.approx(512 * voxel_ml)
    assert m["volume_diff_pct"] == pytest.approx(-48.8)
    assert m["sensitivity"] == pytest.approx(0.512)
    assert m["specificity"] == 1.0
    assert m["hd95_mm"] > 0

    shifted = np.diag([2.0, 2.0, 3.0, 1.0])
    shifted[0, 3] = 5.0
    moved = _write_mask(tmp_path / "moved.nii.gz", _cube(5, 13), affine=shifted)
    with pytest.raises(InputError, match=r"moved\.nii\.gz.*ref\.nii\.gz"):
        evaluate_pair(moved, ref)


def test_summarise_counts_failures_and_excludes_them():
    rows = [
        ("a", "d1", "human", "ok", 0.8, 2.0, 10.0, 100.0),
        ("a", "d1", "human", "ok", 0.9, math.nan, 20.0, 300.0),
        ("a", "d1", "human", "failed", math.nan, math.nan, 99.0, 900.0),
        ("b", "d1", "human", "ok", 0.5, 4.0, 1.0, 50.0),
    ]
    cols = ["method", "dataset", "species", "status", "dice", "hd95_mm", "seconds", "peak_rss_mb"]
    table = pd.DataFrame(rows, columns=cols)
    s = summarise(table)
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    a = s.set_index("method").loc["a"]
    assert (a["n"], a["n_failed"]) == (3, 1)
    assert a["dice_mean"] == pytest.approx(0.85)
    assert a["dice_std"] == pytest.approx(math.sqrt(0.005))
    assert a["hd95_mean"] == pytest.approx(2.0)  # the ok run with a missing HD95 is left out
    assert a["seconds_mean"] == pytest.approx(15.0)
    assert a["peak_rss_mb_max"] == pytest.approx(300.0)
    b = s.set_index("method").loc["b"]
    assert (b["n"], b["n_failed"]) == (1, 0) and math.isnan(b["dice_std"])


def _cli(argv: list[str]) -> int:
    from pumba.metrics.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_evaluate_and_summarise_cli(tmp_path):
    ref_a = _write_mask(tmp_path / "a_ref.nii.gz", _cube(5, 15))
    ref_b = _write_mask(tmp_path / "b_ref.nii.gz", _cube(4, 16))
    manifest = tmp_path / "m.tsv"
    manifest.write_text(
        "dataset\tsubject\timage\tmask\tspecies\tmodality\tpathology\tsource_id\n"
        f"ds\t001\t{ref_a}\t{ref_a}\thuman\tT1w\tnone\t001\n"
        f"ds\t002\t{ref_b}\t{ref_b}\thuman\tT1w\tnone\t002\n"
    )
    pred_ok = _write_mask(tmp_path / "p1.nii.gz", _cube(5, 15))
    pred_bad_grid = _write_mask(tmp_path / "p2.nii.gz", _cube(4, 16, shape=(20, 20, 21)))

    def record(name, subject, status, mask, error=None):
        path = tmp_path / f"{name}.json"
        path.write_text(
            json.dumps(
                {
                    "method": "m1" if name != "r3" else "m2",
                    "dataset": "ds",
                    "subject": subject,
                    "image": "x",
                    "mask": mask,
                    "status": status,
                    "error": error,
                    "seconds": 2.5,
                    "peak_rss_mb": 123.0,
                    "returncode": 0 if status == "ok" else -11,
                    "qc": {"score": 0.42, "flag": True} if name == "r1" else None,
                }
            )
        )
        return str(path)

    records = [
        record("r1", "001", "ok", pred_ok),
        record("r2", "002", "ok", pred_bad_grid),
        record("r3", "001", "failed", None, "crashed: killed by SIGSEGV"),
    ]
    out = tmp_path / "per_subject.csv"
    assert _cli(["evaluate", "--records", *records, "--manifest", str(manifest), "--out", str(out)]) == 0
    table = pd.read_csv(out, dtype={"subject": str})
    assert list(table.columns) == list(PER_SUBJECT_COLUMNS)
    r1, r2, r3 = (table.iloc[i] for i in range(3))
    assert (r1["status"], r1["dice"], r1["hd95_mm"], r1["subject"]) == ("ok", 1.0, 0.0, "001")
    assert (r1["qc_score"], r1["qc_flag"]) == (0.42, True) and math.isnan(r3["qc_score"])
    assert r2["status"] == "failed" and "grid" in r2["error"] and math.isnan(r2["dice"])
    assert r3["status"] == "failed" and r3["error"] == "crashed: killed by SIGSEGV"
    assert r3["seconds"] == 2.5 and math.isnan(r3["dice"])

    summary = tmp_path / "summary.csv"
    assert _cli(["summarise", "--inputs", str(out), "--out", str(summary)]) == 0
    s = pd.read_csv(summary).set_index("method")
    assert (s.loc["m1", "n"], s.loc["m1", "n_failed"], s.loc["m1", "dice_mean"]) == (2, 1, 1.0)
    assert (s.loc["m2", "n"], s.loc["m2", "n_failed"]) == (1, 1)

    # A record whose subject is in no manifest is a user error naming the record.
    stray = record("r4", "999", "ok", pred_ok)
    with pytest.raises(InputError, match=r"r4\.json"):
        _cli(["evaluate", "--records", stray, "--manifest", str(manifest), "--out", str(out)])
