"""Property-based tests (hypothesis): any affine, shape and voxel type gives a mask on the input's grid or a
clean InputError, never another exception; the pieces of inference keep their promises on random inputs.

The end-to-end property runs ``strip`` with the tiny model (about a second an example on two cores), so it
draws few examples; the properties of the parts are cheap and draw more.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from unittest import mock

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from pumba.infer import preprocess
from pumba.infer.orientation import to_canonical
from pumba.infer.postprocess import finish_on_input, largest_component
from pumba.infer.preprocess import mask_to_input, normalise, plan_geometry, to_grid, to_input
from pumba.infer.strip import strip
from pumba.io import InputError, Volume

DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64")
QUICK = settings(max_examples=150, deadline=None, derandomize=True)
# a second an example: no shrinking (minutes); a failure is reported as drawn
SLOW = settings(
    max_examples=36,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def rotation(angles_deg: tuple[float, float, float]) -> np.ndarray:
    """3x3 rotation: about x, then y, then z, by the given degrees."""
    out = np.eye(3)
    for axis, angle in enumerate(np.radians(angles_deg)):
        c, s = np.cos(angle), np.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        out = r @ out
    return out


@st.composite
def affines(draw, degenerate: bool = True) -> tuple[np.ndarray, str]:
    """A voxel-to-world matrix: axis permutation and flips, zooms 1e-3..20 mm, rotations up to 40 degrees,
    shears up to 0.3, a translation; with ``degenerate``, sometimes a zero column, rank 2 or a NaN.
    Returns the matrix and its kind ('ok', 'zero', 'rank2', 'nan')."""
    perm = draw(st.permutations([0, 1, 2]))
    flips = draw(st.tuples(*[st.sampled_from([-1.0, 1.0])] * 3))
    zooms = draw(st.tuples(*[st.floats(-3.0, 1.3)] * 3))
    angles = draw(st.tuples(*[st.floats(-40.0, 40.0)] * 3))
    shear = draw(st.tuples(*[st.floats(-0.3, 0.3)] * 3))
    shift = draw(st.tuples(*[st.floats(-200.0, 200.0)] * 3))
    kinds = ["ok"] * 5 + (["zero", "rank2", "nan"] if degenerate else [])
    kind = draw(st.sampled_from(kinds))
    linear = np.eye(3)[:, list(perm)] * np.asarray(flips)
    shearing = np.eye(3)
    shearing[0, 1], shearing[0, 2], shearing[1, 2] = shear
    m = rotation(angles) @ shearing @ linear @ np.diag(10.0 ** np.asarray(zooms))
    if kind == "zero":
        m[:, draw(st.integers(0, 2))] = 0.0
    elif kind == "rank2":
        m[:, 2] = m[:, 0] + m[:, 1]
    elif kind == "nan":
        m[draw(st.integers(0, 2)), draw(st.integers(0, 2))] = np.nan
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = m, shift
    return affine, kind


_SHEARED = np.array(
    [[2.0, 0.5, 0.2, -30.0], [0.1, 1.8, 0.4, 10.0], [-0.3, 0.0, 2.5, 5.0], [0.0, 0.0, 0.0, 1.0]]
)
_NAN = np.where(np.eye(4) > 0, 1.0, 0.0)
_NAN[1, 2] = np.nan
_RANK2 = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def contents(shape: tuple[int, ...], kind: str, dtype: str, seed: int) -> np.ndarray:
    """Voxel data in ``dtype``: a head-like ellipsoid with noise, pure noise, a constant or zeros."""
    rng = np.random.default_rng(seed)
    if kind == "head":
        grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij", sparse=True)
        r = np.sqrt(sum(g**2 for g in grid))
        x = np.where(r < 0.5, 0.8, np.where(r < 0.6, 0.1, np.where(r < 0.8, 0.5, 0.02))) + rng.normal(
            0, 0.03, shape
        )
    elif kind == "noise":
        x = rng.random(shape)
    elif kind == "constant":
        x = np.full(shape, 0.3)
    else:
        x = np.zeros(shape)
    dt = np.dtype(dtype)
    top = 1.0 if dt.kind == "f" else float(min(np.iinfo(dt).max, 2**40)) * 0.9
    return np.clip(x, 0, 1).__mul__(top).astype(dt)


def save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """A NIfTI file whose sform rows are ``affine`` as given, even singular or NaN (nibabel would refuse to
    derive a qform from those; the header fields are set directly)."""
    header = nib.Nifti1Header()
    header.set_data_dtype(data.dtype)
    header["sform_code"], header["qform_code"] = 1, 0
    header["srow_x"], header["srow_y"], header["srow_z"] = affine[:3]
    nib.save(nib.Nifti1Image(data, None, header=header), path)
    return path


@SLOW
@given(
    shape=st.tuples(*[st.integers(2, 28)] * 3),
    flat_axis=st.sampled_from([None, None, None, None, None, 0, 1, 2]),
    dtype=st.sampled_from(DTYPES),
    content=st.sampled_from(["head", "noise", "constant", "zeros", "head", "noise"]),
    affine=affines(),
    seed=st.integers(0, 2**16),
    mode=st.sampled_from(["transform", "auto", "resize"]),
)
# cases that random draws may miss, always run: a tiny head in auto mode, an oblique shear, NaN and
# singular affines, a constant image, a single slice
@example((2, 2, 2), None, "uint8", "head", (np.diag([1.0, 1.0, 1.0, 1.0]), "ok"), 0, "auto")
@example((9, 23, 17), None, "int16", "head", (_SHEARED, "ok"), 1, "auto")
@example((9, 23, 17), None, "float32", "head", (_NAN, "nan"), 2, "auto")
@example((9, 23, 17), None, "uint16", "noise", (_RANK2, "rank2"), 3, "resize")
@example((9, 23, 17), None, "float64", "constant", (np.eye(4), "ok"), 4, "transform")
@example((9, 23, 17), 0, "int32", "head", (np.eye(4), "ok"), 5, "auto")
def test_strip_gives_a_mask_on_the_input_grid_or_a_clean_error(
    tiny_model, shape, flat_axis, dtype, content, affine, seed, mode
):
    matrix, kind = affine
    if flat_axis is not None:  # a single slice: 1 x N x M and the like
        shape = tuple(1 if axis == flat_axis else n for axis, n in enumerate(shape))
    event(f"content {content}")
    with tempfile.TemporaryDirectory() as tmp:
        image = save(Path(tmp) / "in.nii.gz", contents(shape, content, dtype, seed), matrix)
        mask = Path(tmp) / "mask.nii.gz"
        must_fail = kind != "ok" or min(shape) < 2 or content in ("constant", "zeros")
        try:
            result = strip(image, mask, model_path=tiny_model, mode=mode, device="cpu")
        except InputError as exc:
            message = str(exc)
            event(f"refused: {message.split(': ', 1)[1].split(' (')[0][:40]}")
            assert message.startswith(str(image)) and "\n" not in message
            # a valid header and shape are refused only for an image with nothing to strip in it
            assert must_fail or "nothing to strip" in message, message
            assert not mask.exists()
        else:
            event(f"mask written ({mode} -> {result.mode})")
            assert not must_fail
            out, ref = nib.load(mask), nib.load(image)
            assert out.shape == shape and np.allclose(out.affine, ref.affine, rtol=1e-6, atol=1e-6)
            assert set(np.unique(np.asarray(out.dataobj))) <= {0, 1}
        assert sorted(p.name for p in Path(tmp).iterdir()) in (["in.nii.gz"], ["in.nii.gz", "mask.nii.gz"])


def _volume(data: np.ndarray, affine: np.ndarray) -> Volume:
    return Volume(data, affine, nib.Nifti1Image(np.zeros((1, 1, 1), np.float32), np.eye(4)), Path("mem"))


@QUICK
@given(shape=st.tuples(*[st.integers(1, 9)] * 3), affine=affines(degenerate=False), seed=st.integers(0, 99))
def test_reorientation_is_exact_and_keeps_world_positions(shape, affine, seed):
    matrix, _ = affine
    data = np.random.default_rng(seed).random(shape).astype(np.float32)
    volume = _volume(data, matrix)
    canonical, how = to_canonical(volume)
    assert np.array_equal(how.back(canonical.data), data)
    # the closest axes are R, A, S; shear and rotations stay under 45 degrees
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    # every voxel keeps its world position: compare the corners of the box
    for corner in itertools.product(*[(0, n - 1) for n in shape]):
        world = matrix @ np.array([*corner, 1.0])
        value = data[corner]
        hits = np.argwhere(canonical.data == value)
        assert any(np.allclose(canonical.affine @ np.array([*h, 1.0]), world, atol=1e-6) for h in hits)


finite_or_not = st.sampled_from([0.0, 1.0, -3.5, 1e6, np.nan, np.inf, -np.inf])


@QUICK
@given(
    shape=st.tuples(*[st.integers(1, 8)] * 3),
    dtype=st.sampled_from([*DTYPES, "float16"]),
    seed=st.integers(0, 2**16),
    levels=st.integers(1, 5),
    specials=st.lists(st.tuples(st.integers(0, 511), finite_or_not), max_size=6),
    scale=st.floats(0.01, 100.0),
    offset=st.floats(-50.0, 50.0),
)
def test_normalise_maps_to_unit_range_and_ignores_gain_and_offset(
    shape, dtype, seed, levels, specials, scale, offset
):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, levels + 1, shape).astype(dtype)
    if np.dtype(dtype).kind == "f":
        flat = data.reshape(-1)
        with np.errstate(over="ignore"):  # 1e6 is Inf in float16: one more non-finite voxel
            for index, value in specials:
                flat[index % flat.size] = value
    try:
        out = normalise(data, "x.nii")
    except InputError as exc:
        assert str(exc).startswith("x.nii: ") and "nothing to strip" in str(exc)
        finite = data[np.isfinite(data.astype(np.float32))]
        assert finite.size == 0 or finite.min() == finite.max()
        return
    assert out.dtype == np.float32 and out.shape == data.shape
    assert out.min() >= 0.0 and out.max() <= 1.0 and np.isfinite(out).all()
    assert not np.shares_memory(out, data)
    # a scanner's gain and offset do not change the result
    if np.dtype(dtype).kind in "iu" and np.isfinite(data).all():
        rescaled = normalise(data.astype(np.float64) * scale + offset)
        assert np.allclose(rescaled, out, atol=1e-4)


@QUICK
@given(shape=st.tuples(*[st.integers(1, 14)] * 3), seed=st.integers(0, 2**16), density=st.floats(0.2, 0.8))
def test_finish_on_input_equals_the_whole_array_computation(shape, seed, density):
    rng = np.random.default_rng(seed)
    blobs = ndimage.gaussian_filter(rng.random(shape), 1.0) if min(shape) > 1 else rng.random(shape)
    mask = blobs > np.quantile(blobs, 1 - density)
    expected = ndimage.binary_fill_holes(largest_component(mask))
    assert np.array_equal(finish_on_input(mask.astype(np.float32)), expected)


@QUICK
@given(
    shape=st.tuples(*[st.integers(2, 30)] * 3),
    affine=affines(degenerate=False),
    mode=st.sampled_from(["transform", "resize"]),
    seed=st.integers(0, 2**16),
    slab=st.integers(1, 2000),
)
def test_slabwise_mask_resampling_equals_the_whole_map(shape, affine, mode, seed, slab):
    matrix, _ = affine
    rng = np.random.default_rng(seed)
    image = rng.random(shape).astype(np.float32)
    geometry = plan_geometry(_volume(image, matrix), image, 16, 256.0, mode)
    grid_mask = ndimage.gaussian_filter(rng.random((16, 16, 16)), 1.5) > 0.5
    whole = to_input(grid_mask.astype(np.float32), geometry)
    with mock.patch.object(preprocess, "SLAB_VOXELS", slab):
        slabs = mask_to_input(grid_mask, geometry)
    assert slabs.shape == shape
    clear = np.abs(whole - 0.5) > 1e-5  # exact ties may round either way
    assert np.array_equal(slabs[clear], whole[clear] > 0.5)
    grid = to_grid(image, geometry)
    assert grid.shape == (16, 16, 16) and grid.dtype == np.float32 and 0 <= grid.min() <= grid.max() <= 1


@QUICK
@given(shape=st.tuples(*[st.integers(2, 40)] * 3), affine=affines(degenerate=False))
def test_resize_mode_covers_the_whole_field_of_view(shape, affine):
    """In resize mode a grid that is brain everywhere maps back to an input that is brain everywhere, edges
    included; the image reaches every grid point inside the field of view (for voxel axes along the world's,
    every grid point: the grid and the input span the same field of view) and none outside it (the corners
    of an oblique scan's box squared to the world are background)."""
    matrix, _ = affine
    image = np.ones(shape, np.float32)
    geometry = plan_geometry(_volume(image, matrix), image, 16, 256.0, "resize")
    assert mask_to_input(np.ones((16, 16, 16), bool), geometry).all()
    grid = to_grid(image, geometry)
    m = geometry.grid_to_input
    points = np.indices(grid.shape).reshape(3, -1)
    source = m[:3, :3] @ points + m[:3, 3:]
    limit = np.asarray(shape)[:, None] - 0.5
    inside = ((source >= -0.5 + 1e-4) & (source <= limit - 1e-4)).all(axis=0).reshape(grid.shape)
    outside = ((source < -0.5 - 1e-4) | (source > limit + 1e-4)).any(axis=0).reshape(grid.shape)
    assert not inside.any() or grid[inside].min() == pytest.approx(1.0)
    assert not outside.any() or grid[outside].max() == 0
    if np.allclose(m[:3, :3], np.diag(np.diag(m[:3, :3]))):
        assert grid.min() == pytest.approx(1.0)
