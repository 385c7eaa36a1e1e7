"""The network, its loss, checkpoints and training (resume, signals, config errors)."""

from __future__ import annotations

import csv

import pytest
import torch
from conftest import TINY_TRAIN

from pumba.io import InputError
from pumba.model.checkpoint import load_checkpoint, load_model, save_model
from pumba.model.config import TrainConfig
from pumba.model.loss import brain_loss, pumba_loss, soft_dice
from pumba.model.train import Trainer, learning_rate
from pumba.model.unet import UNet3D, count_parameters
from pumba.synth import make_target

TINY = TINY_TRAIN


def test_unet_has_the_method_parameter_count():
    assert count_parameters(UNet3D()) == 5_896_947


def test_unet_output_shape_and_divisor():
    model = UNet3D(widths=(4, 8), bottleneck=8, groups=4)
    assert model.divisor == 4
    assert model(torch.rand(2, 1, 8, 12, 16)).shape == (2, 3, 8, 12, 16)


def test_soft_dice_hand_computed():
    prob = torch.tensor([[0.5, 1.0, 0.0, 0.0]])
    target = torch.tensor([[1, 1, 0, 1]])
    # intersection 1.5, sums 1.5 + 3 -> (2*1.5 + 1) / (4.5 + 1)
    assert soft_dice(prob, target).item() == pytest.approx(4 / 5.5)


def test_loss_is_zero_for_a_perfect_prediction_and_high_for_a_wrong_one():
    target = torch.zeros(1, 8, 8, 8, dtype=torch.long)
    target[:, 2:6, 2:6, 2:6] = 2
    target[:, 3:5, 3:5, 3:5] = 1
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 4, 1, 2, 3).float() * 50
    loss, parts = pumba_loss(perfect, target)
    assert loss.item() < 1e-3 and parts["dice_interior"] > 0.999
    wrong = torch.nn.functional.one_hot((target + 1) % 3, 3).permute(0, 4, 1, 2, 3).float() * 50
    assert pumba_loss(wrong, target)[0].item() > 0.9


def test_without_the_boundary_class_the_target_is_the_brain_and_the_loss_its_dice():
    mask = torch.zeros(1, 8, 8, 8, dtype=torch.uint8)
    mask[:, 2:6, 2:6, 2:6] = 1
    three = make_target(mask)
    assert set(three.unique().tolist()) == {0, 1, 2} and (three == 1).sum() == 2**3
    two = make_target(mask, boundary_class=False)
    assert set(two.unique().tolist()) == {0, 1} and torch.equal(two == 1, mask.bool())
    perfect = torch.nn.functional.one_hot(two, 3).permute(0, 4, 1, 2, 3).float() * 50
    loss, parts = brain_loss(perfect, two)
    assert loss.item() < 1e-3 and set(parts) == {"dice_brain"}
    # brain predicted as the boundary class is no brain to this loss
    as_boundary = torch.nn.functional.one_hot(two * 2, 3).permute(0, 4, 1, 2, 3).float() * 50
    assert brain_loss(as_boundary, two)[0].item() > 0.9


def test_training_without_the_boundary_class_is_recorded_in_the_model(tmp_path):
    path = Trainer(TrainConfig.from_dict({**TINY, "boundary_class": False}), tmp_path, progress=False).run()
    header = (tmp_path / "train_log.csv").read_text().splitlines()[0].split(",")
    assert "dice_brain" in header and "dice_boundary" not in header
    assert load_model(path)[1]["boundary_class"] is False
    assert load_model(tmp_path / "checkpoint.pt")[1]["boundary_class"] is False
    from pumba.cli import main

    exported = tmp_path / "exported.pt"
    argv = ["export-model", "--checkpoint", str(tmp_path / "checkpoint.pt"), "--out", str(exported)]
    assert main(argv) == 0
    assert load_model(exported)[1]["boundary_class"] is False
    with pytest.raises(ValueError, match="'boundary_class' applies to the whole-head stage"):
        TrainConfig.from_dict({**TINY, "stage": "fine", "boundary_class": False})


def test_learning_rate_schedule():
    cfg = TrainConfig.from_dict({"steps": 100, "lr": 1e-3, "lr_min": 0.0, "warmup_steps": 10})
    assert learning_rate(cfg, 0) == pytest.approx(1e-4)
    assert learning_rate(cfg, 10) == pytest.approx(1e-3)
    assert learning_rate(cfg, 55) == pytest.approx(5e-4, rel=1e-3)
    assert learning_rate(cfg, 100) == pytest.approx(0.0, abs=1e-12)


def test_config_rejects_unknown_key_and_bad_value(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 10\nlearning_rate: 0.1\n")
    with pytest.raises(InputError, match=r"bad.yaml: unknown training key 'learning_rate'"):
        TrainConfig.from_yaml(bad)
    bad.write_text("steps: ten\n")
    with pytest.raises(InputError, match="'steps' must be a number"):
        TrainConfig.from_yaml(bad)
    bad.write_text("input_size: 40\n")
    with pytest.raises(InputError, match="multiple of 32"):
        TrainConfig.from_yaml(bad)


def test_model_file_round_trip_in_half_precision(tmp_path):
    model = UNet3D(widths=(4, 8), bottleneck=8, groups=4)
    save_model(model, tmp_path / "m.pt", input_size=32, fov_mm=256, meta={"x": 1}, half=True)
    loaded, info = load_model(tmp_path / "m.pt")
    assert info["input_size"] == 32 and info["meta"] == {"x": 1} and info["boundary_class"] is True
    for a, b in zip(model.parameters(), loaded.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-3)


def test_corrupt_and_foreign_model_files_are_clear_errors(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02not a checkpoint")
    with pytest.raises(InputError, match=r"corrupt\.pt: not a readable"):
        load_model(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, foreign)
    with pytest.raises(InputError, match=r"foreign\.pt: not a pumba-checkpoint file"):
        load_model(foreign)


def test_training_writes_log_checkpoint_and_model(tmp_path):
    trainer = Trainer(TrainConfig.from_dict(TINY), tmp_path, progress=False)
    path = trainer.run()
    assert path.exists() and (tmp_path / "checkpoint.pt").exists()
    rows = list(csv.DictReader((tmp_path / "train_log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(0.0 <= float(r["loss"]) <= 1.0 for r in rows)
    _, info = load_model(path)
    assert info["meta"]["steps"] == 4


def test_resume_continues_and_matches_an_uninterrupted_run(tmp_path):
    # a constant schedule: with cosine decay, the learning rate depends on the total number of steps
    const = {**TINY, "lr_schedule": "constant"}
    full = Trainer(TrainConfig.from_dict(const), tmp_path / "full", progress=False)
    full.run()
    part = TrainConfig.from_dict({**const, "steps": 2})
    Trainer(part, tmp_path / "split", progress=False).run()
    resumed = Trainer(TrainConfig.from_dict(const), tmp_path / "split", progress=False)
    resumed.run(resume=True)
    assert resumed.step == 4
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    steps = [int(r["step"]) for r in csv.DictReader((tmp_path / "split" / "train_log.csv").open())]
    assert steps == [1, 2, 3, 4]


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    Trainer(TrainConfig.from_dict({**TINY, "steps": 1}), tmp_path, progress=False).run()
    other = TrainConfig.from_dict({**TINY, "lr": 0.5})
    with pytest.raises(InputError, match=r"different config.*lr"):
        Trainer(other, tmp_path, progress=False).run(resume=True)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 1


def test_sigterm_saves_a_checkpoint_and_resume_finishes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import yaml

    cfg_path = tmp_path / "train.yaml"
    cfg_path.write_text(yaml.safe_dump({**TINY, "steps": 500, "checkpoint_every": 1000}))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pumba",
            "train",
            "--config",
            str(cfg_path),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--no-progress",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    log = out / "train_log.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "checkpoint saved" in err
    stopped_at = load_checkpoint(out / "checkpoint.pt")["step"]
    assert 2 <= stopped_at < 500
    assert not (out / "model.pt").exists()
    cfg_path.write_text(yaml.safe_dump({**TINY, "steps": stopped_at + 2, "checkpoint_every": 1000}))
    from pumba.cli import main

    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--resume", "--no-progress"]) == 0
    _, info = load_model(out / "model.pt")
    assert info["meta"]["steps"] == stopped_at + 2


def test_same_seed_same_weights(tmp_path):
    cfg = TrainConfig.from_dict({**TINY, "steps": 2})
    a = Trainer(cfg, tmp_path / "a", progress=False)
    a.run()
    b = Trainer(cfg, tmp_path / "b", progress=False)
    b.run()
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_base_config_chain_merges_synth_and_refuses_loops(tmp_path):
    base = "steps: 7\nlr: 0.01\ninput_size: 32\nsynth:\n  size: 32\n  zoom: [0.5, 1.0]\n"
    (tmp_path / "a.yaml").write_text(base)
    (tmp_path / "b.yaml").write_text("base: a.yaml\nlr: 0.02\nsynth:\n  gamma_std: 0.2\n")
    cfg = TrainConfig.from_yaml(tmp_path / "b.yaml")
    assert (cfg.steps, cfg.lr) == (7, 0.02)
    assert cfg.synth == {"size": 32, "zoom": [0.5, 1.0], "gamma_std": 0.2}
    (tmp_path / "loop.yaml").write_text("base: loop2.yaml\n")
    (tmp_path / "loop2.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(InputError, match="loops back"):
        TrainConfig.from_yaml(tmp_path / "loop.yaml")
    (tmp_path / "missing.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(InputError, match=r"nowhere\.yaml"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")


def test_the_release_ablation_and_paper_configs_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "config"
    arms = sorted((root / "ablation").glob("*.yaml"))
    paths = [root / "release.yaml", root / "train" / "paper.yaml", *arms]
    for path in paths:
        cfg = TrainConfig.from_yaml(path)
        from pumba.model.train import synth_config

        synth_config(cfg)  # the generator settings are valid too
        assert not cfg.init or (root.parent / cfg.init).is_file(), path
    paper = TrainConfig.from_yaml(root / "train" / "paper.yaml")
    recipe = (paper.input_size, paper.steps, paper.lr, paper.pool_size, paper.init)
    assert recipe == (128, 147000, 1e-4, 0, "")


def test_init_weights_start_the_run_and_must_fit_the_architecture(tmp_path, tiny_model):
    cfg = TrainConfig.from_dict({**TINY, "steps": 1, "init": str(tiny_model)})
    trainer = Trainer(cfg, tmp_path / "a", progress=False)
    start, _ = load_model(tiny_model)
    for a, b in zip(trainer.model.parameters(), start.parameters(), strict=True):
        assert torch.equal(a, b)
    wider = TrainConfig.from_dict({**TINY, "steps": 1, "init": str(tiny_model), "bottleneck": 64})
    with pytest.raises(InputError, match="init weights are a"):
        Trainer(wider, tmp_path / "b", progress=False)


def test_snapshots_are_written_every_n_steps(tmp_path):
    cfg = TrainConfig.from_dict({**TINY, "snapshot_every": 2})
    Trainer(cfg, tmp_path, progress=False).run()
    snaps = sorted((tmp_path / "snapshots").glob("*.pt"))
    assert [p.name for p in snaps] == ["model_step000002.pt", "model_step000004.pt"]
    _, info = load_model(snaps[0])
    assert info["meta"]["steps"] == 2
    assert next(iter(torch.load(snaps[0], weights_only=False)["state_dict"].values())).dtype == torch.float16


def test_steps_flag_replaces_the_config_steps(tmp_path):
    import yaml

    from pumba.cli import main

    cfg_path = tmp_path / "train.yaml"
    cfg_path.write_text(yaml.safe_dump({**TINY, "steps": 50}))
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--steps", "2", "--no-progress"]) == 0
    assert [int(r["step"]) for r in csv.DictReader((out / "train_log.csv").open())] == [1, 2]
    assert load_model(out / "model.pt")[1]["meta"]["config"]["steps"] == 2
    assert yaml.safe_load((out / "config.yaml").read_text())["steps"] == 2


def test_a_deleted_log_comes_back_whole_from_the_checkpoint(tmp_path):
    # a workflow manager deletes a failed job's outputs (the log among them) before it runs the job again
    Trainer(TrainConfig.from_dict(TINY), tmp_path, progress=False).run()
    whole = (tmp_path / "train_log.csv").read_text()
    (tmp_path / "train_log.csv").unlink()
    (tmp_path / "model.pt").unlink()
    Trainer(TrainConfig.from_dict(TINY), tmp_path, progress=False).run(resume=True)
    assert (tmp_path / "train_log.csv").read_text() == whole and (tmp_path / "model.pt").exists()
    # resumed further, the log goes on from the checkpoint's rows
    (tmp_path / "train_log.csv").unlink()
    Trainer(TrainConfig.from_dict({**TINY, "steps": 6}), tmp_path, progress=False).run(resume=True)
    steps = [int(r["step"]) for r in csv.DictReader((tmp_path / "train_log.csv").open())]
    assert steps == [1, 2, 3, 4, 5, 6]
