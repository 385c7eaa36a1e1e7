"""Hostile inputs, round two (issue 14): scheduler kills, images with no head, configs as people type them,
odd output paths, misleading messages, and tracebacks from any verb. Each test names the row of
docs/inputs.md it backs.

The signal tests run ``pumba`` in a child process whose writers (``nibabel.save``, ``torch.save``) are made
slow on purpose: the child writes the temporary file, says so in a file, and sleeps, so the signal always
arrives in the middle of the write, not by timing luck.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from conftest import REPO, TINY_TRAIN
from test_robustness import (
    assert_refused,
    gap_head,
    hidden_files,
    ras_affine,
    read_mask,
    strip_in_process,
    strip_process,
    write,
)

from pumba.cli import main

ONE_THREAD = ("--threads", "1")


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> Path:
    """A 64x72x56 4 mm synthetic head (float32 NIfTI), as in test_robustness.py."""
    shape, zooms = (64, 72, 56), (4.0, 4.0, 4.0)
    folder = tmp_path_factory.mktemp("head")
    return write(folder / "head.nii.gz", gap_head(shape, zooms), ras_affine(shape, zooms), np.float32)


SLOW_WRITER = r"""
import signal, sys, time
from pathlib import Path
import nibabel, torch

# a child of a shell's background job inherits SIGINT ignored; a user's terminal sends it live
signal.signal(signal.SIGINT, signal.default_int_handler)

ready, match, argv = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]


def slow(real):
    def write(obj, target, *args, **kwargs):
        real(obj, target, *args, **kwargs)  # the temporary file is there, written or half written
        if match in Path(target).name:
            ready.write_text(str(target))
            time.sleep(300)  # the signal comes now

    return write


nibabel.save = slow(nibabel.save)
torch.save = slow(torch.save)
from pumba.cli import main

sys.exit(main(argv))
"""
"""A ``pumba`` whose writes into files named with ``match`` stop for 5 minutes once the file is written:
``python -c SLOW_WRITER READY MATCH ARGV...``; it writes the temporary file's name to READY then."""


def slow_pumba(tmp_path: Path, match: str, *argv: str | Path) -> tuple[subprocess.Popen, Path]:
    """Start a child ``pumba ARGV`` whose write of a file named with ``match`` hangs, and wait until it does;
    returns the child and the temporary file it is writing."""
    ready = tmp_path / "ready.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(ready), match, *map(str, argv)],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 600
    while not ready.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    if not ready.exists():
        proc.kill()
        pytest.fail(f"the child never reached the write: {proc.communicate()[1]}")
    temporary = Path(ready.read_text())
    ready.unlink()
    assert temporary.exists() and temporary.name.startswith(".")
    return proc, temporary


def stopped(proc: subprocess.Popen, signum: int) -> str:
    """Send ``signum`` and return the child's stderr after checking it exited 128 + signum in one line."""
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


# -- kills from a scheduler --------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_strip_write_leaves_no_file(tmp_path, head, tiny_model, signum):
    out = tmp_path / "out"
    out.mkdir()
    mask, stripped = out / "m.nii.gz", out / "s.nii.gz"
    proc, temporary = slow_pumba(
        tmp_path, ".s.nii.gz.", "strip", "-i", head, "-m", mask, "-o", stripped, "--model", tiny_model, "-q"
    )
    assert temporary.parent == out and hidden_files(out)  # both temporary files are there now
    err = stopped(proc, signum)
    assert "interrupted" in err or "stopped by SIGTERM" in err
    assert sorted(os.listdir(out)) == []  # neither output, no temporary file


def test_sigterm_during_generate_leaves_no_partial_file(tmp_path):
    out = tmp_path / "synth"
    proc, temporary = slow_pumba(
        tmp_path, "synth_0001_label", "generate", "--n", "3", "--seed", "0", "--size", "32", "--out", out
    )
    assert temporary.parent == out
    stopped(proc, signal.SIGTERM)
    names = sorted(os.listdir(out))
    assert names == ["synth_0000_image.nii.gz", "synth_0000_label.nii.gz", "synth_0001_image.nii.gz"]
    for name in names:  # whole files only
        assert nib.load(out / name).shape == (32, 32, 32)


def test_sigterm_while_train_writes_model_pt_leaves_no_partial_file(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({**TINY_TRAIN, "steps": 2}))
    out = tmp_path / "run"
    argv = ("train", "--config", config, "--out", out, "--device", "cpu", "--no-progress", "--threads", "1")
    proc, temporary = slow_pumba(tmp_path, ".model.pt.", *argv)
    assert temporary.parent == out
    stopped(proc, signal.SIGTERM)
    assert not (out / "model.pt").exists() and (out / "checkpoint.pt").exists()
    assert not hidden_files(out)


def test_sigkill_leftovers_are_removed_by_the_next_write(tmp_path, head, tiny_model, capsys):
    from pumba.io import remove_stale_temporaries

    mask = tmp_path / "m.nii.gz"
    proc, temporary = slow_pumba(
        tmp_path, ".m.nii.gz.", "strip", "-i", head, "-m", mask, "--model", tiny_model
    )
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert temporary.exists() and not mask.exists()  # what a SIGKILL leaves
    code, err = strip_in_process(capsys, head, "-m", mask, model=tiny_model)
    assert code == 0, err
    assert mask.exists() and not temporary.exists() and not hidden_files(tmp_path)
    # a temporary file whose writer is alive (it holds the lock) is left alone
    import fcntl

    live, dead = tmp_path / ".x.nii.gz.abcdefgh.tmp.nii.gz", tmp_path / ".x.nii.gz.ijklmnop.tmp.nii.gz"
    live.write_bytes(b"being written")
    dead.write_bytes(b"left by a kill")
    with open(live, "rb+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert remove_stale_temporaries(tmp_path / "x.nii.gz") == [dead]
    assert live.exists() and not dead.exists()


# -- no head, or nothing like one --------------------------------------------------------------------------


def test_nothing_head_like_is_refused_naming_the_file(tmp_path, capsys):
    one = np.zeros((64, 72, 56), np.float32)
    one[30, 30, 30] = 1000
    image = write(tmp_path / "one-voxel.nii.gz", one, ras_affine(one.shape, (4.0,) * 3))
    mask = tmp_path / "m.nii.gz"
    code, err = strip_in_process(capsys, image, "-m", mask, model=tmp_path / "not-needed.pt")
    assert_refused(code, err, "one-voxel.nii.gz", "only 1 voxel differs from the background", tmp_path, mask)
    assert "nothing to strip" in err
    tiny = np.random.default_rng(0).random((8, 8, 8))
    image = write(tmp_path / "tiny.nii.gz", tiny, np.diag([20.0, 20.0, 20.0, 1.0]), np.float32)
    code, err = strip_in_process(capsys, image, "-m", mask, model=tmp_path / "not-needed.pt")
    assert_refused(code, err, "tiny.nii.gz", r"8 x 8 x 8 voxels, too small to hold a head", tmp_path, mask)


def test_an_empty_mask_is_refused(tmp_path, capsys, monkeypatch):
    import pumba.infer.strip as strip_module

    def nothing_found(volume, *args, **kwargs):
        return strip_module.Prediction(np.zeros(volume.data.shape, bool), "resize")

    monkeypatch.setattr(strip_module, "predict_brain", nothing_found)
    shape, zooms = (64, 72, 56), (4.0, 4.0, 4.0)
    image = write(tmp_path / "head.nii.gz", gap_head(shape, zooms), ras_affine(shape, zooms), np.float32)
    mask = tmp_path / "m.nii.gz"
    code, err = strip_in_process(capsys, image, "-m", mask, extra=ONE_THREAD)
    assert_refused(
        code, err, "head.nii.gz", r"no brain found \(the mask is empty\); nothing to strip", tmp_path, mask
    )


def test_a_slab_is_stripped_with_a_warning(tmp_path, capsys):
    shape, zooms = (64, 72, 56), (4.0, 4.0, 4.0)
    data = gap_head(shape, zooms)[:, :, 26:29]
    image = write(tmp_path / "slab.nii.gz", data, ras_affine(data.shape, zooms), np.float32)
    mask = tmp_path / "m.nii.gz"
    code, err = strip_in_process(capsys, image, "-m", mask, extra=ONE_THREAD)  # -q: still warned
    assert code == 0, err
    assert err.strip().splitlines() == [
        "pumba strip: warning: "
        f"{image}: a slab, not a whole head (3 slices, 12 mm along voxel axis k, 288 mm across); the network "
        "was trained on whole heads: check the mask"
    ]
    assert read_mask(mask).shape == data.shape


# -- configs as people type them ---------------------------------------------------------------------------


def test_training_configs_as_people_type_them(tmp_path, capsys):
    from pumba.model.config import TrainConfig

    config = tmp_path / "train.yaml"
    config.write_text("steps: 10\nlr: 1e-4\nlr_min: 1.0e-6\n")  # YAML 1.1 reads these as strings
    cfg = TrainConfig.from_yaml(config)
    assert cfg.lr == 1e-4 and cfg.lr_min == 1e-6
    for text, problem in (
        ("steps: .inf\n", "'steps' must be a finite number, got inf"),
        ("steps: .nan\n", "'steps' must be a finite number, got nan"),
        ("steps: 2.5\n", "'steps' must be a whole number, got 2.5"),
        ("widths: 5\n", "'widths' must be a list of whole numbers, got 5"),
        ("synth:\n  size: 64\n  sizee: 32\n", "'synth': unknown SynthConfig key 'sizee'"),
        ("synth:\n  size: .inf\n", "'synth.size' must be a finite number, got inf"),
    ):
        config.write_text(text)
        code = main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert f"pumba train: error: {config}: {problem}" in err
    assert not (tmp_path / "run").exists()


# -- output paths ------------------------------------------------------------------------------------------


def test_output_folders_that_cannot_be_made_are_one_line_errors(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({**TINY_TRAIN, "steps": 1}))
    cases = (
        (
            ["generate", "--n", "1", "--seed", "0", "--size", "32", "--out", f"{a_file}/sub"],
            "a-file is a file",
        ),
        (["generate", "--n", "1", "--seed", "0", "--size", "32", "--out", "/proc/pumba/sub"], "/proc/pumba"),
        (["train", "--config", str(config), "--out", str(a_file)], "exists and is not a directory"),
        (["train", "--config", str(config), "--out", f"{a_file}/run"], "a-file is a file, not a directory"),
        (["train", "--config", str(config), "--out", str(tmp_path / "r"), "--steps", "0"], "--steps 0: need"),
    )
    for argv, problem in cases:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"pumba {argv[0]}: error: ") and problem in err, err
    assert sorted(os.listdir(tmp_path)) == ["a-file", "train.yaml"]


def test_a_250_byte_mask_name_works_and_a_longer_one_fails_first(tmp_path, capsys, head, tiny_model):
    mask = tmp_path / ("m" * 243 + ".nii.gz")
    assert len(mask.name.encode()) == 250
    code, err = strip_in_process(capsys, head, "-m", mask, model=tiny_model)
    assert code == 0, err
    assert read_mask(mask).shape == nib.load(head).shape and not hidden_files(tmp_path)
    too_long = tmp_path / ("m" * 249 + ".nii.gz")
    # refused before anything else: the model named here does not exist and is never looked at
    code, err = strip_in_process(capsys, head, "-m", too_long, model=tmp_path / "absent.pt")
    problem = r"file name is 256 bytes, longer than the file system allows \(255\)"
    assert_refused(code, err, str(too_long), problem, tmp_path)  # (such a name cannot even be looked up)
    assert os.listdir(tmp_path) == [mask.name]


# -- messages that mislead ---------------------------------------------------------------------------------


def test_a_fifo_and_a_misnamed_gzip_file_get_messages_that_say_what_they_are(tmp_path, capsys, head):
    fifo = tmp_path / "pipe.nii.gz"
    os.mkfifo(fifo)
    mask = tmp_path / "m.nii.gz"
    code, err = strip_in_process(capsys, fifo, "-m", mask)
    assert_refused(code, err, "pipe.nii.gz", r"is a named pipe \(FIFO\), not a regular file", tmp_path, mask)
    gzipped = tmp_path / "head.nii"
    gzipped.write_bytes(head.read_bytes())
    code, err = strip_in_process(capsys, gzipped, "-m", mask)
    assert_refused(code, err, "head.nii", "gzip-compressed .*rename it to head.nii.gz", tmp_path, mask)
    plain = tmp_path / "plain.nii.gz"
    plain.write_bytes(gzip.decompress(head.read_bytes()))
    code, err = strip_in_process(capsys, plain, "-m", mask)
    assert_refused(
        code, err, "plain.nii.gz", r"not gzip-compressed .*rename it to plain\.nii\)$", tmp_path, mask
    )


@pytest.mark.parametrize("case", ["float64-2^1000", "float64-2^-1000", "float32-near-max", "nifti2"])
def test_extreme_grey_values_and_nifti2_work_silently(tmp_path, tiny_model, case):
    """The same head with its grey values times 2^1000 or 2^-1000 (float64: beyond float32), spread over
    float32's whole range (+-2^128, where float32 arithmetic overflows), or stored as NIfTI-2: the same mask
    as the plain float32 NIfTI-1 file, and not a word on stderr (-q). Powers of two keep every grey value
    exact, so the masks must be equal voxel for voxel."""
    shape, zooms = (40, 44, 36), (6.0, 6.0, 6.0)
    data, affine = gap_head(shape, zooms), ras_affine(shape, zooms)
    image = tmp_path / f"{case}.nii.gz"
    if case == "nifti2":
        nib.save(nib.Nifti2Image(data.astype(np.float32), affine), image)
    elif case == "float32-near-max":
        write(image, (2 * data - 65) * 2.0**122, affine, np.float32)  # -63 ... 63 times 2^122
    else:
        data[data == 1] = 0  # a zero background: every voxel a 2^1000 multiple would be Inf in float32
        write(image, data * 2.0 ** float(case.split("^")[1]), affine, np.float64)
    reference = write(tmp_path / "plain.nii.gz", data, affine, np.float32)
    masks = []
    for source, name in ((reference, "ref.nii.gz"), (image, "m.nii.gz")):
        out = ("-m", tmp_path / name, "-o", tmp_path / f"s-{name}")
        run = strip_process("-i", source, *out, "--model", tiny_model, *ONE_THREAD)
        assert run.returncode == 0 and run.stderr == "", run.stderr
        masks.append(read_mask(tmp_path / name))
    assert np.array_equal(masks[0], masks[1]) and masks[0].any()
    stripped = nib.load(tmp_path / "s-m.nii.gz")
    if case.startswith("float64"):  # the grey values kept, in float64 (float32 cannot hold them)
        assert stripped.get_data_dtype() == np.float64
        original = np.asarray(nib.load(image).dataobj)
        assert np.array_equal(np.asarray(stripped.dataobj), np.where(masks[1], original, 0))
    if case == "nifti2":
        assert isinstance(nib.load(tmp_path / "m.nii.gz"), nib.Nifti2Image)


def test_brain_volume_of_a_sheared_grid_uses_the_determinant(tmp_path):
    from pumba.infer.strip import strip

    shape, zooms = (64, 72, 56), (4.0, 4.0, 4.0)
    affine = ras_affine(shape, zooms)
    affine[0, 1] = 2.0  # the j axis leans towards x: voxels of 4 x 4 x 4 mm, columns of norm 4, 4.47, 4
    image = write(tmp_path / "sheared.nii.gz", gap_head(shape, zooms), affine, np.float32)
    mask = tmp_path / "m.nii.gz"
    result = strip(image, mask, device="cpu", threads=1)
    voxels = int(read_mask(mask).sum())
    assert voxels > 0
    assert result.brain_ml == pytest.approx(voxels * 64 / 1000)  # |det| = 64 mm^3, not 4 * 4.47 * 4


# -- no traceback from any verb ----------------------------------------------------------------------------


def test_user_errors_of_every_verb_are_one_line(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    config = tmp_path / "bad.yaml"
    config.write_text("steps: .inf\n")
    cases = [
        ["generate", "--n", "1", "--seed", "0", "--out", f"{a_file}/x"],
        ["generate", "--n", "1", "--seed", "0", "--out", str(tmp_path / "g"), "--config", str(config)],
        ["train", "--config", str(config), "--out", str(tmp_path / "r")],
        ["train", "--config", str(a_file), "--out", str(tmp_path / "r")],
        ["export-model", "--checkpoint", str(a_file), "--out", str(tmp_path / "x.pt")],
        ["cascade", "--coarse", str(a_file), "--fine", str(a_file), "--out", str(tmp_path / "x.pt")],
        ["validate", "--model", str(a_file), "--manifest", str(a_file), "--out", str(tmp_path / "v.csv")],
        ["strip", "-i", str(a_file), "-m", str(tmp_path / "m.nii.gz")],
        ["strip", "-i", str(a_file), "-m", f"{a_file}/m.nii.gz"],
        ["data", "list", "--registry", str(a_file)],
        [
            "run-method",
            "--method",
            "otsu",
            "-i",
            str(a_file),
            "-o",
            f"{a_file}/m.nii.gz",
            "--record",
            str(table),
        ],
        ["evaluate", "--records", str(a_file), "--manifest", str(a_file), "--out", str(tmp_path / "e.csv")],
        ["summarise", "--inputs", str(table), "--out", str(tmp_path / "s.csv")],
        ["figures", "training", "--log", str(table), "--out", str(tmp_path / "f.png")],
        ["figures", "gallery", "--dir", str(a_file), "--out", str(tmp_path / "f.png")],
    ]
    for argv in cases:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert err.startswith(f"pumba {argv[0]}: error: "), (argv, err)
