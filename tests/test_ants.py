"""ANTs template registration (pumba.baselines.ants): the real registration on a real head (Dice with the
default SyN; the same seed giving the same mask with the quicker Affine), the template (a whole head, checked
files), the scan's geometry in ITK, the seeding, the settings and the missing packages.

The real runs take ~20-40 s each on one thread (three of them)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pumba.baselines import ants as ants_baseline
from pumba.bench.registry import METHODS
from pumba.io import InputError, load_volume
from pumba.metrics import dice

REPO = Path(__file__).resolve().parents[1]
ITK = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
ITK_HEAD = ITK / "KmeansTest_T1UCharRaw.nii.gz"
ITK_MASK = ITK / "KmeansTest_T1RawSkullStrip.nii.gz"
SYN_DICE_MIN = 0.90
"""Measured 0.923 with the defaults (SyN, 1 mm template, seed 0) on itk-kmeans."""
AFFINE_DICE_MIN = 0.93
"""Measured 0.947 with Affine (seed 0)."""

has_ants = importlib.util.find_spec("ants") is not None
has_template = importlib.util.find_spec("nimare") is not None
needs_ants = pytest.mark.skipif(not has_ants, reason="antspyx not installed")
needs_template = pytest.mark.skipif(not has_template, reason="nimare (the template) not installed")
needs_head = pytest.mark.skipif(not ITK_HEAD.is_file(), reason="insighttoolkit5-examples not installed")


def _run(*args: str | os.PathLike) -> subprocess.CompletedProcess:
    env = dict(os.environ, ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "pumba.baselines.ants", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _reference() -> np.ndarray:
    return np.asarray(nib.load(str(ITK_MASK)).dataobj) > 0


def _real_run_prerequisites() -> None:
    pytest.importorskip("ants")
    if not has_template:
        pytest.skip("nimare (the template) not installed")
    if not ITK_HEAD.is_file():
        pytest.skip("insighttoolkit5-examples not installed")


# ------------------------------------------------------------------------------- real registrations
def test_default_syn_dice_on_itk_kmeans(tmp_path):
    _real_run_prerequisites()
    out = tmp_path / "mask.nii.gz"
    done = _run("-i", ITK_HEAD, "-o", out)  # the defaults
    assert done.returncode == 0, done.stderr[-2000:]
    image, head = nib.load(str(out)), nib.load(str(ITK_HEAD))
    assert image.shape == head.shape and np.allclose(image.affine, head.affine)
    mask = np.asarray(image.dataobj)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert dice(mask > 0, _reference()) > SYN_DICE_MIN


def test_affine_same_seed_same_mask(tmp_path):
    """Seed 0, the default, is the case that would fail if it reached ANTs as 0 ("use the clock")."""
    _real_run_prerequisites()
    masks = []
    for n in range(2):
        out = tmp_path / f"mask{n}.nii.gz"
        done = _run("-i", ITK_HEAD, "-o", out, "--transform", "Affine", "--seed", "0")
        assert done.returncode == 0, done.stderr[-2000:]
        masks.append(np.asarray(nib.load(str(out)).dataobj))
    assert np.array_equal(masks[0], masks[1])
    assert dice(masks[0] > 0, _reference()) > AFFINE_DICE_MIN


# --------------------------------------------------------------------------- fast: no registration
def test_module_contract():
    assert METHODS["ants"].package == "antspyx"
    names = [s.name for s in METHODS["ants"].settings]
    assert names == ["transform", "template_mm", "seed"]
    transform, template_mm, _ = METHODS["ants"].settings
    assert transform.default == "SyN" and "Affine" in transform.choices
    assert template_mm.default == 1 and template_mm.choices == (1, 2)


def test_settings_parse_and_refuse():
    transform, template_mm, _ = METHODS["ants"].settings
    assert transform.check("Affine") == "Affine"
    assert template_mm.check("2") == 2
    with pytest.raises(ValueError, match="not one of"):
        transform.check("Bogus")
    with pytest.raises(ValueError, match="not one of"):
        template_mm.check("3")
    with pytest.raises(ValueError, match="is not an integer"):
        template_mm.check("one")


@pytest.mark.parametrize("seed", [-1, 2**31 - 1])
def test_seed_out_of_range_is_refused(seed):
    with pytest.raises(InputError, match="seed"):
        ants_baseline.check_seed(seed)
    assert ants_baseline.check_seed(0) == 1  # ANTs takes 0 as "use the clock"


@needs_head
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transform", "Bogus"], "not one of"),
        (["--template-mm", "3"], "not one of"),
        (["--seed", "-1"], "ANTs needs a seed between 0"),
        (["--mode", "fast"], "unrecognized arguments"),
    ],
)
def test_command_line_refusals(tmp_path, args, message):
    out = tmp_path / "mask.nii.gz"
    done = _run("-i", ITK_HEAD, "-o", out, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("package", "call", "pip"),
    [
        ("ants", lambda: ants_baseline.import_ants(), r"pip install antspyx==0\.6\.3"),
        ("nimare", lambda: ants_baseline.template_files(1), r"pip install --no-deps nimare==0\.22\.1"),
    ],
)
def test_missing_package_names_pip(monkeypatch, package, call, pip):
    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == package else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ants_baseline.AntsMissingError, match=pip):
        call()


@needs_template
def test_template_is_a_whole_head_with_its_brain_mask():
    """The template must have skull and scalp (head-to-head registration): much bright tissue lies outside its
    brain mask, which is a plausible adult brain (1.2-2.0 litres)."""
    for mm in (1, 2):
        head_path, mask_path = ants_baseline.template_files(mm)
        head, mask = nib.load(str(head_path)), nib.load(str(mask_path))
        assert head.shape == mask.shape and np.allclose(head.affine, mask.affine)
        data, brain = head.get_fdata(), np.asarray(mask.dataobj) > 0
        voxel_ml = abs(np.linalg.det(head.affine[:3, :3])) / 1000
        assert 1200 < brain.sum() * voxel_ml < 2000
        outside = (data > 0.1 * data.max()) & ~brain
        assert outside.sum() > 0.5 * brain.sum()


@needs_ants
@needs_template
def test_template_mask_holes_are_filled():
    """The template's mask leaves parts of the ventricles out; the mask we carry has no enclosed holes and
    contains the original."""
    import ants
    from scipy import ndimage

    for mm in (1, 2):
        _, mask_path = ants_baseline.template_files(mm)
        original = np.asarray(nib.load(str(mask_path)).dataobj) > 0
        assert (ndimage.binary_fill_holes(original) & ~original).sum() > 1000  # the ventricles' holes
        filled = ants_baseline.load_template_mask(ants, mask_path).numpy()
        assert set(np.unique(filled)) == {0.0, 1.0}
        filled = filled > 0.5
        assert np.all(filled[original]) and np.array_equal(ndimage.binary_fill_holes(filled), filled)


@needs_template
def test_template_checksum_mismatch_is_refused(monkeypatch):
    (head, _), mask = ants_baseline.TEMPLATES[2]
    monkeypatch.setitem(ants_baseline.TEMPLATES, 2, ((head, "0" * 64), mask))
    with pytest.raises(ants_baseline.AntsMissingError, match="sha256"):
        ants_baseline.template_files(2)


@needs_ants
@needs_head
def test_scan_geometry_matches_itk_reading_the_file():
    import ants

    volume = load_volume(ITK_HEAD)
    mine = ants_baseline.to_ants_image(ants, volume.data, volume.affine)
    theirs = ants.image_read(str(ITK_HEAD), pixeltype="float")
    assert np.allclose(mine.origin, theirs.origin) and np.allclose(mine.spacing, theirs.spacing)
    assert np.allclose(mine.direction, theirs.direction)
    assert np.array_equal(mine.numpy(), theirs.numpy())


@needs_ants
def test_scan_geometry_oblique_and_sheared():
    """Each voxel lands at its RAS+ world position (LPS+ in ITK), shear included."""
    import ants

    rng = np.random.default_rng(1)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[0.0, 0.2, -1.5], [2.0, 0.1, 0.0], [0.3, 1.2, 0.4]])
    affine[:3, 3] = [12.0, -30.0, 7.5]
    data = rng.random((5, 6, 7)).astype(np.float32)
    image = ants_baseline.to_ants_image(ants, data, affine)
    assert np.array_equal(image.numpy(), data)
    for index in [(0, 0, 0), (4, 0, 0), (0, 5, 0), (1, 2, 6), (4, 5, 6)]:
        world = affine @ np.array([*index, 1.0])
        lps = ants.transform_index_to_physical_point(image, index)
        assert np.allclose(lps, [-world[0], -world[1], world[2]], atol=1e-5)


@needs_ants
@needs_template
def test_seed_and_threads_around_the_registration(monkeypatch, tmp_path):
    """The registration sees ANTs seed = --seed + 1 and the environment's thread count; afterwards antspy's
    seed is back and the temporary directory of its transform files is gone; the warped mask comes back
    thresholded at 0.5 on the scan's grid."""
    import ants

    seen = {}

    def registration(fixed, moving, type_of_transform, outprefix):
        seen.update(
            seed=ants.config._random_seed,
            threads=os.environ.get("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"),
            transform=type_of_transform,
            folder=Path(outprefix).parent,
            exists=Path(outprefix).parent.is_dir(),
        )
        return {"fwdtransforms": ["fake.mat"]}

    def apply_transforms(fixed, moving, transformlist, interpolator):
        seen.update(transformlist=transformlist, interpolator=interpolator)
        values = np.linspace(0, 1, fixed.numpy().size, dtype=np.float32).reshape(fixed.numpy().shape)
        return fixed.new_image_like(values)

    monkeypatch.setattr(ants, "registration", registration)
    monkeypatch.setattr(ants, "apply_transforms", apply_transforms)
    monkeypatch.setattr(ants.config, "_random_seed", None)
    monkeypatch.setenv("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "3")
    head = tmp_path / "head.nii.gz"
    data = np.random.default_rng(2).random((6, 7, 8)).astype(np.float32)
    data[1, 1, 1] = np.inf
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0])), str(head))
    mask = ants_baseline.ants_mask(load_volume(head), transform="Rigid", template_mm=2, seed=41)
    assert seen["seed"] == 42 and seen["threads"] == "3" and seen["transform"] == "Rigid"
    assert seen["exists"] and seen["folder"].name.startswith("pumba-ants-") and not seen["folder"].exists()
    assert seen["transformlist"] == ["fake.mat"] and seen["interpolator"] == "linear"
    assert ants.config._random_seed is None
    assert os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] == "3"
    expected = np.linspace(0, 1, data.size, dtype=np.float32).reshape(data.shape) >= 0.5
    assert mask.dtype == bool and np.array_equal(mask, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head.nii.gz"]
