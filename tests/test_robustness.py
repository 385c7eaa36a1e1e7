"""Hostile and odd inputs to ``pumba strip``, interrupted training, repeatable results (docs/inputs.md).

Every row of docs/inputs.md names the test here that backs it. A refused input must give exit status 2,
exactly one line on stderr naming the file and the problem, no traceback, no output and no temporary file,
and leave the input as it was. A few cases run ``python -m pumba`` in a child process to see the real stderr
and exit status; the rest call ``pumba.cli.main`` in-process (faster).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, TINY_TRAIN
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

from pumba.cli import main
from pumba.infer.strip import available_cores

GEOMETRY_DICE = 0.9
"""Dice of the shipped model against a gap head's known brain that shows the geometry reached the network
intact. A geometry bug (a flipped or swapped axis, a wrong voxel size, a shifted grid) scores far lower; the
margin below the shipped model's ~0.94-0.99 keeps these tests about geometry, not about the weights."""

LEVELS = (1, 12, 40, 64)
"""Background, CSF gap, skull/scalp and brain grey values of :func:`gap_head`: small integers, so that any
power-of-two multiple is exact in every integer and float type."""


def gap_head(
    shape: tuple[int, int, int], zooms: tuple[float, float, float], scale: float = 1.0, factor: float = 1.0
) -> np.ndarray:
    """A synthetic head on a RAS grid centred on the world origin, float64 (I, J, K) in voxel order.

    A brain ellipsoid (semi-axes 70, 85, 60 mm times ``scale``) inside a dark 8 mm gap and a skull/scalp
    shell up to (90, 110, 90) mm times ``scale``; grey values ``LEVELS`` times ``factor``. Built one slab at
    a time so that a 512^3 head costs little more than the array itself.
    """
    axes = [(np.arange(n) - (n - 1) / 2) * z / scale for n, z in zip(shape, zooms, strict=True)]
    y2, z2 = axes[1][:, None] ** 2, axes[2][None, :] ** 2
    data = np.empty(shape, np.float64 if max(shape) < 300 else np.float32)
    bg, gap, shell, brain = (v * factor for v in LEVELS)
    for i, x in enumerate(axes[0]):

        def inside(a: float, b: float, c: float, x: float = x) -> np.ndarray:
            return x**2 / a**2 + y2 / b**2 + z2 / c**2 < 1

        data[i] = np.where(
            inside(70, 85, 60),
            brain,
            np.where(inside(78, 93, 68), gap, np.where(inside(90, 110, 90), shell, bg)),
        )
    return data


def ras_affine(shape, zooms) -> np.ndarray:
    """Voxel-to-world matrix of a RAS grid of ``zooms`` mm centred on the world origin."""
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = -np.asarray(zooms) * (np.asarray(shape) - 1) / 2
    return affine


def write(path: Path, data: np.ndarray, affine: np.ndarray, dtype=None) -> Path:
    img = nib.Nifti1Image(data if dtype is None else data.astype(dtype), affine, dtype=dtype)
    nib.save(img, path)
    return path


def brain_of(data: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """The reference brain of a :func:`gap_head`: voxels at the brain's grey value."""
    return data > (LEVELS[2] + LEVELS[3]) / 2 * factor


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_mask(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj) > 0


def hidden_files(folder: Path) -> list[str]:
    """Temporary files of atomic_output (``.NAME.*.tmp*``) left in ``folder``."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> Path:
    """A 64x72x56 4 mm synthetic head (float32 NIfTI)."""
    shape, zooms = (64, 72, 56), (4.0, 4.0, 4.0)
    return write(
        tmp_path_factory.mktemp("head") / "head.nii.gz",
        gap_head(shape, zooms),
        ras_affine(shape, zooms),
        np.float32,
    )


def strip_in_process(capsys, image, *outputs: str | Path, model=None, extra=()) -> tuple[int, str]:
    """``pumba strip -i IMAGE OUTPUTS...`` through pumba.cli.main; (exit status, stderr)."""
    argv = ["strip", "-i", str(image), *map(str, outputs), "--device", "cpu", "-q", *extra]
    argv += ["--model", str(model)] if model is not None else []
    code = main(argv)
    return code, capsys.readouterr().err


def strip_process(*args: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m pumba strip ARGS...`` in a child process (real stderr and exit status)."""
    return subprocess.run(
        [sys.executable, "-m", "pumba", "strip", *map(str, args), "--device", "cpu", "-q"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


def assert_refused(code: int, err: str, names: str, problem: str, folder: Path, *outputs: Path) -> None:
    """Exit 2, one line on stderr naming ``names`` and matching ``problem``, no output, no temporary file."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert names in lines[0] and re.search(problem, lines[0]), lines[0]
    for out in outputs:
        assert not out.exists()
    assert not hidden_files(folder)


# -- files that are not usable images -------------------------------------------------------------------


def test_missing_file(tmp_path):
    mask = tmp_path / "m.nii.gz"
    run = strip_process("-i", tmp_path / "nope.nii.gz", "-m", mask)
    assert_refused(run.returncode, run.stderr, "nope.nii.gz", r": no such file$", tmp_path, mask)


def test_non_image_files(tmp_path, capsys, tiny_model):
    text = tmp_path / "notes.nii.gz"
    text.write_text("hello, I am not an image\n")
    mask = tmp_path / "m.nii.gz"
    run = strip_process("-i", text, "-m", mask, "--model", tiny_model)
    assert_refused(
        run.returncode, run.stderr, "notes.nii.gz", "not a readable NIfTI/MGZ image", tmp_path, mask
    )
    other = tmp_path / "table.csv"
    other.write_text("a,b\n1,2\n")
    code, err = strip_in_process(capsys, other, "-m", mask, model=tiny_model)
    assert_refused(code, err, "table.csv", "not a readable NIfTI/MGZ image", tmp_path, mask)
    # a folder is a batch of scans: one mask file for all of them is refused before anything runs
    code, err = strip_in_process(capsys, tmp_path, "-m", mask, model=tiny_model)
    assert_refused(code, err, str(mask), r"several inputs an output needs \{name\}", tmp_path, mask)
    rgb = tmp_path / "rgb.nii"
    colours = np.zeros((8, 8, 8), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(colours, np.eye(4)), rgb)
    code, err = strip_in_process(capsys, rgb, "-m", mask, model=tiny_model)
    assert_refused(code, err, "rgb.nii", "data type .* is not supported", tmp_path, mask)


def test_truncated_files(tmp_path, capsys, head, tiny_model):
    whole = head.read_bytes()
    half = tmp_path / "half.nii.gz"
    half.write_bytes(whole[: len(whole) // 2])
    mask = tmp_path / "m.nii.gz"
    run = strip_process("-i", half, "-m", mask, "--model", tiny_model)
    assert_refused(run.returncode, run.stderr, "half.nii.gz", "cannot be read, truncated", tmp_path, mask)
    stub = tmp_path / "stub.nii.gz"
    stub.write_bytes(whole[:40])  # the header itself is cut
    code, err = strip_in_process(capsys, stub, "-m", mask, model=tiny_model)
    assert_refused(code, err, "stub.nii.gz", "not a readable NIfTI/MGZ image", tmp_path, mask)
    raw = tmp_path / "raw.nii"
    raw.write_bytes(gzip.decompress(whole)[:5000])
    code, err = strip_in_process(capsys, raw, "-m", mask, model=tiny_model)
    assert_refused(code, err, "raw.nii", "cannot be read, truncated", tmp_path, mask)


@pytest.mark.parametrize("shape", [(40, 40), (40, 40, 1), (1, 40, 40)])
def test_2d_images(tmp_path, capsys, shape, tiny_model):
    image = write(tmp_path / "slice.nii.gz", np.random.default_rng(0).random(shape), np.eye(4), np.float32)
    mask = tmp_path / "m.nii.gz"
    code, err = strip_in_process(capsys, image, "-m", mask, model=tiny_model)
    assert_refused(code, err, "slice.nii.gz", "expected a 3-D image|2-D in effect", tmp_path, mask)


def test_multi_frame_4d(tmp_path, capsys, tiny_model):
    data = np.stack([gap_head((24, 28, 20), (10.0, 10.0, 10.0))] * 3, axis=-1)
    image = write(tmp_path / "fmri.nii.gz", data, np.eye(4), np.float32)
    mask = tmp_path / "m.nii.gz"
    code, err = strip_in_process(capsys, image, "-m", mask, model=tiny_model)
    assert_refused(
        code, err, "fmri.nii.gz", "4-D image with 3 frames; extract one frame first", tmp_path, mask
    )
    # a single-frame 4-D file is accepted: tests/test_infer.py::test_strip_accepts_mgz_and_a_4d_singleton


# -- grey values ------------------------------------------------------------------------------------------


def test_nan_and_inf_voxels_are_ignored(tmp_path, capsys):
    shape, zooms = (64, 72, 56), (4.0, 4.0, 4.0)
    data = gap_head(shape, zooms)
    brain = brain_of(data)
    bad = np.random.default_rng(1).random(shape)
    data[bad < 0.02] = np.nan
    data[(bad >= 0.02) & (bad < 0.03)] = np.inf
    data[(bad >= 0.03) & (bad < 0.04)] = -np.inf
    image = write(tmp_path / "nan.nii.gz", data, ras_affine(shape, zooms), np.float32)
    mask, out = tmp_path / "m.nii.gz", tmp_path / "s.nii.gz"
    code, err = strip_in_process(capsys, image, "-m", mask, "-o", out)
    assert code == 0, err
    assert dice(read_mask(mask), brain) > GEOMETRY_DICE
    stripped = np.asarray(nib.load(out).dataobj)
    assert np.isfinite(stripped).all() and stripped.max() == LEVELS[3]


@pytest.mark.parametrize("fill", ["all-nan", "all-inf", "all-zero", "constant"])
def test_nothing_to_strip(tmp_path, capsys, fill, tiny_model):
    value = {"all-nan": np.nan, "all-inf": np.inf, "all-zero": 0.0, "constant": 7.0}[fill]
    image = write(tmp_path / f"{fill}.nii.gz", np.full((20, 20, 20), value), np.eye(4), np.float32)
    mask = tmp_path / "m.nii.gz"
    code, err = strip_in_process(capsys, image, "-m", mask, model=tiny_model)
    assert_refused(code, err, f"{fill}.nii.gz", "nothing to strip", tmp_path, mask)


DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]


@pytest.fixture(scope="module")
def float32_reference(tmp_path_factory, tiny_model) -> tuple[np.ndarray, np.ndarray]:
    """A small head's data and its float32 mask (tiny model): every dtype must give this mask exactly."""
    shape, zooms = (40, 44, 36), (6.0, 6.0, 6.0)
    folder = tmp_path_factory.mktemp("dtypes")
    data = gap_head(shape, zooms)
    image = write(folder / "f32.nii.gz", data, ras_affine(shape, zooms), np.float32)
    assert (
        main(["strip", "-i", str(image), "-m", str(folder / "m.nii.gz"), "--model", str(tiny_model), "-q"])
        == 0
    )
    mask = read_mask(folder / "m.nii.gz")
    assert 0 < mask.sum() < mask.size
    return data, mask


@pytest.mark.parametrize("dtype", [*DTYPES, "int16-scaled"])
def test_every_integer_and_float_dtype(tmp_path, capsys, dtype, tiny_model, float32_reference):
    data, reference = float32_reference
    shape = data.shape
    kind = np.dtype(dtype.split("-")[0])
    # the largest power of two that keeps the brain's value in range: the grey values stay exact
    factor = (
        1.0 if kind.kind == "f" else float(2 ** ((int(np.iinfo(kind).max) // LEVELS[3]).bit_length() - 1))
    )
    image = tmp_path / f"{dtype}.nii.gz"
    data = gap_head(shape, (6.0, 6.0, 6.0), factor=factor).astype(kind)
    img = nib.Nifti1Image(data, ras_affine(shape, [6] * 3), dtype=kind)
    if dtype == "int16-scaled":
        img.header.set_slope_inter(0.5, 0)  # stored values are half the grey values
    nib.save(img, image)
    assert nib.load(image).get_data_dtype() == kind
    before = sha(image)
    mask = tmp_path / "m.nii.gz"
    code, err = strip_in_process(capsys, image, "-m", mask, model=tiny_model)
    assert code == 0, err
    assert np.array_equal(read_mask(mask), reference)
    assert sha(image) == before


def test_float16_data_through_the_library(tiny_model, float32_reference):
    """NIfTI-1 and MGH have no float16 type (nibabel refuses to write one); the library takes float16."""
    from pumba.infer.strip import brain_mask
    from pumba.io import Volume
    from pumba.model.checkpoint import load_model

    data, reference = float32_reference
    affine = ras_affine(data.shape, (6.0, 6.0, 6.0))
    volume = Volume(data.astype(np.float16), affine, nib.Nifti1Image(data, affine), Path("f16"))
    model, info = load_model(tiny_model)
    mask, _ = brain_mask(volume, model, info)
    assert np.array_equal(mask, reference)


# -- geometry -------------------------------------------------------------------------------------------


def test_singular_affine_and_zero_voxel_size(tmp_path, capsys, tiny_model):
    data = gap_head((24, 28, 20), (10.0, 10.0, 10.0)).astype(np.float32)
    mask = tmp_path / "m.nii.gz"
    singular = nib.Nifti1Image(data, np.eye(4))
    flat = np.eye(4)
    flat[:3, 2] = [1.0, 1.0, 0.0]  # third axis along the sum of the first two: rank 2
    flat[:3, 0] = [1.0, 0.0, 0.0]
    flat[:3, 1] = [0.0, 1.0, 0.0]
    singular.set_sform(flat, code=1)
    singular.set_qform(None, code=0)
    nib.save(singular, tmp_path / "singular.nii.gz")
    code, err = strip_in_process(capsys, tmp_path / "singular.nii.gz", "-m", mask, model=tiny_model)
    assert_refused(code, err, "singular.nii.gz", "affine is singular", tmp_path, mask)
    # nibabel replaces a zero pixdim by 1 when it reads or writes a header; a zero sform column passes
    zero = nib.Nifti1Image(data, np.eye(4))
    zero.set_sform(np.diag([2.0, 0.0, 2.0, 1.0]), code=1)
    zero.set_qform(None, code=0)
    nib.save(zero, tmp_path / "zero.nii.gz")
    code, err = strip_in_process(capsys, tmp_path / "zero.nii.gz", "-m", mask, model=tiny_model)
    assert_refused(code, err, "zero.nii.gz", "zero voxel size", tmp_path, mask)


def rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(4)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def test_oblique_affine_works(tmp_path, capsys):
    shape, zooms = (64, 72, 56), (4.0, 4.0, 4.0)
    data = gap_head(shape, zooms)
    affine = rotation(0, 25) @ rotation(2, -12) @ ras_affine(shape, zooms)
    image = write(tmp_path / "oblique.nii.gz", data, affine, np.float32)
    mask = tmp_path / "m.nii.gz"
    code, err = strip_in_process(capsys, image, "-m", mask)
    assert code == 0, err
    out = nib.load(mask)
    assert out.shape == shape and np.allclose(out.affine, nib.load(image).affine, atol=1e-5)
    assert dice(read_mask(mask), brain_of(data)) > GEOMETRY_DICE


def test_orientation_variants_give_identical_masks(tmp_path, capsys):
    """The same head stored RAS, LPS and LIA: the same mask voxel for voxel, in both geometry modes."""
    shape, zooms = (70, 80, 60), (3.2, 3.0, 3.4)
    data = gap_head(shape, zooms)
    ras = ras_affine(shape, zooms)
    for mode in ("transform", "resize"):
        masks = []
        for codes in ("RAS", "LPS", "LIA"):
            ornt = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(codes))
            affine = ras @ inv_ornt_aff(ornt, shape)
            assert nib.aff2axcodes(affine) == tuple(codes)
            image = write(tmp_path / f"{codes}.nii.gz", apply_orientation(data, ornt), affine, np.float32)
            mask = tmp_path / f"{codes}-{mode}.nii.gz"
            code, err = strip_in_process(capsys, image, "-m", mask, extra=("--mode", mode))
            assert code == 0, err
            masks.append(apply_orientation(read_mask(mask), io_orientation(affine)))
        assert all(np.array_equal(masks[0], m) for m in masks[1:])
        assert dice(masks[0], brain_of(data)) > GEOMETRY_DICE


def test_thick_5mm_slices(tmp_path, capsys):
    shape, zooms = (200, 240, 40), (1.0, 1.0, 5.0)
    data = gap_head(shape, zooms)
    image = write(tmp_path / "thick.nii.gz", data, ras_affine(shape, zooms), np.int16)
    mask = tmp_path / "m.nii.gz"
    code, err = strip_in_process(capsys, image, "-m", mask)
    assert code == 0, err
    assert dice(read_mask(mask), brain_of(data)) > GEOMETRY_DICE


def test_tiny_voxels_and_a_rodent_header_scaled_10x(tmp_path, capsys):
    """A mouse-sized head (brain 7 x 8.5 x 6 mm) at 0.15 mm, and the same scan with its header scaled 10x (the
    rodent community's trick for human tools: a 150-180 mm field of view, as large as a human head's): both
    resized (the head fills the field of view), the same mask."""
    shape = (100, 120, 100)
    data = gap_head(shape, (0.15, 0.15, 0.15), scale=0.05)
    masks = []
    for name, zoom in (("mouse", 0.15), ("mouse10x", 1.5)):
        image = write(tmp_path / f"{name}.nii.gz", data, ras_affine(shape, [zoom] * 3), np.int16)
        mask = tmp_path / f"{name}-mask.nii.gz"
        code, err = strip_in_process(capsys, image, "-m", mask)
        assert code == 0, err
        masks.append(read_mask(mask))
    assert np.array_equal(masks[0], masks[1])
    assert dice(masks[0], brain_of(data)) > GEOMETRY_DICE


# -- memory ------------------------------------------------------------------------------------------------

_MEASURE = """
import os, sys
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss_mib(tmp_path: Path, size: int) -> tuple[int, float]:
    """Exit status and peak RSS (MiB) of ``pumba strip`` on a ``size``^3 head of 256 mm, default weights.

    The child is started from a small stdlib-only helper: on Linux a process inherits at exec the peak RSS
    of the image it replaces, so starting it from pytest would report pytest's peak."""
    zooms = (256 / size,) * 3
    image = write(
        tmp_path / "big.nii.gz", gap_head((size,) * 3, zooms), ras_affine((size,) * 3, zooms), np.int16
    )
    argv = [sys.executable, "-m", "pumba", "strip", "-i", str(image), "-m", str(tmp_path / "m.nii.gz"), "-q"]
    out = subprocess.run(
        [sys.executable, "-S", "-c", _MEASURE, *argv], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.split()
    assert read_mask(tmp_path / "m.nii.gz").shape == (size,) * 3
    return int(out[0]), int(out[1]) / 1024


def test_256_cubed_memory(tmp_path):
    code, rss = peak_rss_mib(tmp_path, 256)
    assert code == 0 and rss < 1200  # measured 2026-11: about 600 MiB (docs/inputs.md)


@pytest.mark.slow
def test_512_cubed_memory_is_bounded(tmp_path):
    code, rss = peak_rss_mib(tmp_path, 512)
    assert code == 0 and rss < 3000  # measured 2026-11: about 1.45 GiB, 2.8 times the float32 input


# -- outputs ------------------------------------------------------------------------------------------------


def test_unwritable_output_path(tmp_path, capsys, head, tiny_model):
    before = sha(head)
    missing = tmp_path / "no" / "such" / "m.nii.gz"
    code, err = strip_in_process(capsys, head, "-m", missing, model=tiny_model)
    assert_refused(code, err, "m.nii.gz", "output directory .* does not exist", tmp_path, missing)
    if os.geteuid() == 0:  # root may write into any directory with mode 0o555; not into /proc
        locked, problem = Path("/proc"), "cannot create a file in /proc"
    else:
        locked, problem = tmp_path / "locked", "not writable"
        locked.mkdir(mode=0o555)
    out = locked / "m.nii.gz"
    code, err = strip_in_process(capsys, head, "-m", out, model=tiny_model)
    assert_refused(code, err, str(out), problem, tmp_path, out)
    assert sha(head) == before


def test_existing_output_is_replaced_atomically(tmp_path, capsys, head, tiny_model):
    """Like mri_synthstrip, an existing output is overwritten, but by renaming a complete new file onto it:
    readers of the old file keep it whole, and a run that fails leaves the old file as it was."""
    mask = tmp_path / "m.nii.gz"
    mask.write_bytes(b"an older result")
    reader = tmp_path / "still-open"
    os.link(mask, reader)  # another name for the old file's inode, as an open reader would hold it
    code, err = strip_in_process(capsys, head, "-m", mask, model=tiny_model)
    assert code == 0, err
    assert read_mask(mask).shape == nib.load(head).shape
    assert reader.read_bytes() == b"an older result"
    kept = sha(mask)
    zeros = write(tmp_path / "zeros.nii.gz", np.zeros((20, 20, 20)), np.eye(4), np.float32)
    code, err = strip_in_process(capsys, zeros, "-m", mask, model=tiny_model)
    assert code == 2 and "nothing to strip" in err
    assert sha(mask) == kept
    assert not hidden_files(tmp_path)


def test_output_equal_to_input_is_refused(tmp_path, capsys, head, tiny_model):
    image = tmp_path / "head.nii.gz"
    image.write_bytes(head.read_bytes())
    before = sha(image)
    run = strip_process("-i", image, "-m", image, "--model", tiny_model)
    assert_refused(run.returncode, run.stderr, "head.nii.gz", "would overwrite the input", tmp_path)
    (tmp_path / "link.nii.gz").symlink_to(image)
    os.link(image, tmp_path / "hard.nii.gz")
    for other in ("link.nii.gz", "hard.nii.gz"):
        code, err = strip_in_process(capsys, image, "-o", tmp_path / other, model=tiny_model)
        assert_refused(code, err, other, "would overwrite the input", tmp_path)
    same = tmp_path / "out.nii.gz"
    code, err = strip_in_process(capsys, image, "-m", same, "-o", same, model=tiny_model)
    assert_refused(code, err, "out.nii.gz", "must be different files", tmp_path, same)
    assert sha(image) == before


def test_nothing_is_written_under_home(tmp_path, head):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "TORCH_", "MPL"))}
    env["HOME"] = str(home)
    run = strip_process("-i", head, "-m", tmp_path / "m.nii.gz", env=env)
    assert run.returncode == 0, run.stderr
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert written == [] and list(home.rglob("*")) == []


# -- threads and repeatability ----------------------------------------------------------------------------


def test_threads_default_to_the_cores_this_process_may_use(tmp_path, capsys, head, tiny_model):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        code, err = strip_in_process(capsys, head, "-m", tmp_path / "m.nii.gz", model=tiny_model)
        assert code == 0, err
        assert torch.get_num_threads() == available_cores() == len(os.sched_getaffinity(0))
        code, err = strip_in_process(
            capsys, head, "-m", tmp_path / "m.nii.gz", model=tiny_model, extra=["--threads", "1"]
        )
        assert code == 0 and torch.get_num_threads() == 1
        code, err = strip_in_process(
            capsys, head, "-m", tmp_path / "n.nii.gz", model=tiny_model, extra=["--threads", "0"]
        )
        assert_refused(code, err, "--threads 0", "at least one thread", tmp_path, tmp_path / "n.nii.gz")
    finally:
        torch.set_num_threads(before)


def test_same_input_gives_the_same_mask_bytes(tmp_path, capsys, itk_head):
    """CPU inference is repeatable: two runs, identical mask data.

    Same seed and config, same synthetic data: tests/test_synth.py::test_determinism_and_batch_independence
    and ::test_generate_cli_writes_identical_files; same seed, same weights:
    tests/test_model.py::test_same_seed_same_weights.
    """
    image, _ = itk_head
    data = []
    for name in ("a.nii.gz", "b.nii.gz"):
        code, err = strip_in_process(capsys, image, "-m", tmp_path / name)
        assert code == 0, err
        data.append(np.asarray(nib.load(tmp_path / name).dataobj).tobytes())
    assert data[0] == data[1] and any(data[0])


# -- training: killed runs and bad checkpoints ---------------------------------------------------------


def test_training_killed_with_sigkill_resumes_from_the_last_checkpoint(tmp_path):
    from pumba.model.checkpoint import load_checkpoint, load_model

    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({**TINY_TRAIN, "steps": 500, "checkpoint_every": 2}))
    out = tmp_path / "run"
    argv = [
        sys.executable,
        "-m",
        "pumba",
        "train",
        "--config",
        str(config),
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.Popen([*argv, "--device", "cpu"], cwd=REPO, stderr=subprocess.DEVNULL)
    checkpoint = out / "checkpoint.pt"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and not checkpoint.exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    stopped = load_checkpoint(checkpoint)["step"]
    assert 2 <= stopped < 500 and not (out / "model.pt").exists()
    # what a kill can leave: a temporary checkpoint being written, a log row cut in the middle
    (out / ".checkpoint.pt.x1y2z3.tmp.pt").write_bytes(b"half a checkpoint")
    with (out / "train_log.csv").open("a") as log:
        log.write("499,12.3")
    config.write_text(yaml.safe_dump({**TINY_TRAIN, "steps": stopped + 2, "checkpoint_every": 2}))
    assert main(["train", "--config", str(config), "--out", str(out), "--resume", "--no-progress"]) == 0
    _, info = load_model(out / "model.pt")
    assert info["meta"]["steps"] == stopped + 2
    steps = [int(r.split(",")[0]) for r in (out / "train_log.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, stopped + 3))
    assert not hidden_files(out)


def test_corrupt_or_incompatible_checkpoints_are_one_line_errors(tmp_path, capsys, head, tiny_model):
    from pumba.model.checkpoint import MODEL_FORMAT, VERSION
    from pumba.model.unet import UNet3D

    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({**TINY_TRAIN, "steps": 1}))
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**TINY_TRAIN, "steps": 1, "widths": [8, 16], "bottleneck": 16}))
    out = tmp_path / "run"
    assert main(["train", "--config", str(other), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    # another architecture's run in the same directory
    assert main(["train", "--config", str(config), "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "checkpoint.pt: checkpoint was made with a different config" in err
    assert "bottleneck, widths" in err
    # a truncated checkpoint
    checkpoint = out / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
    assert main(["train", "--config", str(config), "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "checkpoint.pt: not a readable" in err and "Traceback" not in err
    # the same two as --model of strip
    mask = tmp_path / "m.nii.gz"
    code, err = strip_in_process(capsys, head, "-m", mask, model=checkpoint)
    assert_refused(
        code, err, "checkpoint.pt", "not a readable pumba-checkpoint/pumba-model file", tmp_path, mask
    )
    small = UNet3D(widths=(8, 16), bottleneck=16)
    mixed = tmp_path / "mixed.pt"
    torch.save(
        {
            "format": MODEL_FORMAT,
            "version": VERSION,
            "architecture": UNet3D().architecture(),
            "input_size": 32,
            "fov_mm": 256.0,
            "state_dict": small.state_dict(),
            "meta": {},
        },
        mixed,
    )
    code, err = strip_in_process(capsys, head, "-m", mask, model=mixed)
    assert_refused(code, err, "mixed.pt", "weights do not fit the stored architecture", tmp_path, mask)
    code, err = strip_in_process(capsys, head, "-m", mask, model=tmp_path / "absent.pt")
    assert_refused(code, err, "absent.pt", "no such", tmp_path, mask)
