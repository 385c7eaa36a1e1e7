"""SynthStrip (pumba.baselines.synthstrip): the network's published shape, checkpoint loading and its one-line
failures, the preprocessing and resampling rules, and one end-to-end run on a real head with random weights
(the real weights are FreeSurfer's and not here: no Dice can be asserted)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from pumba.baselines import synthstrip as ss
from pumba.bench.registry import METHODS
from pumba.io import Volume, load_volume

torch.set_num_threads(1)

# The published network: mri_synthstrip's StripModel with its defaults (nb_features=16, nb_levels=7,
# feat_mult=2, max_features=64, nb_conv_per_level=2; FreeSurfer's mri_synthstrip/mri_synthstrip, see
# docs/methods/synthstrip.md). Level widths 16, 32, 64, 64, 64, 64, 64; each ConvBlock holds its 3^3
# convolution as ``.conv``; the decoder's first convolution of each level but the bottom one takes the
# upsampled features plus the skip of the encoder level (64 + 64, ..., 64 + 32 at the level below the top,
# then 32 + 16 into ``remaining``). (out, in) of each convolution, in state-dict order:
PUBLISHED_CONVS: tuple[tuple[str, int, int], ...] = (
    ("encoder.0.0", 16, 1),
    ("encoder.0.1", 16, 16),
    ("encoder.1.0", 32, 16),
    ("encoder.1.1", 32, 32),
    ("encoder.2.0", 64, 32),
    ("encoder.2.1", 64, 64),
    ("encoder.3.0", 64, 64),
    ("encoder.3.1", 64, 64),
    ("encoder.4.0", 64, 64),
    ("encoder.4.1", 64, 64),
    ("encoder.5.0", 64, 64),
    ("encoder.5.1", 64, 64),
    ("decoder.0.0", 64, 64),
    ("decoder.0.1", 64, 64),
    ("decoder.1.0", 64, 128),
    ("decoder.1.1", 64, 64),
    ("decoder.2.0", 64, 128),
    ("decoder.2.1", 64, 64),
    ("decoder.3.0", 64, 128),
    ("decoder.3.1", 64, 64),
    ("decoder.4.0", 64, 128),
    ("decoder.4.1", 64, 64),
    ("decoder.5.0", 32, 96),
    ("decoder.5.1", 32, 32),
    ("remaining.0", 16, 48),
    ("remaining.1", 16, 16),
    ("remaining.2", 1, 16),
)
# Sum of out * (27 in + 1) over the convolutions above. Consistent with the size of synthstrip.1.pt, ~29 MB
# (synthstrip-torch's README): 3 x 2,566,561 float32 = 29.4 MiB, the weights and Adam's two moments.
PUBLISHED_PARAMETERS = 2_566_561


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of a randomly initialised network in the published format."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("synthstrip") / "synthstrip.random.pt"
    torch.save({"model_state_dict": ss.build_synthstrip().state_dict(), "epoch": 0}, path)
    return path


def _volume(data: np.ndarray, affine: np.ndarray, tmp_path: Path, name: str = "head.nii.gz") -> Volume:
    image = nib.Nifti1Image(np.asarray(data, np.float32), affine)
    path = tmp_path / name
    nib.save(image, path)
    return load_volume(path)


class ThresholdNet(torch.nn.Module):
    """Stands in for the network: 'signed distance' 10 (0.5 - x), below 1 mm where x > 0.4."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10 * (0.5 - x)


# ------------------------------------------------------------------------------------------- network
def test_network_has_the_published_keys_shapes_and_parameters():
    net = ss.build_synthstrip()
    state = net.state_dict()
    expected = {}
    for name, cout, cin in PUBLISHED_CONVS:
        expected[f"{name}.conv.weight"] = (cout, cin, 3, 3, 3)
        expected[f"{name}.conv.bias"] = (cout,)
    assert list(state) == list(expected)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert ss.parameter_count(net) == ss.PARAMETERS == PUBLISHED_PARAMETERS
    assert sum(c * (27 * i + 1) for _, c, i in PUBLISHED_CONVS) == PUBLISHED_PARAMETERS
    assert ss.level_features() == (16, 32, 64, 64, 64, 64, 64)


def _reference_forward(state: dict, x: torch.Tensor) -> torch.Tensor:
    """The published forward pass written out with functionals: 3^3 convolutions (padding 1) each followed by
    LeakyReLU(0.2) but the last, 2^3 max pooling after each encoder level, nearest 2x upsampling after each
    decoder level, concatenated as [upsampled, skip]."""
    fn = torch.nn.functional

    def block(name: str, x: torch.Tensor, act: bool = True) -> torch.Tensor:
        y = fn.conv3d(x, state[f"{name}.conv.weight"], state[f"{name}.conv.bias"], padding=1)
        return fn.leaky_relu(y, 0.2) if act else y

    skips = []
    for level in range(6):
        x = block(f"encoder.{level}.1", block(f"encoder.{level}.0", x))
        skips.append(x)
        x = fn.max_pool3d(x, 2)
    for level in range(6):
        x = block(f"decoder.{level}.1", block(f"decoder.{level}.0", x))
        x = torch.cat([fn.interpolate(x, scale_factor=2, mode="nearest"), skips.pop()], dim=1)
    x = block("remaining.1", block("remaining.0", x))
    return block("remaining.2", x, act=False)


def test_forward_pass_is_the_published_one():
    torch.manual_seed(1)
    net = ss.build_synthstrip()
    x = torch.rand(1, 1, 64, 64, 64)
    with torch.inference_mode():
        out = net(x)
        ref = _reference_forward(net.state_dict(), x)
    assert out.shape == (1, 1, 64, 64, 64)
    assert torch.allclose(out, ref, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------- checkpoints
def test_random_checkpoint_loads_strictly(random_checkpoint):
    net = ss.load_synthstrip(random_checkpoint)
    saved = torch.load(random_checkpoint, weights_only=True)["model_state_dict"]
    assert all(torch.equal(net.state_dict()[k], v) for k, v in saved.items())
    assert not net.training


def test_missing_weights_fail_in_one_line_naming_the_setting_or_file(tmp_path):
    with pytest.raises(ss.SynthStripWeightsError) as exc:
        ss.load_synthstrip("")
    assert "weights" in str(exc.value) and "\n" not in str(exc.value)
    missing = tmp_path / "nowhere" / "synthstrip.1.pt"
    with pytest.raises(ss.SynthStripWeightsError) as exc:
        ss.load_synthstrip(missing)
    assert str(missing) in str(exc.value) and "\n" not in str(exc.value)


def _bad_checkpoints(directory: Path) -> dict[str, Path]:
    torch.manual_seed(2)
    good = ss.build_synthstrip().state_dict()
    files = {
        "not torch": b"this is not a checkpoint\n",
        "bare state dict": good,
        "wrong keys": {"model_state_dict": {"conv.weight": torch.zeros(1)}},
        "renamed keys": {"model_state_dict": {f"module.{k}": v for k, v in good.items()}},
        "narrower network": {
            "model_state_dict": ss.build_synthstrip(nb_features=8, max_features=32).state_dict()
        },
    }
    paths = {}
    for name, content in files.items():
        path = directory / (name.replace(" ", "_") + ".pt")
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
        paths[name] = path
    return paths


def test_wrong_checkpoints_fail_in_one_line(tmp_path):
    for name, path in _bad_checkpoints(tmp_path).items():
        with pytest.raises(ss.SynthStripWeightsError) as exc:
            ss.load_synthstrip(path)
        message = str(exc.value)
        assert message.startswith(f"{path}: not a SynthStrip checkpoint"), name
        assert "\n" not in message and len(message) < 400, name


def test_main_without_weights_exits_2_with_one_line(tmp_path, capsys, itk_head):
    head, _ = itk_head
    missing = tmp_path / "synthstrip.1.pt"
    assert ss.main(["-i", str(head), "-o", str(tmp_path / "mask.nii.gz")]) == 2
    assert ss.main(["-i", str(head), "-o", str(tmp_path / "mask.nii.gz"), "--weights", str(missing)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert "weights" in lines[0] and str(missing) in lines[1]
    assert not (tmp_path / "mask.nii.gz").exists()


def test_settings_and_version():
    settings = {s.name: s for s in METHODS["synthstrip"].settings}
    assert set(settings) == {"weights", "border"}
    assert settings["weights"].kind is str and settings["weights"].default == ""
    assert settings["border"].kind is float and settings["border"].default == 1.0
    assert METHODS["synthstrip"].needs_file == "weights"


# -------------------------------------------------------------------------------------- preprocessing
def test_target_shape_is_a_multiple_of_64_in_192_to_320():
    assert ss.target_shape((150, 200, 330)) == (192, 256, 320)
    assert ss.target_shape((1, 193, 256)) == (192, 256, 256)
    for n in range(1, 400, 7):
        for m in ss.target_shape((n, n, n)):
            assert m % 64 == 0 and 192 <= m <= 320 and (m >= n or m == 320)


def test_normalise_maps_minimum_to_0_and_99th_percentile_to_1():
    rng = np.random.default_rng(0)
    x = rng.normal(40, 10, (20, 30, 40)).astype(np.float32)
    out = ss.normalise(x)
    shifted = x - x.min()
    top = np.percentile(shifted, 99)
    assert out.dtype == np.float32 and out.min() == 0 and out.max() == 1
    np.testing.assert_allclose(out, np.clip(shifted / top, 0, 1), rtol=1e-6)
    assert np.isclose((out == 1).mean(), 0.01, atol=1e-3)
    with pytest.raises(ss.InputError):
        ss.normalise(np.full((4, 4, 4), 3.0))


def test_fit_shape_centres_pads_and_crops_keeping_world_positions():
    rng = np.random.default_rng(1)
    data = rng.integers(1, 9, (5, 8, 7)).astype(np.float32)
    affine = np.array([[-1.0, 0, 0, 10], [0, 0, -1, 20], [0, 1, 0, -5], [0, 0, 0, 1]])
    out, out_affine = ss.fit_shape(data, affine, (8, 5, 7))
    assert out.shape == (8, 5, 7)
    # axis 0: 5 -> 8, one zero before and two after; axis 1: 8 -> 5, one cut at the start, two at the end
    np.testing.assert_array_equal(out[1:6], data[:, 1:6])
    assert not out[0].any() and not out[6:].any()
    origin = np.linalg.inv(affine) @ out_affine  # output voxel -> input voxel: a pure shift
    np.testing.assert_allclose(origin[:3, :3], np.eye(3))
    np.testing.assert_allclose(origin[:3, 3], [-1, 1, 0])


def test_crop_positive_keeps_the_box_of_positive_voxels():
    data = np.zeros((10, 12, 14), np.float32)
    data[2:5, 3:9, 4:6] = 1
    data[3, 4, 4] = -2  # inside the box, negative: kept
    out, affine = ss.crop_positive(data, np.eye(4))
    assert out.shape == (3, 6, 2) and out[1, 1, 0] == -2
    np.testing.assert_allclose(affine[:3, 3], [2, 3, 4])


def test_reorient_lia_permutes_and_flips_only():
    rng = np.random.default_rng(2)
    data = rng.random((4, 5, 6)).astype(np.float32)
    ras = np.diag([1.0, 2.0, 3.0, 1.0])
    out, affine, zooms = ss.reorient_lia(data, ras, (1.0, 2.0, 3.0))
    assert nib.aff2axcodes(affine) == ("L", "I", "A")
    assert out.shape == (4, 6, 5) and zooms.tolist() == [1.0, 3.0, 2.0]
    for index in [(0, 0, 0), (3, 4, 5), (1, 2, 3)]:  # the same world point holds the same value
        world = ras @ [*index, 1]
        new = np.rint(np.linalg.inv(affine) @ world).astype(int)[:3]
        assert out[tuple(new)] == data[index]


def test_sample_follows_surfa_rules_at_ties_and_edges():
    source = np.arange(1.0, 4.0, dtype=np.float32).reshape(3, 1, 1)  # values 1, 2, 3 along axis 0
    points = np.array([-0.6, -0.25, 0.0, 0.5, 1.5, 1.6, 2.4, 2.6, 3.0])

    def at(order: int) -> np.ndarray:
        out = []
        for p in points:
            m = np.eye(4)
            m[0, 3] = p
            out.append(ss.sample(source, m, (1, 1, 1), order=order, fill=-1.0)[0, 0, 0])
        return np.array(out)

    # nearest: inside when 0 <= x < n, ties away from zero, the last voxel up to n
    np.testing.assert_array_equal(at(0), [-1, -1, 1, 2, 3, 3, 3, 3, -1])
    # trilinear: voxels floor(x), floor(x) + 1; the last voxel's value on [n - 1, n); fill where floor(x) < 0
    np.testing.assert_allclose(at(1), [-1, -1, 1, 1.5, 2.5, 2.6, 3, 3, -1], rtol=1e-6)


def test_header_voxel_sizes_decide_the_1mm_grid(tmp_path):
    # 1.2 mm is 1.20000005 in a NIfTI header's float32: 50 voxels cover 60.0000024 mm, so surfa's ceil gives
    # 61 voxels of 1 mm, where a float64 1.2 gives 60
    volume = _volume(np.ones((50, 4, 4)), np.diag([1.2, 1.0, 1.0, 1.0]), tmp_path)
    zooms = ss.header_zooms(volume)
    assert zooms is not None and zooms[0] == float(np.float32(1.2))
    data, affine = np.ones((50, 4, 4), np.float32), np.diag([1.2, 1.0, 1.0, 1.0])
    assert ss.resize_1mm(data, affine, zooms)[0].shape == (61, 4, 4)
    assert ss.resize_1mm(data, affine)[0].shape == (60, 4, 4)
    # a header that disagrees with the affine by more than 10 % is not used
    image = nib.Nifti1Image(data, affine)
    image.header.set_zooms((3.0, 1.0, 1.0))
    assert ss.header_zooms(dataclasses.replace(volume, image=image)) is None


@pytest.mark.parametrize("zooms", [(1.0, 1.0, 1.0), (2.0, 2.0, 2.0)])
def test_conform_and_back_is_the_identity(tmp_path, zooms):
    """On 1 mm voxels the conformed head is the input's voxels moved; on 2 mm each input voxel centre is a
    conformed voxel centre: either way the way back returns the input exactly (its zero border from the
    padding); a grid beyond the conformed box gets 100."""
    rng = np.random.default_rng(3)
    data = np.zeros((40, 36, 30), np.float32)
    data[5:35, 4:30, 3:28] = rng.integers(1, 200, (30, 26, 25))
    affine = np.array([[0, 0, zooms[2], -20], [-zooms[0], 0, 0, 30], [0, zooms[1], 0, -10], [0, 0, 0, 1]])
    volume = _volume(data, affine, tmp_path)
    conformed, conformed_affine = ss.conform(volume)
    assert conformed.shape == (192, 192, 192)
    assert nib.aff2axcodes(conformed_affine) == ("L", "I", "A")
    np.testing.assert_array_equal(ss.to_input_grid(conformed, conformed_affine, volume), volume.data)
    far = volume.affine.copy()
    far[:3, 3] += 1000
    away = ss.to_input_grid(conformed, conformed_affine, dataclasses.replace(volume, affine=far))
    assert (away == ss.FILL_SDT).all()


def test_extend_sdt_recomputes_the_outside_beyond_the_band():
    sdt = np.full((30, 30, 30), 5.0, np.float32)
    sdt[10:20, 10:20, 10:20] = -2.0
    assert ss.extend_sdt(sdt, border=1.0) is sdt  # 1 < int(max) = 5: unchanged
    out = ss.extend_sdt(sdt, border=6.0)
    np.testing.assert_array_equal(out[10:20, 10:20, 10:20], -2.0)
    assert out[20, 15, 15] == 1 and out[25, 15, 15] == 6 and out[15, 15, 25] == 6
    assert out[15, 15, 26] == out[0, 0, 0] == ss.FILL_SDT  # beyond the box grown by 6 voxels


def test_largest_filled_component_is_6_connected_and_filled():
    mask = np.zeros((12, 12, 12), bool)
    mask[1:8, 1:8, 1:8] = True
    mask[4, 4, 4] = False  # a hole: filled
    mask[8, 8, 8] = True  # touches the cube only at a corner: another component
    out = ss.largest_filled_component(mask)
    assert out[4, 4, 4] and not out[8, 8, 8] and out.sum() == 7**3
    assert not ss.largest_filled_component(np.zeros((3, 3, 3), bool)).any()


# ----------------------------------------------------------------------------------------- end to end
def test_mask_geometry_with_a_stand_in_network(tmp_path):
    """An ellipsoid 'brain' in a dim shell, 1.5 x 1.2 x 2 mm voxels in PSL order: the pipeline's mask
    (SDT < 1 where the normalised intensity > 0.4) is the ellipsoid on the input grid."""
    shape, zooms = (70, 80, 50), np.array([1.5, 1.2, 2.0])
    grid = np.stack(
        np.meshgrid(
            *[(np.arange(n) - n / 2 + 0.5) * z for n, z in zip(shape, zooms, strict=True)], indexing="ij"
        )
    )
    r = np.sqrt(((grid / np.array([40.0, 35.0, 35.0])[:, None, None, None]) ** 2).sum(0))
    data = np.where(r < 1, 100.0, np.where(r < 1.25, 10.0, 0.0))
    affine = np.zeros((4, 4))
    affine[1, 0], affine[2, 1], affine[0, 2], affine[3, 3] = -zooms[0], -zooms[1], -zooms[2], 1
    volume = _volume(data, affine, tmp_path)
    mask = ss.mask_with_network(volume, ThresholdNet(), border=1.0)
    brain = r < 1
    assert mask.shape == shape and mask.dtype == bool
    dice = 2 * (mask & brain).sum() / (mask.sum() + brain.sum())
    assert dice > 0.97


def test_random_checkpoint_runs_end_to_end_on_a_real_head(tmp_path, itk_head, random_checkpoint):
    """The published format, strict loading and the whole pipeline through the command line on itk-kmeans's
    head (128 x 128 x 62, 2 x 2 x 3 mm, LSA: network grid 192^3); random weights, so only the geometry of the
    output can be checked."""
    head, _ = itk_head
    out = tmp_path / "mask.nii.gz"
    assert (
        ss.main(["-i", str(head), "-o", str(out), "--weights", str(random_checkpoint), "--border", "1"]) == 0
    )
    mask, image = nib.load(out), nib.load(head)
    values = np.asarray(mask.dataobj)
    assert values.shape == image.shape and set(np.unique(values)) <= {0, 1} and values.any()
    np.testing.assert_allclose(mask.affine, image.affine)
