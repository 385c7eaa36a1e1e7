"""MindGrab (Fani et al. 2025, brainchop): a synthetic-trained MeshNet skull stripper, run on CPU.

Network (written here from its description, checked against the TF.js layers model ``model.json`` at
brainchop commit :data:`COMMIT`): 25 dilated 3^3 convolutions of 15 channels without bias (input 1 channel),
dilations 16, 8, 4, 2, 1 repeated five times, zero padding = dilation so that the grid is kept; after each, a
parameter-free instance normalisation (per channel over the three spatial axes, biased variance,
eps 1e-5) and the exact (erf) GELU; then a 1^3 convolution to 2 classes (0 background, 1 brain) with bias.
146,237 parameters. model.json lists only the convolutions and the GELUs (TF.js ``"gelu"`` is the erf form;
the tanh form would be ``"gelu_new"``); the normalisation is encoded in the layer names (``conv3d_N_gn``),
which the loader requires.

Weights: the TF.js layers model (model.json + model.bin, MIT) is fetched by URL with a sha256 like the
benchmark's datasets (:func:`pumba.data.fetch.fetch_file`: cache, then mirror, then the web). TF's
``Conv3D`` kernel (kD, kH, kW, in, out) becomes torch's (out, in, kD, kH, kW); both compute the same
cross-correlation, and TF's spatial axes (D, H, W) are the conformed volume's voxel axes (i, j, k) as
nibabel reads them (the web app transposes its k-fastest tensor to this order, ``enableTranspose``; the pip
CLI feeds nibabel's array as is). Checked on itk-kmeans: Dice 0.961 so, 0.952 with the axes reversed.

Pipeline. The authors' pipelines disagree (the web app rescales min-max after cropping and applies the output
bias; the pip CLI clips at the 2nd-98th percentiles and drops the output bias, which makes masks larger). We
follow the **web app**, the configuration the model is published with:

1. conform the head FreeSurfer-style to 256^3 voxels of 1 mm in LIA orientation (voxel axis i towards the
   left, j inferior, k anterior; the centre of the input's field of view, at voxel shape/2, maps to voxel
   128), resampling with trilinear interpolation; outside the input field of view the input's minimum.
   Intensities stay float (no rounding to uint8);
2. crop to the bounding box of the voxels above half the intensity range (``v - min > 0.5 (max - min)``,
   the app's ``autoThreshold`` 0.5 on a min-max normalised head), grown by 20 voxels (``cropPadding``) and
   clipped to the cube;
3. rescale the crop min-max to [0, 1];
4. run the network on the crop (its instance statistics are the crop's), take the argmax with the output
   bias, place the brain class back in the 256^3 cube;
5. keep the largest 26-connected component (no hole filling: the app does none);
6. map the mask back onto the input grid by nearest neighbour (each input voxel centre looks up the conformed
   voxel it falls in; outside the cube is background).

Cost: 0.3 MFLOP per voxel of the crop (3 TFLOP for a 200 x 200 x 250 crop, as on an adult head): 71-94 s and
~2.4 GB per scan on one CPU thread (README, the benchmark's methods).

Where the weights come from, for ``python -m pumba.baselines.mindgrab`` (and so for ``pumba run-method
--method mindgrab``): the environment variables ``PUMBA_CACHE`` (cache directory), ``PUMBA_MIRROR`` (local
mirror laid out owner/repo/commit/path; empty: none) and ``PUMBA_DOWNLOAD`` (``0``: never download); each
unset one falls back to the key of the same name (``cache``, ``mirror``, ``download``) in the checkout's
``config/config.yaml``, relative to the repository root, and without that file to no mirror, the user cache
``~/.cache/pumba`` and downloads allowed. Without weights the method exits 2 with one line naming the missing
file.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from pumba.data.registry import UrlFile
from pumba.io import InputError, Volume

if TYPE_CHECKING:  # torch is imported lazily: the weights are fetched (or fail) before it loads
    import torch

REPO = "neuroneural/brainchop"
COMMIT = "4c87885f3a2a8835e260d521dcec922b58d91d41"
MODEL_DIR = "public/models/mindgrab"


def _brainchop_file(path: str, sha256: str) -> UrlFile:
    return UrlFile(
        url=f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/{path}",
        sha256=sha256,
        mirror_path=f"{REPO}/{COMMIT}/{path}",
    )


MODEL_JSON = _brainchop_file(
    f"{MODEL_DIR}/model.json", "24d1bcccba736a83c80b336ca349297f4839ae08b8ec92ec72c5d6adb9afe76e"
)
MODEL_BIN = _brainchop_file(
    f"{MODEL_DIR}/model.bin", "c9a01490fe2d13acc1515fd019b69db176ebe6f40c9b84aeb77f25acbc2ee0f3"
)
DEMO_HEAD = _brainchop_file(
    "public/t1_crop.nii.gz", "9f5708dd1980fe0017ad70f63d895bae66bd9f5487eb1c38d129591116113613"
)
"""brainchop's demo head (256^3, 1 mm, uint8, LIA; no mask): for checks, not a benchmark scan."""


def weights_version() -> str:
    """The version the run records name: this port and the weights it runs (brainchop's commit, the digest
    of model.bin)."""
    import pumba

    weights = f"{REPO}@{COMMIT[:7]} model.bin sha256:{MODEL_BIN.sha256[:16]}"
    return f"pumba {pumba.__version__} port, weights {weights}"


CHANNELS = 15
DILATIONS: tuple[int, ...] = (16, 8, 4, 2, 1) * 5
CLASSES = 2
PARAMETERS = 146_237
"""MindGrab's parameter count: 1*15*27 + 24*15*15*27 + 15*2 + 2."""
EPS = 1e-5
CONFORM_SHAPE = (256, 256, 256)
LIA = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Columns: world (RAS+, mm) directions of the conformed voxel axes i, j, k: left, inferior, anterior."""
CROP_FRACTION = 0.5
CROP_PADDING = 20

_TFJS_DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4")}


# ----------------------------------------------------------------------------------------------- network
def build_meshnet(
    in_channels: int = 1,
    channels: int = CHANNELS,
    dilations: Sequence[int] = DILATIONS,
    classes: int = CLASSES,
) -> torch.nn.Module:
    """A MeshNet: dilated 3^3 convolutions (no bias), each followed by parameter-free instance normalisation
    and exact GELU, then a 1^3 convolution to ``classes`` with bias. Defaults: MindGrab's.

    The module maps (N, in_channels, D, H, W) float32 to class logits (N, classes, D, H, W); the grid is kept.
    """
    from torch import nn

    class MeshNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dilations = tuple(int(d) for d in dilations)
            self.convs = nn.ModuleList(
                nn.Conv3d(in_channels if n == 0 else channels, channels, 3, padding=d, dilation=d, bias=False)
                for n, d in enumerate(self.dilations)
            )
            self.norm = nn.InstanceNorm3d(channels, eps=EPS, affine=False, track_running_stats=False)
            self.act = nn.GELU(approximate="none")
            self.classifier = nn.Conv3d(channels, classes, 1, bias=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for conv in self.convs:
                x = self.act(self.norm(conv(x)))
            return self.classifier(x)

    return MeshNet()


def parameter_count(module: torch.nn.Module) -> int:
    """The number of scalar parameters of a module."""
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------ TF.js layers model
def read_tfjs_weights(model_json: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a TF.js layers model by name, as stored (TF layout: kernels (kD, kH, kW, in, out)).

    Each group of ``weightsManifest`` lists its shard files (``paths``, relative to model.json's directory,
    concatenated in order) and its weights (name, shape, dtype) in the order their little-endian bytes follow
    one another in those shards.

    Raises:
        ValueError: quantised or unsupported dtypes, shards shorter or longer than the manifest says,
            duplicate names, or a missing shard file (naming it).
    """
    model_json = Path(model_json)
    spec = json.loads(model_json.read_text())
    weights: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        shards = [model_json.parent / p for p in group["paths"]]
        for shard in shards:
            if not shard.is_file():
                raise ValueError(f"{shard}: weight shard named in {model_json.name} not found")
        data = b"".join(s.read_bytes() for s in shards)
        offset = 0
        for w in group["weights"]:
            if "quantization" in w:
                raise ValueError(f"{model_json}: {w['name']} is quantised; not supported")
            if w["dtype"] not in _TFJS_DTYPES:
                raise ValueError(f"{model_json}: {w['name']} has dtype {w['dtype']}; not supported")
            dtype = _TFJS_DTYPES[w["dtype"]]
            shape = tuple(int(s) for s in w["shape"])
            nbytes = math.prod(shape) * dtype.itemsize
            if offset + nbytes > len(data):
                raise ValueError(f"{model_json}: shards end inside {w['name']} ({len(data)} bytes)")
            if w["name"] in weights:
                raise ValueError(f"{model_json}: weight {w['name']} appears twice")
            array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=offset)
            weights[w["name"]] = array.reshape(shape).astype(dtype.newbyteorder("="))
            offset += nbytes
        if offset != len(data):
            raise ValueError(f"{model_json}: {len(data) - offset} bytes in the shards after the last weight")
    return weights


def tf_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """A TF Conv3D kernel (kD, kH, kW, in, out) as a torch Conv3d weight (out, in, kD, kH, kW)."""
    if kernel.ndim != 5:
        raise ValueError(f"expected a 5-D Conv3D kernel, got shape {kernel.shape}")
    return np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2))


@dataclass(frozen=True)
class MeshNetSpec:
    """A MeshNet's shape read from a TF.js topology: input channels, width, dilations, classes, and the
    names of its convolution layers in order (the last one is the classifier)."""

    in_channels: int
    channels: int
    dilations: tuple[int, ...]
    classes: int
    conv_names: tuple[str, ...]


def meshnet_spec(topology: Mapping) -> MeshNetSpec:
    """Check a TF.js ``modelTopology`` against the MeshNet of :func:`build_meshnet`, and read its shape.

    Expected: a chain (each layer fed by the one before) of an ``InputLayer`` (channels last), then pairs of
    ``Conv3D`` (3^3, stride 1, ``same``, no bias, linear, name ending ``_gn``: instance normalisation follows)
    and ``Activation`` ``gelu``, then one 1^3 ``Conv3D`` with bias.

    Raises:
        ValueError: anything else, naming the layer.
    """
    layers = topology["model_config"]["config"]["layers"]
    if not layers or layers[0]["class_name"] != "InputLayer":
        raise ValueError("topology: the first layer is not an InputLayer")
    shape = layers[0]["config"]["batch_input_shape"]
    if len(shape) != 5:
        raise ValueError(f"topology: input shape {shape} is not (batch, D, H, W, channels)")
    in_channels = int(shape[-1])
    for previous, layer in itertools.pairwise(layers):
        inbound = layer.get("inbound_nodes") or [[[None]]]
        if inbound[0][0][0] != previous["config"]["name"]:
            raise ValueError(
                f"topology: {layer['config']['name']} is not fed by {previous['config']['name']}"
            )
    body, last = layers[1:-1], layers[-1]
    if len(body) % 2 or not body:
        raise ValueError("topology: expected Conv3D/Activation pairs before the classifier")
    dilations, widths, names = [], set(), []
    for conv, act in zip(body[::2], body[1::2], strict=True):
        c = conv["config"]
        if conv["class_name"] != "Conv3D" or act["class_name"] != "Activation":
            raise ValueError(f"topology: {c['name']}: expected a Conv3D then an Activation")
        if act["config"]["activation"] != "gelu":
            raise ValueError(f"topology: {act['config']['name']}: activation {act['config']['activation']}")
        _check_conv(c, kernel=3, use_bias=False)
        if not c["name"].endswith("_gn"):
            raise ValueError(f"topology: {c['name']}: no _gn suffix (no normalisation after it)")
        rate = c["dilation_rate"]
        if len(set(rate)) != 1:
            raise ValueError(f"topology: {c['name']}: anisotropic dilation {rate}")
        dilations.append(int(rate[0]))
        widths.add(int(c["filters"]))
        names.append(c["name"])
    if len(widths) != 1:
        raise ValueError(f"topology: convolutions of different widths {sorted(widths)}")
    if last["class_name"] != "Conv3D":
        raise ValueError(f"topology: the last layer {last['config']['name']} is not a Conv3D")
    _check_conv(last["config"], kernel=1, use_bias=True)
    return MeshNetSpec(
        in_channels=in_channels,
        channels=widths.pop(),
        dilations=tuple(dilations),
        classes=int(last["config"]["filters"]),
        conv_names=(*names, last["config"]["name"]),
    )


def _check_conv(c: Mapping, kernel: int, use_bias: bool) -> None:
    expected = {
        "kernel_size": [kernel] * 3,
        "strides": [1, 1, 1],
        "padding": "same",
        "data_format": "channels_last",
        "activation": "linear",
        "use_bias": use_bias,
    }
    for key, value in expected.items():
        if c.get(key) != value:
            raise ValueError(f"topology: {c['name']}: {key} is {c.get(key)!r}, expected {value!r}")


def load_tfjs_meshnet(model_json: str | os.PathLike) -> torch.nn.Module:
    """The MeshNet of a TF.js layers model (model.json and its shards beside it), weights loaded, eval mode.

    Raises:
        ValueError: a topology other than a MeshNet's, or weights missing, extra or of the wrong shape.
    """
    import torch

    model_json = Path(model_json)
    spec = meshnet_spec(json.loads(model_json.read_text())["modelTopology"])
    tensors = read_tfjs_weights(model_json)
    net = build_meshnet(spec.in_channels, spec.channels, spec.dilations, spec.classes)
    state = {}
    for n, name in enumerate(spec.conv_names[:-1]):
        state[f"convs.{n}.weight"] = tf_kernel_to_torch(tensors.pop(f"{name}/kernel"))
    head = spec.conv_names[-1]
    state["classifier.weight"] = tf_kernel_to_torch(tensors.pop(f"{head}/kernel"))
    state["classifier.bias"] = tensors.pop(f"{head}/bias")
    if tensors:
        raise ValueError(f"{model_json}: weights not used by the network: {', '.join(sorted(tensors))}")
    expected = net.state_dict()
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"{model_json}: {key} has shape {value.shape}, expected {tuple(expected[key].shape)}"
            )
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
    return net.eval()


def load_mindgrab(model_json: str | os.PathLike) -> torch.nn.Module:
    """MindGrab from its TF.js model, checked to be the published network (dilations, 146,237 parameters)."""
    net = load_tfjs_meshnet(model_json)
    if net.dilations != DILATIONS or parameter_count(net) != PARAMETERS:
        raise ValueError(
            f"{model_json}: not MindGrab (dilations {net.dilations}, {parameter_count(net)} parameters)"
        )
    return net


# --------------------------------------------------------------------------------------------- weights
@dataclass(frozen=True)
class WeightSources:
    """Where MindGrab's weights are looked for: cache directory, mirror (or None), downloads allowed."""

    cache: Path
    mirror: Path | None
    download: bool


def weight_sources(environ: Mapping[str, str] | None = None) -> WeightSources:
    """The cache, mirror and download setting from ``PUMBA_CACHE``, ``PUMBA_MIRROR``, ``PUMBA_DOWNLOAD``,
    each unset one from the checkout's config/config.yaml (see the module docstring)."""
    env = os.environ if environ is None else environ
    root = Path(__file__).resolve().parents[2]
    config = _checkout_config(root)

    def path(value: object) -> Path:
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else root / p

    if "PUMBA_CACHE" in env:
        cache = path(env["PUMBA_CACHE"])
    elif config.get("cache"):
        cache = path(config["cache"])
    else:
        cache = Path("~/.cache/pumba").expanduser()
    mirror_value = env["PUMBA_MIRROR"] if "PUMBA_MIRROR" in env else config.get("mirror", "")
    mirror = path(mirror_value) if mirror_value else None
    if "PUMBA_DOWNLOAD" in env:
        download = env["PUMBA_DOWNLOAD"].strip().lower() not in ("0", "false", "no", "")
    else:
        download = bool(config.get("download", True))
    return WeightSources(cache=cache, mirror=mirror, download=download)


def _checkout_config(root: Path) -> dict:
    config = root / "config" / "config.yaml"
    if not config.is_file():
        return {}
    from pumba.yaml_files import read_yaml

    data = read_yaml(config)
    return data if isinstance(data, dict) else {}


def mindgrab_weights(sources: WeightSources | None = None) -> Path:
    """The local path of MindGrab's model.json, with model.bin beside it (fetched and sha256-checked).

    Raises:
        pumba.data.fetch.FetchError: one line naming the missing (or corrupt) file.
    """
    from pumba.data.fetch import FetchError, fetch_file

    src = weight_sources() if sources is None else sources
    paths = []
    for spec in (MODEL_JSON, MODEL_BIN):
        try:
            paths.append(fetch_file(spec, src.cache, src.mirror, allow_download=src.download))
        except FetchError as exc:
            name = spec.mirror_path.rsplit("/", 1)[-1]
            raise FetchError(f"MindGrab weights {name} missing: {exc}") from None
    model_json, model_bin = paths
    if model_bin.parent != model_json.parent:  # the manifest names model.bin relative to model.json
        raise FetchError(f"{model_bin}: not beside {model_json}")
    return model_json


# ------------------------------------------------------------------------------------------ resampling
def conform_affine(affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The 4x4 voxel-to-world (mm, RAS+) matrix of the FreeSurfer-style conformed grid of an image.

    256^3 voxels of 1 mm, LIA (:data:`LIA`), voxel 128 on the input's field-of-view centre (the world point of
    voxel ``shape/2`` of the input, FreeSurfer's c_ras).
    """
    centre = affine[:3, :3] @ (np.asarray(shape[:3], float) / 2) + affine[:3, 3]
    out = np.eye(4)
    out[:3, :3] = LIA
    out[:3, 3] = centre - LIA @ (np.asarray(CONFORM_SHAPE, float) / 2)
    return out


def resample(
    data: np.ndarray,
    source_affine: np.ndarray,
    target_affine: np.ndarray,
    target_shape: Sequence[int],
    order: int,
    cval: float,
) -> np.ndarray:
    """``data`` (on ``source_affine``) sampled at the voxel centres of the target grid (spline ``order``)."""
    target_to_source = np.linalg.inv(source_affine) @ target_affine
    return ndimage.affine_transform(
        data,
        target_to_source[:3, :3],
        target_to_source[:3, 3],
        output_shape=tuple(int(s) for s in target_shape),
        order=order,
        mode="constant",
        cval=cval,
        prefilter=False,
    )


def conform(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The head conformed to 256^3 1 mm LIA (trilinear; outside the field of view: the image's minimum).

    Returns:
        (float32 array of shape (256, 256, 256) in voxel order (i: left, j: inferior, k: anterior), its 4x4
        voxel-to-world affine in mm).

    Raises:
        InputError: no finite voxel, or a constant image.
    """
    data = np.asarray(volume.data, dtype=np.float32)
    finite = np.isfinite(data)
    if not finite.any():
        raise InputError(f"{volume.path}: no finite voxel")
    low = float(data[finite].min())
    if float(data[finite].max()) <= low:
        raise InputError(f"{volume.path}: constant image; nothing to strip")
    data = np.where(finite, data, low)
    affine = conform_affine(volume.affine, data.shape)
    return resample(data, volume.affine, affine, CONFORM_SHAPE, order=1, cval=low), affine


def crop_box(head: np.ndarray) -> tuple[slice, slice, slice]:
    """The web app's crop: the box of the voxels above half the intensity range, grown by 20 voxels."""
    from pumba.infer.postprocess import bounding_box

    low, high = float(head.min()), float(head.max())
    box = bounding_box(head - low > CROP_FRACTION * (high - low))
    if box is None:  # only when the range is zero, which conform() refuses
        raise InputError("constant image; nothing to crop")
    return tuple(  # type: ignore[return-value]
        slice(max(s.start - CROP_PADDING, 0), min(s.stop + CROP_PADDING, n))
        for s, n in zip(box, head.shape, strict=True)
    )


def min_max(x: np.ndarray) -> np.ndarray:
    """``x`` rescaled linearly to [0, 1] (float32)."""
    low, high = float(x.min()), float(x.max())
    return ((x - low) / max(high - low, np.finfo(np.float32).tiny)).astype(np.float32)


# ------------------------------------------------------------------------------------------- inference
def segment_conformed(net: torch.nn.Module, head: np.ndarray) -> np.ndarray:
    """Brain mask (bool, the conformed grid's shape) of a conformed head: crop, rescale, argmax, paste back,
    largest 26-connected component."""
    import torch

    from pumba.infer.postprocess import largest_component

    box = crop_box(head)
    x = torch.from_numpy(min_max(head[box]))[None, None]
    with torch.inference_mode():
        logits = net(x)[0]
        brain = (logits[1] > logits[0]).numpy()  # argmax over (background, brain); ties are background
    del logits
    mask = np.zeros(head.shape, dtype=bool)
    mask[box] = brain
    return largest_component(mask)


def mindgrab_mask(volume: Volume, net: torch.nn.Module) -> np.ndarray:
    """MindGrab's brain mask of a head (bool, the volume's grid (I, J, K)), by the module's pipeline."""
    head, affine = conform(volume)
    mask = segment_conformed(net, head)
    back = resample(mask.astype(np.uint8), affine, volume.affine, volume.data.shape, order=0, cval=0)
    return back > 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pumba.baselines.mindgrab -i IMAGE -o MASK`` (weights: see the module docstring)."""
    from pumba.baselines.main import baseline_main

    def compute(volume: Volume) -> np.ndarray:
        model_json = mindgrab_weights()  # fails with one line, before torch loads, if they cannot be had
        return mindgrab_mask(volume, load_mindgrab(model_json))

    return baseline_main("mindgrab", compute, argv)


if __name__ == "__main__":
    raise SystemExit(main())
