"""Shared fixtures: small real heads shipped by Debian packages and a tiny trained model."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pumba.data.manifest import MANIFEST_COLUMNS

ITK_DIR = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
ITK_IMAGE = ITK_DIR / "KmeansTest_T1UCharRaw.nii.gz"
ITK_MASK = ITK_DIR / "KmeansTest_T1RawSkullStrip.nii.gz"
REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "data" / "mirror"
TINY_TRAIN = {
    "steps": 4,
    "input_size": 32,
    "pool_size": 2,
    "refresh_every": 2,
    "checkpoint_every": 2,
    "log_every": 1,
    "warmup_steps": 0,
    "synth": {"size": 64},
}
"""A training config of a few steps on small synthetic heads: for plumbing tests, not accuracy."""


@pytest.fixture(scope="session")
def itk_head() -> tuple[Path, Path]:
    """A real T1 head (128x128x62, 2x2x3 mm, LSA) and its brain mask, from insighttoolkit5-examples."""
    if not ITK_IMAGE.exists():
        pytest.skip("Debian package insighttoolkit5-examples is not installed (scripts/setup.sh installs it)")
    return ITK_IMAGE, ITK_MASK


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A model trained for 3 steps on 32^3 synthetic heads: fast, not accurate; for plumbing tests."""
    from pumba.model.config import TrainConfig
    from pumba.model.train import Trainer

    out = tmp_path_factory.mktemp("tiny_model")
    cfg = TrainConfig.from_dict({**TINY_TRAIN, "steps": 3})
    return Trainer(cfg, out, device="cpu", progress=False).run()


def head_phantom(shape=(48, 56, 40), zooms=(4.0, 4.0, 4.0)) -> nib.Nifti1Image:
    """A bright ellipsoidal 'brain' inside a darker shell, RAS, centred; float32."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    r = np.sqrt((grid**2).sum(0))
    data = np.where(r < 0.55, 0.8, np.where(r < 0.8, 0.4, 0.02)).astype(np.float32)
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = -np.asarray(zooms) * (np.asarray(shape) - 1) / 2
    return nib.Nifti1Image(data, affine)


def itk_manifest(directory: Path, image: Path, mask: Path) -> Path:
    """A one-scan dataset manifest (``pumba data prepare``'s columns) for the ITK head, in ``directory``."""
    manifest = directory / "manifest.tsv"
    manifest.write_text(
        "\t".join(MANIFEST_COLUMNS) + "\n" + f"itk\ts1\t{image}\t{mask}\thuman\tT1w\tnone\ts1\n"
    )
    return manifest


TINY_CONFIG = REPO / ".test" / "config" / "config.yaml"


def run_snakemake(*args: str, cwd: Path, timeout: int = 1500):
    """``python -m snakemake`` on the repository's workflow in ``cwd`` (the venv's bin first on PATH)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile")]
    cmd += ["--directory", str(cwd), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The real DAG run once on the tiny config (.test/config/config.yaml) and its report built.

    Returns (the run's directory, the run's CompletedProcess, the report's CompletedProcess); shared by the
    end-to-end test and the browser test so the DAG runs once per session.
    """
    cwd = tmp_path_factory.mktemp("tiny_run")
    run = run_snakemake("--cores", "2", "--configfile", str(TINY_CONFIG), cwd=cwd)
    report = None
    if run.returncode == 0:
        report = run_snakemake("--report", "results/report.html", "--configfile", str(TINY_CONFIG), cwd=cwd)
    return cwd, run, report
