"""Tests of pumba.figures: metric plots, training curves, overlay montages, synthetic and switch galleries."""

from __future__ import annotations

import argparse
import math
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from pumba.figures import cli as fig_cli
from pumba.figures.gallery import find_synth_pairs, gallery_figure, label_rgba, synth_gallery
from pumba.figures.montage import (
    REFERENCE_COLOR,
    centre_of_mass,
    crop_box,
    montage_figure,
    overlay_montage,
    scale_length,
    to_ras,
)
from pumba.figures.plots import (
    METRICS,
    _value_range,
    metric_figure,
    plot_metric,
    plot_training,
    read_training_log,
    save_figure,
    training_figure,
)
from pumba.figures.switch_gallery import (
    SHOWN_VIEWS,
    Switch,
    load_base,
    read_switches,
    switch_configs,
    switch_gallery,
    switch_gallery_figure,
)
from pumba.io import InputError

ROOT = Path(__file__).resolve().parents[1]
SWITCH_FILE = ROOT / "workflow" / "resources" / "switch_gallery.yaml"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk; fails if the file is not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def leftovers(directory: Path) -> list[str]:
    """Temporary files left by an interrupted atomic write."""
    return [p.name for p in directory.iterdir() if ".tmp" in p.name]


# ---------------------------------------------------------------------------------------------
# per-subject metrics


def per_subject_table() -> pd.DataFrame:
    """Two datasets (one with a single subject), three methods, two failed runs, one empty mask."""
    rows = []
    for dataset, species, subjects in (
        ("colin27", "human", ["s1"]),
        ("mouse", "mouse", ["a", "b"]),
    ):
        for method, base in (("pumba", 0.95), ("otsu", 0.80), ("bet", 0.90)):
            for i, subject in enumerate(subjects):
                failed = method == "bet" and dataset == "mouse"
                empty = method == "otsu" and dataset == "colin27"
                rows.append(
                    {
                        "method": method,
                        "dataset": dataset,
                        "subject": subject,
                        "species": species,
                        "status": "failed" if failed else "ok",
                        "error": "segfault" if failed else "",
                        "dice": np.nan if failed else (0.0 if empty else base - 0.01 * i),
                        "hd95_mm": np.nan if failed or empty else 2.0 + i,
                        "seconds": np.nan if failed else 10.0,
                    }
                )
    return pd.DataFrame(rows)


def band_points(fig: Figure, band: float) -> int:
    """Number of scatter points drawn at the failure band's height."""
    ax = fig.axes[0]
    count = 0
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets())
        if offsets.ndim == 2 and len(offsets):
            count += int(np.isclose(offsets[:, 1], band).sum())
    return count


def test_value_range_hand_computed():
    # Dice in [0.8, 0.9]: the top reaches 0.92, span 0.12, pad 0.006; band 0.14 span below the data
    lo, hi, band = _value_range(np.array([0.8, 0.9]), METRICS["dice"])
    assert hi == pytest.approx(0.926)
    assert band == pytest.approx(0.8 - 0.006 - 0.0168)
    assert lo == pytest.approx(band - 0.0096)
    # HD95 in [2, 10] mm: read from zero, band above the data
    lo, hi, band = _value_range(np.array([2.0, 10.0]), METRICS["hd95_mm"])
    assert lo == pytest.approx(-0.5)
    assert band == pytest.approx(10.0 + 0.5 + 1.4)
    assert hi > band


def test_metric_figure_shows_and_counts_failures():
    table = per_subject_table()
    fig = metric_figure(table, "dice")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "failed"
    band = ax.get_yticks()[-1]
    assert band < 0.0  # Dice: below every value, including the 0.0 of an empty prediction
    assert band_points(fig, band) == 2  # the two failed bet runs on the mouse
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "bet (2 failed)" in legend
    assert "run failed, no mask (n = 2)" in legend
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["colin27\n(human)\nn = 1", "mouse\n(mouse)\nn = 2"]


def test_metric_figure_hd95_nan_is_drawn_above():
    fig = metric_figure(per_subject_table(), "hd95")
    ax = fig.axes[0]
    band = ax.get_yticks()[-1]
    assert band > 3.0  # above the largest HD95
    # 2 failed runs as 'x' and 1 ok run with an undefined HD95 (empty mask) as a triangle
    assert band_points(fig, band) == 3
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "otsu (1 no value)" in legend
    assert "ran, metric undefined (n = 1)" in legend


def test_plot_metric_writes_png(tmp_path):
    out = tmp_path / "dice.png"
    plot_metric(per_subject_table(), "dice", out)
    again = tmp_path / "again.png"
    plot_metric(per_subject_table(), "dice", again)
    assert out.read_bytes() == again.read_bytes()  # seeded jitter: the same bytes every time
    width, height = png_size(out)
    assert 700 < width < 3000 and 400 < height < 1200
    assert out.stat().st_size > 20_000
    assert leftovers(tmp_path) == []


def test_plot_metric_all_failed_and_single_value(tmp_path):
    table = per_subject_table()
    only_failed = table[table["status"] == "failed"]
    plot_metric(only_failed, "dice", tmp_path / "failed.png")
    assert png_size(tmp_path / "failed.png")[0] > 500
    single = table[(table["method"] == "pumba") & (table["dataset"] == "colin27")]
    fig = metric_figure(single, "dice")
    lo, hi = fig.axes[0].get_ylim()
    assert lo < 0.95 < hi and hi - lo < 0.2  # a usable range around one value


def test_metric_errors():
    table = per_subject_table()
    with pytest.raises(InputError, match="unknown"):
        metric_figure(table, "accuracy")
    with pytest.raises(InputError, match="missing column"):
        metric_figure(table.drop(columns=["status"]), "dice")
    with pytest.raises(InputError, match="no rows"):
        metric_figure(table.iloc[:0], "dice")


# ---------------------------------------------------------------------------------------------
# training curves


def write_log(path: Path, n: int = 120, lr_varies: bool = True) -> None:
    step = np.arange(1, n + 1)
    dice_i = 0.95 - 0.5 * np.exp(-step / 30)
    dice_b = 0.8 - 0.5 * np.exp(-step / 40)
    lr = 1e-3 * (0.5 + 0.5 * np.cos(np.pi * step / n)) if lr_varies else np.full(n, 1e-4)
    log = pd.DataFrame(
        {
            "step": step,
            "seconds": step * 1.5,
            "loss": 1 - dice_i - dice_b,
            "dice_interior": dice_i,
            "dice_boundary": dice_b,
            "lr": lr,
            "samples_generated": step // 4,
        }
    )
    log.to_csv(path, index=False)


def test_read_training_log_resumed_run(tmp_path):
    path = tmp_path / "train.csv"
    # a resumed run re-logs steps 2 and 3 and repeats the header line
    path.write_text(
        "step,seconds,loss,dice_interior,dice_boundary,lr\n"
        "1,1.0,0.5,0.3,0.2,1e-3\n2,2.0,0.4,0.4,0.2,1e-3\n3,3.0,0.3,0.5,0.2,1e-3\n"
        "step,seconds,loss,dice_interior,dice_boundary,lr\n"
        "2,2.5,0.35,0.45,0.2,1e-3\n3,3.5,0.25,0.55,0.2,1e-3\n"
    )
    log = read_training_log(path)
    assert log["step"].tolist() == [1, 2, 3]
    assert log["loss"].tolist() == [0.5, 0.35, 0.25]


def test_training_figure_panels_and_title(tmp_path):
    path = tmp_path / "train.csv"
    write_log(path, lr_varies=True)
    fig = training_figure(read_training_log(path))
    assert len(fig.axes) == 3
    assert fig.get_suptitle().startswith("Training: 120 steps, 3.0 min wall time")
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels == ["interior", "boundary"]
    write_log(path, lr_varies=False)
    assert len(training_figure(read_training_log(path)).axes) == 2


def test_plot_training_writes_png_and_rejects_bad_logs(tmp_path):
    path = tmp_path / "train.csv"
    write_log(path)
    out = tmp_path / "training.png"
    plot_training(path, out)
    width, height = png_size(out)
    assert width > 1000 and 300 < height < 800
    bad = tmp_path / "bad.csv"
    bad.write_text("step,loss\n1,0.5\n")
    with pytest.raises(InputError, match="dice_"):
        plot_training(bad, tmp_path / "bad.png")
    with pytest.raises(InputError, match="no such file"):
        plot_training(tmp_path / "missing.csv", tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


# ---------------------------------------------------------------------------------------------
# montage


def ellipsoid(shape: tuple[int, int, int], radii: tuple[float, float, float], shift=(0, 0, 0)):
    grid = np.indices(shape).astype(float)
    centre = [(n - 1) / 2 + s for n, s in zip(shape, shift, strict=True)]
    dist = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
    return dist <= 1.0


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def test_to_ras_keeps_world_positions():
    # LSA voxel axes with 2 x 2 x 3 mm voxels, as the itk-kmeans head
    affine = np.array([[-2.0, 0, 0, 10], [0, 0, 3.0, -20], [0, 2.0, 0, 5], [0, 0, 0, 1]])
    data = np.zeros((5, 6, 7), dtype=np.float32)
    data[1, 2, 3] = 1.0
    ras, ras_affine = to_ras(data, affine)
    assert ras.shape == (5, 7, 6)
    assert np.allclose(ras_affine[:3, :3], np.diag([2.0, 3.0, 2.0]))  # RAS, positive diagonal
    (index,) = np.argwhere(ras == 1.0)
    assert np.allclose(ras_affine @ [*index, 1], affine @ [1, 2, 3, 1])


def test_centre_crop_and_scale_bar():
    mask = np.zeros((20, 20, 20), dtype=bool)
    mask[4:10, 6:8, 10:20] = True
    assert centre_of_mass(mask) == (6, 6, 14)  # (4+9)/2 = 6.5 rounds to even
    assert crop_box([mask], margin=0.5) == (slice(1, 13), slice(5, 9), slice(5, 20))
    assert crop_box([np.zeros((4, 5, 6), dtype=bool)]) == (slice(0, 4), slice(0, 5), slice(0, 6))
    assert scale_length(230.0) == 20.0
    assert scale_length(16.0) == 2.0
    assert scale_length(3.0) == 0.5


@pytest.fixture
def mouse_like(tmp_path) -> dict[str, Path]:
    """A 0.125 x 0.125 x 0.75 mm slab (48 x 40 x 12) with a brain filling most of it."""
    shape = (48, 40, 12)
    affine = np.diag([0.125, 0.125, 0.75, 1.0])
    head = ellipsoid(shape, (26, 22, 8))
    brain = ellipsoid(shape, (17, 14, 5.5))
    rng = np.random.default_rng(0)
    image = (100 * head + 50 * brain + rng.normal(0, 5, shape)).astype(np.float32)
    good = (brain | np.roll(brain, 2, axis=0)).astype(np.uint8)
    return {
        "image": write_nifti(tmp_path / "image.nii.gz", image, affine),
        "reference": write_nifti(tmp_path / "ref.nii.gz", brain.astype(np.uint8), affine),
        "good": write_nifti(tmp_path / "good.nii", good, affine),
        "dir": tmp_path,
    }


def test_montage_anisotropic_geometry_and_failed_method(mouse_like):
    fig = montage_figure(
        mouse_like["image"],
        {"good": mouse_like["good"], "broken": None},
        mouse_like["reference"],
        title="mouse",
    )
    sagittal, coronal, axial = fig.axes[:3]
    # the brain's box widened by 20 % covers the whole slab: panels span the grid in mm
    assert sagittal.get_xlim() == pytest.approx((40 * 0.125, 0.0))  # anterior on the left
    assert sagittal.get_ylim() == pytest.approx((0.0, 12 * 0.75))
    assert coronal.get_xlim() == pytest.approx((0.0, 48 * 0.125))
    assert axial.get_ylim() == pytest.approx((0.0, 40 * 0.125))
    for ax in (sagittal, coronal, axial):
        assert ax.get_aspect() == 1.0  # one mm is as long across as up
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0] == "reference"
    assert texts[1].startswith("good (Dice 0.")
    assert texts[2] == "broken: failed, no mask"
    assert "0.125 x 0.125 x 0.75 mm" in fig.get_suptitle()


def test_montage_outlines_follow_voxel_edges(tmp_path):
    # a box of voxels x 5..14, y 6..13, z 3..6 on a 0.5 x 0.5 x 2 mm grid; the crop adds 20 % of the
    # box per side: x from 3, z from 2. The coronal outline must run on the box's voxel edges.
    shape, zooms = (20, 20, 10), (0.5, 0.5, 2.0)
    affine = np.diag([*zooms, 1.0])
    ref = np.zeros(shape, np.uint8)
    ref[5:15, 6:14, 3:7] = 1
    image = write_nifti(tmp_path / "i.nii.gz", ref.astype(np.float32) * 100, affine)
    reference = write_nifti(tmp_path / "r.nii.gz", ref, affine)
    coronal = montage_figure(image, {}, reference).axes[1]
    (outline,) = [
        c for c in coronal.collections if np.allclose(c.get_edgecolor()[0], to_rgba(REFERENCE_COLOR))
    ]
    vertices = np.concatenate([p.vertices for p in outline.get_paths()])
    assert vertices[:, 0].min() == pytest.approx((5 - 3) * 0.5, abs=1e-6)
    assert vertices[:, 0].max() == pytest.approx((15 - 3) * 0.5, abs=1e-6)
    assert vertices[:, 1].min() == pytest.approx((3 - 2) * 2.0, abs=1e-6)
    assert vertices[:, 1].max() == pytest.approx((7 - 2) * 2.0, abs=1e-6)


def test_overlay_montage_writes_png(mouse_like):
    out = mouse_like["dir"] / "montage.png"
    overlay_montage(mouse_like["image"], {"good": mouse_like["good"]}, mouse_like["reference"], out, "t")
    width, height = png_size(out)
    assert 1000 < width < 2500 and 400 < height < 2500  # two rows: the reference, then the method
    assert out.stat().st_size > 20_000


def test_montage_mask_off_grid_is_an_error(mouse_like, tmp_path):
    other = write_nifti(tmp_path / "other.nii.gz", np.ones((48, 40, 12), np.uint8), np.eye(4))
    out = tmp_path / "montage.png"
    with pytest.raises(
        InputError, match=r"other\.nii\.gz: mask of m grid .* does not match the image .*image\.nii\.gz"
    ):
        overlay_montage(mouse_like["image"], {"m": other}, mouse_like["reference"], out)
    assert not out.exists() and leftovers(tmp_path) == []


def test_montage_real_head_if_installed(tmp_path):
    data = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
    image, ref = data / "KmeansTest_T1UCharRaw.nii.gz", data / "KmeansTest_T1RawSkullStrip.nii.gz"
    if not image.exists():
        pytest.skip("insighttoolkit5-examples not installed")
    fig = montage_figure(image, {"failed": None}, ref)
    # LSA 128 x 128 x 62 at 2 x 2 x 3 mm: the axial panel is y (the 3 mm axis) tall
    axial = fig.axes[2]
    assert (axial.get_ylim()[1] / 3.0) == pytest.approx(round(axial.get_ylim()[1] / 3.0))


# ---------------------------------------------------------------------------------------------
# synthetic gallery


def write_synth(directory: Path, n: int, size: int = 24, bad_label: bool = False) -> None:
    directory.mkdir(exist_ok=True)
    affine = np.diag([256 / size] * 3 + [1.0])
    rng = np.random.default_rng(1)
    brain = ellipsoid((size,) * 3, (size / 3,) * 3)
    label = brain.astype(np.uint8)
    label[brain & ~ellipsoid((size,) * 3, (size / 3 - 1.5,) * 3)] = 2
    if bad_label:
        label[0, 0, 0] = 3
    for i in range(n):
        image = np.clip(rng.normal(0.5, 0.2, (size,) * 3), 0, 1).astype(np.float32)
        write_nifti(directory / f"synth_{i:04d}_image.nii.gz", image, affine)
        write_nifti(directory / f"synth_{i:04d}_label.nii.gz", label, affine)


def test_find_synth_pairs(tmp_path):
    write_synth(tmp_path / "s", 3)
    pairs = find_synth_pairs(tmp_path / "s", 2)
    assert [(a.name, b.name) for a, b in pairs] == [
        ("synth_0000_image.nii.gz", "synth_0000_label.nii.gz"),
        ("synth_0001_image.nii.gz", "synth_0001_label.nii.gz"),
    ]
    (tmp_path / "s" / "synth_0002_label.nii.gz").unlink()
    with pytest.raises(InputError, match=r"synth_0002_label\.nii\.gz is missing"):
        find_synth_pairs(tmp_path / "s")
    with pytest.raises(InputError, match="no synthetic samples"):
        find_synth_pairs(tmp_path)


def test_label_rgba_colours():
    rgba = label_rgba(np.array([[0, 1, 2]]))
    assert rgba[0, 0, 3] == 0.0  # background transparent
    assert rgba[0, 1, 3] == pytest.approx(0.35) and rgba[0, 2, 3] == pytest.approx(0.75)
    assert not np.allclose(rgba[0, 1, :3], rgba[0, 2, :3])


def test_synth_gallery_writes_png(tmp_path):
    write_synth(tmp_path / "s", 3)
    pairs = find_synth_pairs(tmp_path / "s")
    fig = gallery_figure(pairs)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[:3] == ["synth_0000: sagittal", "coronal", "axial"]
    out = tmp_path / "gallery.png"
    synth_gallery(pairs, out)
    width, height = png_size(out)
    assert 1000 < width < 2500 and 400 < height < 2500  # two rows: the reference, then the method


def test_synth_gallery_rejects_bad_labels(tmp_path):
    write_synth(tmp_path / "s", 1, bad_label=True)
    out = tmp_path / "gallery.png"
    with pytest.raises(InputError, match="label values must be 0, 1 or 2; found 3"):
        synth_gallery(find_synth_pairs(tmp_path / "s"), out)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# generator switch gallery


def panels(block) -> list[list[np.ndarray]]:
    """The grey images of one switch's (off, on) rows, panel by panel."""
    n_cols = len(block.axes) // 2
    return [[ax.images[0].get_array() for ax in block.axes[r * n_cols : (r + 1) * n_cols]] for r in (0, 1)]


def test_repo_switch_file_is_valid():
    switches = read_switches(SWITCH_FILE)
    assert [s.name for s in switches] == ["neck", "lobes", "muscle", "csf", "intensity"]
    assert switches[1].overrides == {"lobes": [2, 5], "head_aspect": [0.7, 1.3]}


def test_switch_gallery_off_and_on_panels_differ():
    switches = read_switches(SWITCH_FILE)
    fig = switch_gallery_figure(switches, load_base(None, 32), seed=0, n=1)
    blocks = fig.subfigs
    assert len(blocks) == len(switches)
    base_off = panels(blocks[0])[0]
    for block, switch in zip(blocks, switches, strict=True):
        assert block.get_suptitle().startswith(f"{switch.name}: ")
        assert [ax.get_ylabel() for ax in block.axes[:: len(SHOWN_VIEWS)]] == ["off", "on"]
        off, on = panels(block)
        assert len(off) == len(on) == len(SHOWN_VIEWS)
        # the default base leaves every switch off: each block's off row is the base itself
        assert all(np.array_equal(a, b) for a, b in zip(off, base_off, strict=True))
        assert any(not np.array_equal(a, b) for a, b in zip(off, on, strict=True)), switch.name
        # superior up: images drawn from the bottom row up
        assert block.axes[0].images[0].origin == "lower"


def test_switch_gallery_writes_png_atomically(tmp_path):
    switches = [Switch("neck", {"neck_prob": 1.0}), Switch("csf", {"csf_prob": 1.0})]
    out = tmp_path / "switch_gallery.png"
    switch_gallery(switches, out, load_base(None, 32), seed=3, n=2)
    width, height = png_size(out)
    assert 600 < width < 2000 and 600 < height < 2000
    assert out.stat().st_size > 50_000
    assert leftovers(tmp_path) == []
    with pytest.raises(InputError, match="number of samples"):
        switch_gallery(switches, tmp_path / "x.png", load_base(None, 32), seed=0, n=0)
    with pytest.raises(InputError, match="seed >= 0"):
        switch_gallery(switches, tmp_path / "x.png", load_base(None, 32), seed=-1, n=1)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "neck:\n  nek_prob: 1.0\n",
            "switch 'neck': unknown SynthConfig key 'nek_prob' (did you mean 'neck_prob'?)",
        ),
        ("csf:\n  csf_prob: 1.0\n  frobnicate: 2\n", "switch 'csf': unknown SynthConfig key 'frobnicate'"),
        ("neck:\n  size: 64\n", "switch 'neck': 'size' cannot be switched"),
        ("neck:\n  neck_prob: 2.0\n", "switch 'neck': SynthConfig.neck_prob: invalid value 2.0"),
        ("neck:\n  neck_prob: 0.0\n", "switch 'neck': every value is SynthConfig's default"),
        ("neck: 1.0\n", "switch 'neck' must be a non-empty mapping"),
        ("", "no switches"),
        ("- neck\n", "must be a mapping"),
    ],
)
def test_switch_file_errors_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "switches.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_switches(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_switch_gallery_base_from_training_config(tmp_path):
    (tmp_path / "parent.yaml").write_text("synth:\n  size: 64\n  neck_prob: 0.5\n  zoom: [0.6, 1.05]\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\nsynth:\n  csf_prob: 0.6\n")
    base = load_base(tmp_path / "child.yaml", None)
    assert (base.size, base.neck_prob, base.csf_prob, base.zoom) == (64, 0.5, 0.6, (0.6, 1.05))
    assert load_base(tmp_path / "child.yaml", 32).size == 32
    off, on = switch_configs(base, Switch("neck", {"neck_prob": 1.0}))
    # off: the switch's fields at SynthConfig's defaults, every other field as the base has it
    assert (off.neck_prob, on.neck_prob) == (0.0, 1.0)
    assert off.csf_prob == on.csf_prob == 0.6 and off.zoom == on.zoom == (0.6, 1.05)
    (tmp_path / "bad.yaml").write_text("synth:\n  nek_prob: 1\n")
    with pytest.raises(InputError, match=r"bad\.yaml: 'synth': unknown SynthConfig key 'nek_prob'"):
        load_base(tmp_path / "bad.yaml", None)


# ---------------------------------------------------------------------------------------------
# atomic writes and the command line


def test_save_figure_leaves_nothing_on_error(tmp_path, monkeypatch):
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    with pytest.raises(InputError, match="does not exist"):
        save_figure(fig, tmp_path / "missing" / "f.png")
    with pytest.raises(InputError, match="unknown figure format"):
        save_figure(fig, tmp_path / "f.jpg")

    def broken(self, fname, **kwargs):
        Path(fname).write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError):
        save_figure(fig, tmp_path / "f.png")
    assert list(tmp_path.iterdir()) == []


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pumba")
    fig_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_all_figures(tmp_path, mouse_like):
    table = tmp_path / "per_subject.csv"
    per_subject_table().to_csv(table, index=False)
    write_log(tmp_path / "train.csv")
    write_synth(tmp_path / "synth", 2)
    commands = {
        "m.png": ["metrics", "--table", str(table), "--metric", "hd95_mm"],
        "t.png": ["training", "--log", str(tmp_path / "train.csv")],
        "g.png": ["gallery", "--dir", str(tmp_path / "synth"), "--n", "1"],
        "s.png": [
            "switch-gallery",
            "--switches",
            str(SWITCH_FILE),
            "--size",
            "32",
            "--seed",
            "0",
            "--n",
            "1",
            "--threads",
            "1",
        ],
        "o.png": [
            "montage",
            "--image",
            str(mouse_like["image"]),
            "--reference",
            str(mouse_like["reference"]),
            "--mask",
            f"good={mouse_like['good']}",
            "--mask",
            "deepbet=none",
            "--title",
            "mouse",
        ],
    }
    for name, argv in commands.items():
        assert run_cli(["figures", *argv, "--out", str(tmp_path / name)]) == 0
        assert png_size(tmp_path / name)[0] > 300
    assert leftovers(tmp_path) == []


def test_cli_errors(tmp_path):
    assert fig_cli.parse_masks(["a=x.nii.gz", "b=None"]) == {"a": Path("x.nii.gz"), "b": None}
    with pytest.raises(InputError, match="METHOD=PATH"):
        fig_cli.parse_masks(["a"])
    with pytest.raises(InputError, match="given twice"):
        fig_cli.parse_masks(["a=x", "a=y"])
    table = tmp_path / "t.csv"
    table.write_text("method,dataset\nx,y\n")
    with pytest.raises(InputError, match=r"t\.csv: missing column\(s\) species, status, dice"):
        run_cli(["figures", "metrics", "--table", str(table), "--out", str(tmp_path / "o.png")])
    assert not (tmp_path / "o.png").exists()
    (tmp_path / "sw.yaml").write_text("neck:\n  nek_prob: 1.0\n")
    with pytest.raises(InputError, match=r"sw\.yaml: switch 'neck': unknown SynthConfig key 'nek_prob'"):
        run_cli(
            [
                "figures",
                "switch-gallery",
                "--switches",
                str(tmp_path / "sw.yaml"),
                "--seed",
                "0",
                "--out",
                str(tmp_path / "o.png"),
            ]
        )
    assert not (tmp_path / "o.png").exists()


# ---------------------------------------------------------------------------------------------
# the paper's figures: palette, Figure 1 (synthesis steps), Figure 2 (qualitative), Figure 3b (strata)


def test_palette_fixes_colour_by_config_position():
    from pumba.figures.palette import method_order, method_palette

    configured = ["a", "b", "c", "d"]
    full = method_palette(["a", "b", "c", "d"], configured)
    partial = method_palette(["d", "b"], configured)  # 'a' and 'c' missing: 'b' and 'd' keep their colours
    assert partial == {"b": full["b"], "d": full["d"]}
    assert method_order(["x", "d", "b"], configured) == ["b", "d", "x"]
    assert len(set(method_palette([f"m{i}" for i in range(12)]).values())) == 12


def test_synth_steps_final_stage_is_the_generators_output():
    import torch

    from pumba.figures.synth_steps import STEPS, synth_stages, synth_steps_figure
    from pumba.synth.generator import SynthConfig, generate, sample_seed

    config = SynthConfig(size=32)
    seed = sample_seed(0, 1)
    stages = synth_stages(config, seed)
    image, mask = generate([seed], config)
    assert np.array_equal(stages.final, np.take(image[0, 0].numpy(), 16, axis=1))
    from pumba.synth.labels import make_target

    assert np.array_equal(stages.target, np.take(make_target(mask)[0].numpy(), 16, axis=1))
    assert set(np.unique(stages.tissue)) >= {0, 1, 3}  # background, skull shell and brain are all drawn
    assert not np.array_equal(stages.noisy, stages.warped)  # the deformation moved something
    assert torch.get_num_threads() >= 1
    fig = synth_steps_figure(config, 0, n=1)
    assert [a.get_title() for a in fig.axes[: len(STEPS)]] == list(STEPS)
    with pytest.raises(InputError, match="1 to 6"):
        synth_steps_figure(config, 0, n=0)


def test_qualitative_failed_panel_and_disagreement_slice(mouse_like, tmp_path):
    from pumba.figures.qualitative import Case, disagreement_slice, load_case, qualitative, qualitative_figure

    shape = (48, 40, 12)
    leak = np.zeros(shape, np.uint8)
    leak[:, :, :] = nib.load(mouse_like["reference"]).get_fdata() > 0
    leak[:, :, 10:] = 1  # a leak in the top slices only
    leaky = write_nifti(tmp_path / "leak.nii.gz", leak, np.diag([0.125, 0.125, 0.75, 1.0]))
    case = Case("mouse", mouse_like["image"], mouse_like["reference"], {"leaky": leaky, "broken": None})
    view, _ = disagreement_slice(load_case(case))
    assert view.name == "axial"  # the leak fills whole axial slices
    fig = qualitative_figure([case], ["leaky", "broken"])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("failed" in t for t in texts)
    out = tmp_path / "q.png"
    qualitative([case], out, ["leaky", "broken"])
    assert png_size(out)[0] > 400


def test_strata_differences_count_failures_as_zero():
    from pumba.figures.strata import strata_figure, stratum_differences

    per = pd.DataFrame(
        {
            "method": ["ours", "m", "ours", "m"],
            "dataset": ["d1", "d1", "d2", "d2"],
            "subject": ["s", "s", "t", "t"],
            "species": ["human", "human", "mouse", "mouse"],
            "status": ["ok", "ok", "ok", "failed"],
            "dice": [0.9, 0.95, 0.8, math.nan],
        }
    )
    strata = pd.DataFrame(
        {
            "dataset": ["d1", "d2"],
            "subject": ["s", "t"],
            "modality": ["T1w", "T1w"],
            "pathology": ["none", "glioma"],
        }
    )
    diffs = stratum_differences(per, strata, "ours").set_index(["stratum", "value"])
    assert diffs.loc[("species", "human"), "median_diff"] == pytest.approx(0.05)
    assert diffs.loc[("species", "mouse"), "median_diff"] == pytest.approx(-0.8)
    assert diffs.loc[("species", "mouse"), "n_failed"] == 1
    assert diffs.loc[("contrast", "T1w"), "n"] == 2
    fig = strata_figure(diffs.reset_index(), "ours")
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert {"species", "contrast", "pathology"} <= set(labels)


def test_montage_one_row_per_method(mouse_like):
    fig = montage_figure(
        mouse_like["image"], {"good": mouse_like["good"], "broken": None}, mouse_like["reference"]
    )
    panels = [a for a in fig.axes if a.images]
    assert len(panels) == 9  # reference, good, broken: three views each
    texts = [t.get_text() for a in panels for t in a.texts]
    assert "failed: no mask" in texts


def test_no_two_of_sixteen_methods_look_alike_nor_like_the_reference_or_black():
    import numpy as np

    from pumba.figures.palette import REFERENCE_RGB, distinct_colors, srgb_to_lab

    # the conversion against hand-checked values: white L 100, sRGB red (53.24, 80.09, 67.20)
    assert srgb_to_lab(np.array(REFERENCE_RGB)) == pytest.approx([100.0, 0.0, 0.0], abs=0.01)
    assert srgb_to_lab(np.array([1.0, 0.0, 0.0])) == pytest.approx([53.24, 80.09, 67.20], abs=0.02)
    lab = srgb_to_lab(np.array([*distinct_colors()[:16], REFERENCE_RGB, (0.0, 0.0, 0.0)]))
    gaps = np.linalg.norm(lab[:, None] - lab[None], axis=-1)[np.triu_indices(len(lab), 1)]
    assert gaps.min() > 20  # CIE76: the colour-blind palette's own closest pair is 20.7 apart
    assert len(set(distinct_colors())) == 10 + 6**3 - 2  # every grid colour but white and black, once
