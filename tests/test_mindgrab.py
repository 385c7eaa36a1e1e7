"""MindGrab (pumba.baselines.mindgrab): the network's size, the TF.js weight loader on a tiny synthetic
model, the conformed grid, the missing-weights failure, and the real weights on a real head."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.special import erf

from pumba.baselines import mindgrab as mg
from pumba.bench.registry import METHODS
from pumba.bench.runner import run_method
from pumba.data.fetch import FetchError
from pumba.io import Volume, load_volume, save_array
from pumba.metrics import dice

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "data" / "mirror"
ITK = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
ITK_HEAD = ITK / "KmeansTest_T1UCharRaw.nii.gz"
ITK_MASK = ITK / "KmeansTest_T1RawSkullStrip.nii.gz"


def _mirrored_weights(cache: Path) -> mg.WeightSources:
    if (
        not (MIRROR / mg.MODEL_JSON.mirror_path).is_file()
        or not (MIRROR / mg.MODEL_BIN.mirror_path).is_file()
    ):
        pytest.skip(f"MindGrab's weights are not in the mirror {MIRROR}")
    return mg.WeightSources(cache=cache, mirror=MIRROR, download=False)


def test_mindgrab_has_146237_parameters():
    net = mg.build_meshnet()
    assert mg.parameter_count(net) == mg.PARAMETERS == 146_237
    assert len(net.convs) == 25 and net.dilations == (16, 8, 4, 2, 1) * 5
    assert all(c.bias is None for c in net.convs) and net.classifier.bias is not None
    assert all(
        c.padding == (d, d, d) and c.dilation == (d, d, d)
        for c, d in zip(net.convs, net.dilations, strict=True)
    )


# --------------------------------------------------------------------------- a tiny TF.js layers model
def _conv_layer(name: str, inbound: str, filters: int, kernel: int, dilation: int, bias: bool) -> dict:
    return {
        "class_name": "Conv3D",
        "config": {
            "name": name,
            "filters": filters,
            "kernel_size": [kernel] * 3,
            "strides": [1, 1, 1],
            "dilation_rate": [dilation] * 3,
            "padding": "same",
            "data_format": "channels_last",
            "activation": "linear",
            "use_bias": bias,
        },
        "inbound_nodes": [[[inbound, 0, 0, {}]]],
    }


def _tiny_tfjs_model(directory: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """model.json + two shards of a MeshNet of 2 dilated layers (dilations 2, 1), 3 channels, 2 classes;
    returns its tensors in TF layout."""
    layers = [
        {"class_name": "InputLayer", "config": {"name": "input", "batch_input_shape": [None, 7, 6, 5, 1]}}
    ]
    previous = "input"
    for n, dilation in enumerate((2, 1)):
        layers.append(_conv_layer(f"conv3d_{n}_gn", previous, 3, 3, dilation, False))
        layers.append(
            {
                "class_name": "Activation",
                "config": {"name": f"activation_{n}", "activation": "gelu"},
                "inbound_nodes": [[[f"conv3d_{n}_gn", 0, 0, {}]]],
            }
        )
        previous = f"activation_{n}"
    layers.append(_conv_layer("output", previous, 2, 1, 1, True))
    tensors = {
        "conv3d_0_gn/kernel": rng.normal(size=(3, 3, 3, 1, 3)),
        "conv3d_1_gn/kernel": rng.normal(size=(3, 3, 3, 3, 3)),
        "output/kernel": rng.normal(size=(1, 1, 1, 3, 2)),
        "output/bias": np.array([0.25, -0.5]),
    }
    tensors = {k: v.astype(np.float32) for k, v in tensors.items()}
    names = list(tensors)
    blob = b"".join(tensors[n].astype("<f4").tobytes() for n in names)
    cut = 1000  # shards split inside a tensor: the loader must concatenate them in order
    (directory / "group1-shard1of2.bin").write_bytes(blob[:cut])
    (directory / "group1-shard2of2.bin").write_bytes(blob[cut:])
    manifest = [
        {
            "paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"],
            "weights": [{"name": n, "shape": list(tensors[n].shape), "dtype": "float32"} for n in names],
        }
    ]
    topology = {"model_config": {"class_name": "Functional", "config": {"layers": layers}}}
    (directory / "model.json").write_text(
        json.dumps({"modelTopology": topology, "weightsManifest": manifest})
    )
    return tensors


def _tf_reference(image: np.ndarray, tensors: dict[str, np.ndarray]) -> np.ndarray:
    """The tiny model in TF's own convention, in numpy: channels-last (D, H, W, C) arrays, kernels indexed
    [a, b, c, in, out] and applied as a 'same' zero-padded cross-correlation, instance norm, erf GELU."""
    x = image[..., None].astype(np.float64)
    for name, d in (("conv3d_0_gn", 2), ("conv3d_1_gn", 1)):
        k = tensors[f"{name}/kernel"].astype(np.float64)
        padded = np.pad(x, [(d, d)] * 3 + [(0, 0)])
        out = np.zeros((*x.shape[:3], k.shape[-1]))
        for a in range(3):
            for b in range(3):
                for c in range(3):
                    window = padded[
                        a * d : a * d + x.shape[0], b * d : b * d + x.shape[1], c * d : c * d + x.shape[2]
                    ]
                    out += window @ k[a, b, c]
        out = (out - out.mean(axis=(0, 1, 2))) / np.sqrt(out.var(axis=(0, 1, 2)) + mg.EPS)
        x = 0.5 * out * (1 + erf(out / np.sqrt(2)))
    return x @ tensors["output/kernel"][0, 0, 0] + tensors["output/bias"]


def test_tfjs_loader_transposes_kernels_and_matches_tf_semantics(tmp_path):
    import torch

    tensors = _tiny_tfjs_model(tmp_path, np.random.default_rng(0))
    read = mg.read_tfjs_weights(tmp_path / "model.json")
    assert read.keys() == tensors.keys()
    for name, value in tensors.items():
        np.testing.assert_array_equal(read[name], value)

    net = mg.load_tfjs_meshnet(tmp_path / "model.json")
    assert net.dilations == (2, 1)
    tf0 = tensors["conv3d_0_gn/kernel"]
    w0 = net.convs[0].weight.detach().numpy()
    assert w0.shape == (3, 1, 3, 3, 3)
    for o, i, a, b, c in [(0, 0, 0, 1, 2), (2, 0, 2, 0, 1), (1, 0, 1, 2, 0)]:
        assert w0[o, i, a, b, c] == tf0[a, b, c, i, o]
    tf1 = tensors["conv3d_1_gn/kernel"]
    np.testing.assert_array_equal(net.convs[1].weight.detach().numpy(), np.einsum("abcio->oiabc", tf1))
    np.testing.assert_array_equal(
        net.classifier.weight.detach().numpy()[:, :, 0, 0, 0], tensors["output/kernel"][0, 0, 0].T
    )
    np.testing.assert_array_equal(net.classifier.bias.detach().numpy(), tensors["output/bias"])

    # The whole tiny network against TF's convention on an anisotropic grid: TF's (D, H, W) are torch's.
    image = np.random.default_rng(1).random((7, 6, 5)).astype(np.float32)
    with torch.inference_mode():
        logits = net(torch.from_numpy(image)[None, None])[0].numpy()
    np.testing.assert_allclose(logits, np.moveaxis(_tf_reference(image, tensors), -1, 0), atol=2e-4)


def test_tfjs_loader_rejects_a_short_shard_and_a_foreign_topology(tmp_path):
    _tiny_tfjs_model(tmp_path, np.random.default_rng(0))
    spec = json.loads((tmp_path / "model.json").read_text())
    shard = tmp_path / "group1-shard2of2.bin"
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(ValueError, match="shards end inside output/bias"):
        mg.read_tfjs_weights(tmp_path / "model.json")
    spec["modelTopology"]["model_config"]["config"]["layers"][2]["config"]["activation"] = "relu"
    with pytest.raises(ValueError, match="activation relu"):
        mg.meshnet_spec(spec["modelTopology"])


def test_conformed_grid_is_lia_1mm_256_on_the_input_centre():
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    affine[:3, 3] = [-100.0, 20.0, -50.0]
    out = mg.conform_affine(affine, (128, 128, 62))
    assert nib.aff2axcodes(out) == ("L", "I", "A")
    np.testing.assert_allclose(np.linalg.norm(out[:3, :3], axis=0), 1.0)
    centre_in = affine @ [64.0, 64.0, 31.0, 1.0]
    np.testing.assert_allclose(out @ [128.0, 128.0, 128.0, 1.0], centre_in)


def test_conform_and_map_back_round_trip_a_block():
    """A block on an oblique-free 2 mm RAS grid survives conform (linear) and the nearest map back."""
    data = np.zeros((40, 48, 36), np.float32)
    data[10:30, 12:36, 8:28] = 100.0
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    volume = Volume(data=data, affine=affine, image=nib.Nifti1Image(data, affine), path=Path("block"))
    head, conformed = mg.conform(volume)
    assert head.shape == (256, 256, 256) and head.dtype == np.float32
    assert np.isclose(head.sum(), data.sum() * 8, rtol=0.01)  # intensity x mm^3 kept by linear resampling
    back = mg.resample((head > 50).astype(np.uint8), conformed, affine, data.shape, order=0, cval=0)
    assert dice(back > 0, data > 50) > 0.97


# --------------------------------------------------------------------------------------- missing weights
def test_missing_weights_fail_with_one_line_naming_the_file(tmp_path, monkeypatch):
    sources = mg.WeightSources(cache=tmp_path / "cache", mirror=tmp_path / "no-mirror", download=False)
    with pytest.raises(
        FetchError, match=r"MindGrab weights model\.json missing: .*model\.json.*downloads are off"
    ):
        mg.mindgrab_weights(sources)

    head = tmp_path / "head.nii.gz"
    save_array(np.random.default_rng(0).random((24, 24, 24)).astype(np.float32), np.eye(4), head)
    monkeypatch.setenv("PUMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PUMBA_MIRROR", "")
    monkeypatch.setenv("PUMBA_DOWNLOAD", "0")
    record = run_method(
        "mindgrab", head, tmp_path / "m.nii.gz", tmp_path / "r.json", threads=1, timeout_s=120
    )
    assert record["status"] == "failed" and record["mask"] is None
    assert record["error"].startswith("exit status 2: ") and "\n" not in record["error"]
    assert "MindGrab weights model.json missing" in record["error"]
    assert not (tmp_path / "m.nii.gz").exists() and not (tmp_path / "cache").exists()


def test_weight_sources_from_the_environment(tmp_path):
    env = {"PUMBA_CACHE": str(tmp_path), "PUMBA_MIRROR": "", "PUMBA_DOWNLOAD": "0"}
    assert mg.weight_sources(env) == mg.WeightSources(cache=tmp_path, mirror=None, download=False)
    relative = mg.weight_sources({"PUMBA_CACHE": "c", "PUMBA_MIRROR": "m", "PUMBA_DOWNLOAD": "1"})
    assert relative.cache == REPO / "c" and relative.mirror == REPO / "m" and relative.download
    assert METHODS["mindgrab"].command("a.nii.gz", "b.nii.gz", 1)[1:3] == [
        "-m",
        "pumba.baselines.mindgrab",
    ]


# ------------------------------------------------------------------------------------------ real weights
def test_real_weights_are_mindgrab(tmp_path):
    model_json = mg.mindgrab_weights(_mirrored_weights(tmp_path / "cache"))
    net = mg.load_mindgrab(model_json)
    assert mg.parameter_count(net) == 146_237
    assert net.classifier.bias.detach().numpy()[0] > net.classifier.bias.detach().numpy()[1]


@pytest.mark.slow
def test_mindgrab_on_a_real_head(tmp_path, monkeypatch):
    """The runner's mindgrab on the ITK head (2x2x3 mm LSA), weights from the mirror: ~1.5 min on 1 thread."""
    sources = _mirrored_weights(tmp_path / "cache")
    if not ITK_HEAD.exists():
        pytest.skip("Debian package insighttoolkit5-examples is not installed")
    monkeypatch.setenv("PUMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PUMBA_MIRROR", str(sources.mirror))
    monkeypatch.setenv("PUMBA_DOWNLOAD", "0")
    mask = tmp_path / "mask.nii.gz"
    record = run_method("mindgrab", ITK_HEAD, mask, tmp_path / "r.json", threads=1, timeout_s=600)
    assert record["status"] == "ok", record["error"]
    out, ref = load_volume(mask), load_volume(ITK_MASK)
    np.testing.assert_allclose(out.affine, load_volume(ITK_HEAD).affine)
    assert dice(out.data > 0, ref.data > 0) > 0.85


def test_the_records_name_the_weights_not_only_this_package():
    from pumba.bench.registry import tool_version

    version = tool_version(METHODS["mindgrab"])
    assert mg.COMMIT[:7] in version and mg.MODEL_BIN.sha256[:16] in version and version.startswith("pumba ")
