"""Baselines: the Otsu and GMM floors on a phantom, the child-process runner and its records,
and BET / deepbet on a small real head."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pumba.baselines.gmm import gmm_mask
from pumba.baselines.otsu import dilate_mm, erode_mm, otsu_mask
from pumba.bench.record import RECORD_FIELDS
from pumba.bench.registry import METHODS, Method, method_plan
from pumba.bench.runner import run_method
from pumba.io import InputError, load_volume, save_array
from pumba.metrics import dice

ITK = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
ITK_HEAD = ITK / "KmeansTest_T1UCharRaw.nii.gz"
ITK_MASK = ITK / "KmeansTest_T1RawSkullStrip.nii.gz"


def phantom(seed: int = 0, shape=(64, 64, 48), zooms=(1.0, 1.0, 1.5)):
    """A bright ball (the brain, radius 19 mm) inside a thin shell (skull, 23-26 mm) on a dark
    gap, noisy; returns (image, brain mask, affine). Distances are in mm on an anisotropic grid."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1) / 2
    r = np.sqrt(sum(((g - c) * z) ** 2 for g, c, z in zip(grid, centre, zooms, strict=True)))
    brain = r <= 19
    image = np.where(brain, 1.0, np.where(r <= 23, 0.15, np.where(r <= 26, 0.6, 0.0)))
    image = image + rng.normal(0, 0.03, shape)
    return image.astype(np.float32), brain, np.diag([*zooms, 1.0])


def test_morphology_in_mm_on_an_anisotropic_grid():
    cube = np.zeros((11, 11, 11), dtype=bool)
    cube[2:9, 2:9, 2:9] = True
    zooms = (1.0, 1.0, 2.0)
    # Radius 1.5 mm: the 1 mm layers along i and j go; along k the nearest background is 2 mm away.
    eroded = erode_mm(cube, zooms, 1.5)
    expected = np.zeros_like(cube)
    expected[3:8, 3:8, 2:9] = True
    assert np.array_equal(eroded, expected)
    # Dilating back by the same radius restores the cube (it is a union of balls of that radius).
    assert np.array_equal(dilate_mm(eroded, zooms, 1.5) & cube, cube)
    full = np.ones((4, 4, 4), dtype=bool)
    assert erode_mm(full, zooms, 5.0).all()  # the world beyond the grid is not background


def test_otsu_and_gmm_on_phantom():
    image, brain, affine = phantom()
    zooms = np.diag(affine)[:3]
    assert dice(otsu_mask(image, zooms), brain) > 0.95
    a = gmm_mask(image, zooms, seed=3)
    assert dice(a, brain) > 0.95
    assert np.array_equal(a, gmm_mask(image, zooms, seed=3))  # seeded: reproducible


def _phantom_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    image, brain, affine = phantom()
    path = tmp_path / "head.nii.gz"
    save_array(image, affine, path)
    return path, brain


def test_runner_ok_record_and_mask(tmp_path):
    head, brain = _phantom_file(tmp_path)
    mask, rec_path = tmp_path / "mask.nii.gz", tmp_path / "rec.json"
    record = run_method("gmm", head, mask, rec_path, threads=1, dataset="ph", subject="01")
    assert json.loads(rec_path.read_text()) == record
    assert tuple(record) == RECORD_FIELDS
    assert (record["tool"], record["settings"]) == ("gmm", {"seed": 0})
    assert record["version"].startswith("pumba ") and record["geometry"] == {"grid": "the input's grid"}
    assert record["status"] == "ok" and record["error"] is None and record["returncode"] == 0
    assert (record["method"], record["dataset"], record["subject"]) == ("gmm", "ph", "01")
    assert record["mask"] == str(mask) and record["image"] == str(head)
    assert 0 < record["seconds"] < 60
    assert 30 < record["peak_rss_mb"] < 2000  # a Python with numpy and scikit-learn loaded
    out = load_volume(mask)
    assert out.image.get_data_dtype() == np.uint8
    np.testing.assert_allclose(out.affine, load_volume(head).affine)
    # --name: the same method recorded under another name (our second model, say)
    renamed = run_method("gmm", head, mask, rec_path, threads=1, dataset="ph", subject="01", name="gmm-2")
    assert renamed["method"] == "gmm-2" and renamed["status"] == "ok"
    assert dice(out.data > 0, brain) > 0.95


def _python_method(name: str, code: str) -> dict[str, Method]:
    """A registry with one extra method running ``python -c code IMAGE MASK``."""

    def argv(image: str, mask: str, threads: int | None) -> list[str]:
        return [sys.executable, "-c", code, image, mask]

    return {**METHODS, name: Method(name, "test only", argv)}


def test_runner_records_a_segfault_and_removes_the_partial_mask(tmp_path):
    head, _ = _phantom_file(tmp_path)
    mask = tmp_path / "mask.nii.gz"
    code = (
        "import os, signal, sys; open(sys.argv[2], 'w').write('partial'); "
        "os.kill(os.getpid(), signal.SIGSEGV)"
    )
    record = run_method("segv", head, mask, tmp_path / "rec.json", methods=_python_method("segv", code))
    assert record["status"] == "failed" and record["mask"] is None
    assert record["returncode"] == -11 and "SIGSEGV" in record["error"]
    assert not mask.exists()
    assert json.loads((tmp_path / "rec.json").read_text())["status"] == "failed"


def test_runner_records_an_empty_mask_as_a_failure(tmp_path):
    head, _ = _phantom_file(tmp_path)
    code = (
        "import sys, nibabel as nib, numpy as np; img = nib.load(sys.argv[1]); "
        "nib.save(nib.Nifti1Image(np.zeros(img.shape, np.uint8), img.affine), sys.argv[2])"
    )
    mask = tmp_path / "m.nii.gz"
    record = run_method("nothing", head, mask, tmp_path / "r.json", methods=_python_method("nothing", code))
    assert record["status"] == "failed" and record["error"] == "empty mask: no brain voxel"
    assert record["mask"] is None and not mask.exists()


def test_runner_records_a_corrupt_input_and_a_stale_mask_is_removed(tmp_path):
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"this is not a NIfTI file")
    mask = tmp_path / "mask.nii.gz"
    mask.write_text("left over from an earlier run")
    record = run_method("otsu", corrupt, mask, tmp_path / "rec.json")
    assert record["status"] == "failed" and record["returncode"] == 2
    assert "corrupt.nii.gz" in record["error"] and "\n" not in record["error"]
    assert not mask.exists()


def test_runner_timeout_kills_the_method(tmp_path):
    head, _ = _phantom_file(tmp_path)
    code = "import time; time.sleep(60)"
    record = run_method(
        "sleep",
        head,
        tmp_path / "m.nii.gz",
        tmp_path / "r.json",
        timeout_s=1.0,
        methods=_python_method("sleep", code),
    )
    assert record["status"] == "failed" and record["error"] == "timed out after 1 s"
    assert 1.0 <= record["seconds"] < 10 and record["peak_rss_mb"] is None


def test_runner_measures_the_method_not_the_parent(tmp_path):
    head, _ = _phantom_file(tmp_path)
    ballast = np.ones(300 * 2**20, dtype=np.uint8)  # the parent holds 300 MB
    registry = {
        **_python_method("small", "pass"),
        **_python_method("big", "b = bytearray(200 * 2**20)"),
    }
    small = run_method("small", head, tmp_path / "s.nii.gz", tmp_path / "s.json", methods=registry)
    big = run_method("big", head, tmp_path / "b.nii.gz", tmp_path / "b.json", methods=registry)
    del ballast
    # Neither wrote a mask, so both fail, but both are measured.
    assert small["error"] == big["error"] == "exited 0 but wrote no mask"
    assert small["peak_rss_mb"] < 100
    assert 200 < big["peak_rss_mb"] < 300


def test_runner_child_environment(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    head, _ = _phantom_file(tmp_path)
    code = (
        "import json, os, sys; json.dump({k: os.environ.get(k) for k in "
        "('HOME', 'XDG_CACHE_HOME', 'OMP_NUM_THREADS')}, open(sys.argv[2] + '.env', 'w'))"
    )
    mask = tmp_path / "m.nii.gz"
    run_method("env", head, mask, tmp_path / "r.json", threads=3, methods=_python_method("env", code))
    env = json.loads(Path(f"{mask}.env").read_text())
    assert env["OMP_NUM_THREADS"] == "3"
    assert env["HOME"] != str(home) and env["XDG_CACHE_HOME"] == env["HOME"]
    assert not Path(env["HOME"]).exists()  # the private home is removed afterwards


def test_runner_user_errors(tmp_path):
    head, _ = _phantom_file(tmp_path)
    with pytest.raises(InputError, match="unknown tool"):
        run_method("nope", head, tmp_path / "m.nii.gz", tmp_path / "r.json")
    with pytest.raises(InputError, match=r"tool otsu: unknown setting 'weights' \(settings: none\)"):
        run_method("otsu", head, tmp_path / "m.nii.gz", tmp_path / "r.json", settings={"weights": "x.pt"})
    with pytest.raises(InputError, match="seed: 'one' is not an integer"):
        run_method("gmm", head, tmp_path / "m.nii.gz", tmp_path / "r.json", settings={"seed": "one"})
    with pytest.raises(InputError, match="does not exist"):
        run_method("otsu", head, tmp_path / "no" / "m.nii.gz", tmp_path / "r.json")


def test_registry_and_pumba_argv():
    assert set(METHODS) >= {
        "otsu",
        "gmm",
        "bet",
        "deepbet",
        "mindgrab",
        "hdbet",
        "robex",
        "ants",
        "synthstrip",
        "pumba",
    }
    argv = METHODS["pumba"].command("in.nii.gz", "out.nii.gz", 1)
    strip = ["-m", "pumba.cli", "strip", "-i", "in.nii.gz", "-m", "out.nii.gz"]
    assert argv[1:] == [*strip, "--device", "cpu", "-q", "--threads", "1"]
    # a config entry: its settings become the tool's own flags, in the registry's order
    plan = method_plan("mine", {"tool": "pumba", "tta": False, "weights": "ckpt.pt", "mode": "resize"})
    assert plan.flags == ("--model", "ckpt.pt", "--mode", "resize", "--no-tta")
    assert plan.settings == {"weights": "ckpt.pt", "mode": "resize", "postprocess": "tight", "tta": False}
    assert plan.skipped is None
    assert method_plan("g", {"tool": "gmm"}).flags == ()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "method m: no 'tool'"),
        ({"tool": "fsl"}, "method m: unknown tool 'fsl' \\(tools: pumba, otsu"),
        ({"tool": "pumba", "modes": "resize"}, "method m \\(tool pumba\\): unknown setting 'modes'"),
        ({"tool": "pumba", "mode": "stretch"}, "mode: 'stretch' is not one of auto, transform, resize"),
        ({"tool": "pumba", "tta": "maybe"}, "tta: 'maybe' is not true or false"),
        ({"tool": "gmm", "seed": 1.5}, "seed: 1.5 is not a int"),
    ],
)
def test_a_config_entry_is_checked_against_the_registry(entry, message):
    with pytest.raises(ValueError, match=message):
        method_plan("m", entry)


def test_run_method_cli_exits_0_on_a_failed_method(tmp_path):
    from pumba.bench.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    rec = tmp_path / "r.json"
    missing, mask = str(tmp_path / "missing.nii.gz"), str(tmp_path / "m.nii.gz")
    argv = ["run-method", "--method", "otsu", "-i", missing, "-o", mask, "--record", str(rec)]
    args = parser.parse_args([*argv, "--dataset", "d", "--subject", "s", "--threads", "1", "--timeout", "60"])
    assert args.func(args) == 0
    record = json.loads(rec.read_text())
    assert record["status"] == "failed" and "no such file" in record["error"]
    assert (record["dataset"], record["subject"]) == ("d", "s")


def _real_head_dice(tmp_path: Path, method: str) -> float:
    if not ITK_HEAD.exists():
        pytest.skip("insighttoolkit5-examples is not installed")
    mask = tmp_path / "mask.nii.gz"
    record = run_method(method, ITK_HEAD, mask, tmp_path / "r.json", threads=2)
    assert record["status"] == "ok", record["error"]
    return dice(load_volume(mask).data > 0, load_volume(ITK_MASK).data > 0)


def test_bet_on_a_real_head(tmp_path):
    assert _real_head_dice(tmp_path, "bet") > 0.85


def test_deepbet_on_a_real_head(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    assert _real_head_dice(tmp_path, "deepbet") > 0.85
    assert not any(home.iterdir())  # nothing written under the user's home


def test_runner_runs_our_strip_command(tmp_path, itk_head, tiny_model):
    image, _ = itk_head
    mask = tmp_path / "mask.nii.gz"
    record = run_method("pumba", image, mask, tmp_path / "r.json", {"weights": str(tiny_model)}, threads=2)
    assert record["status"] == "ok", record["error"]
    assert record["tool"] == "pumba" and record["settings"]["weights"] == str(tiny_model)
    assert record["geometry"]["mode"] in ("transform", "resize")  # what strip reported, not "auto"
    out, head = load_volume(mask), load_volume(image)
    assert out.data.shape == head.data.shape
    np.testing.assert_allclose(out.affine, head.affine)
    assert set(np.unique(out.data)) <= {0.0, 1.0}
