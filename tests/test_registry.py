"""The method registry's settings (pumba.bench.settings) and the parse-time dataset plan (pumba.data.plan)."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import pytest

import pumba
from pumba.bench.registry import METHODS, method_plan
from pumba.bench.settings import Setting, resolve_settings, settings_argv
from pumba.data.plan import plan_datasets
from pumba.data.registry import load_registry

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "data" / "mirror"


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        (Setting("mode", str, "fast", "", choices=("fast", "accurate")), "accurate", ["--mode", "accurate"]),
        (Setting("border", float, 1.0, ""), 2, ["--border", "2.0"]),
        (Setting("seed", int, 0, ""), "7", ["--seed", "7"]),
        (Setting("tta", bool, True, ""), False, ["--no-tta"]),
        (Setting("tta", bool, True, ""), "yes", ["--tta"]),
        (Setting("weights", str, "", "", flag="--model"), "m.pt", ["--model", "m.pt"]),
    ],
)
def test_a_setting_round_trips_through_its_flag(setting, value, words):
    assert setting.argv(value) == words
    parser = argparse.ArgumentParser()
    setting.add_to(parser)
    assert getattr(parser.parse_args(words), setting.name) == setting.check(value)
    assert getattr(parser.parse_args([]), setting.name) == setting.default


def test_settings_are_checked_and_only_given_ones_written():
    settings = (Setting("seed", int, 0, ""), Setting("tta", bool, True, ""))
    assert resolve_settings(settings, {"tta": False}, "m") == {"seed": 0, "tta": False}
    assert settings_argv(settings, {"tta": False}, "m") == ["--no-tta"]
    with pytest.raises(ValueError, match=r"m: unknown setting 'sed' \(settings: seed, tta\)"):
        resolve_settings(settings, {"sed": 1}, "m")
    with pytest.raises(ValueError, match="m: seed: True is not a int"):
        resolve_settings(settings, {"seed": True}, "m")


def test_every_peer_module_takes_its_registered_settings():
    """The registry's settings of a peer are the keyword arguments of its mask function (one contract)."""
    import importlib

    for method in METHODS.values():
        if method.tool == "pumba":
            continue
        module = method.command("i", "o", None)[2].removeprefix("pumba.baselines.")
        if importlib.util.find_spec(f"pumba.baselines.{module}") is None:
            pytest.fail(f"{method.tool}: no module pumba.baselines.{module}")
        functions = [
            f
            for name, f in inspect.getmembers(importlib.import_module(f"pumba.baselines.{module}"))
            if name.endswith("_mask") and inspect.isfunction(f)
        ]
        assert functions, f"{module}: no *_mask function"
        keywords = {
            p.name for p in inspect.signature(functions[0]).parameters.values() if p.kind is p.KEYWORD_ONLY
        }
        assert {s.name for s in method.settings} <= keywords | {"seed"}, method.tool


def test_a_method_that_needs_a_file_is_skipped_without_it(tmp_path):
    assert method_plan("s", {"tool": "synthstrip"}).skipped.startswith("no weights given")
    missing = method_plan("s", {"tool": "synthstrip", "weights": "nope.pt"}, tmp_path)
    assert missing.skipped == "weights nope.pt: no such file"
    (tmp_path / "w.pt").write_bytes(b"x")
    assert method_plan("s", {"tool": "synthstrip", "weights": "w.pt"}, tmp_path).skipped is None


def test_the_dataset_plan_knows_subjects_and_reasons_before_any_fetch(tmp_path):
    registry = load_registry(REPO / "config" / "datasets.yaml")
    ids = ["itk-kmeans", "sherm-mouse", "allineate-t1-neck"]
    offline = plan_datasets(registry, ids, tmp_path / "cache", None, None, allow_download=False)
    assert offline["itk-kmeans"].subjects == ("kmeans",) or not Path("/usr/share/doc").exists()
    assert offline["sherm-mouse"].subjects == ()
    assert "not in the cache or the mirror, and downloads are off" in offline["sherm-mouse"].reason
    online = plan_datasets(registry, ids, tmp_path / "cache", None, None, allow_download=True)
    assert online["sherm-mouse"].subjects == ("mouse_t1_1",) and online["sherm-mouse"].available
    # a scan whose mask the team made: without the reference-mask directory, the reason names it
    assert "reference mask" in online["allineate-t1-neck"].reason
    if MIRROR.is_dir():
        mirrored = plan_datasets(registry, ids, tmp_path / "cache", MIRROR, None, allow_download=False)
        assert mirrored["sherm-mouse"].available
    assert not list((tmp_path).iterdir())  # nothing fetched, no cache made


def test_our_records_name_the_model_file_they_ran(tiny_model):
    from pumba.bench.registry import tool_version
    from pumba.io import file_digest

    version = tool_version(METHODS["pumba"], {"weights": str(tiny_model)})
    assert version == f"pumba {pumba.__version__}, {tiny_model.name} sha256:{file_digest(tiny_model)[:16]}"
    assert tool_version(METHODS["pumba"], {"weights": ""}).split(", ")[1].startswith("pumba-v2.pt sha256:")
