"""The workflow on a real SLURM: a throw-away single-node cluster on localhost (scripts/slurm-cluster.sh) runs
the tiny DAG through the SLURM profile. Needs root (daemons, /etc/slurm) and apt or an installed SLURM."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm-cluster.sh"
SNAKEFILE = REPO / "workflow" / "Snakefile"
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
CONFIGS = [REPO / ".test" / "config" / "config.yaml", REPO / ".test" / "config" / "slurm.yaml"]
DAEMONS = ("munged", "slurmctld", "slurmd", "slurmstepd")
# "Job 3 has been submitted with SLURM jobid 17 (log: /.../logs/slurm/rule_train/17.log)."
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)")


def bounded(cmd: list[str], limit_s: int, **kwargs) -> subprocess.CompletedProcess:
    """Run under `timeout -k 30 LIMIT`: a SLURM run that waits for ever must not hang the test session."""
    return subprocess.run(
        ["timeout", "-k", "30", str(limit_s), *map(str, cmd)],
        capture_output=True,
        text=True,
        timeout=limit_s + 60,
        **kwargs,
    )


def daemon_pids() -> set[int]:
    """PIDs of the processes named like a SLURM or MUNGE daemon, from /proc."""
    pids = set()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in DAEMONS:
                pids.add(int(comm.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return pids


@dataclass(frozen=True)
class Cluster:
    state: Path
    started: dict[str, int]  # daemon name -> PID, as the script recorded them
    before: set[int]  # daemon-like processes that existed before the cluster started


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("needs root: the throw-away SLURM cluster installs packages and starts daemons")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and apt-get is not available to install it")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail("snakemake-executor-plugin-slurm is not installed: pip install -e '.[slurm]'")
    before = daemon_pids()
    # Not under pytest's tmp_path: users munge and slurm must reach the state directory.
    parent = Path(tempfile.mkdtemp(prefix="pumba-slurm-test-"))
    parent.chmod(0o755)
    state = parent / "state"
    env = dict(os.environ, PUMBA_SLURM_GPUS="2", PUMBA_SLURM_MEM_MB="32000")
    try:
        res = bounded([SCRIPT, "start", state], 600, env=env)  # includes apt-get install on a fresh machine
        assert res.returncode == 0, res.stdout + res.stderr
        started = {name: int(pid) for name, pid in (line.split() for line in (state / "pids").open())}
        yield Cluster(state, started, before)
    finally:
        bounded([SCRIPT, "stop", state], 120)
        shutil.rmtree(parent, ignore_errors=True)


def run_workflow(
    workdir: Path, profile_dir: Path, *targets: str, limit_s: int, configs: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess:
    """The tiny config (plus `configs`, layered on top) through `--workflow-profile`; jobs find `pumba` on the
    PATH that sbatch exports."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        *targets,
        "--snakefile",
        SNAKEFILE,
        "--directory",
        workdir,
        "--workflow-profile",
        profile_dir,
        # The plugin's first status query comes 40 s after submission by default; our jobs take ~10 s.
        "--slurm-init-seconds-before-status-checks",
        "5",
        "--configfile",
        *CONFIGS,
        *configs,
    ]
    return bounded(cmd, limit_s, cwd=workdir, env=env)


def site_profile(tmp_path: Path, **train: object) -> Path:
    """A copy of the SLURM profile with extra resources for rule train, as a site would keep one."""
    profile = yaml.safe_load(PROFILE.read_text())
    profile["set-resources"]["train"].update(train)
    out = tmp_path / "profile"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(profile))
    return out


def scontrol_job(jobid: str) -> dict[str, str]:
    """`scontrol show job` as key=value pairs (finished jobs stay visible for the cluster's MinJobAge)."""
    res = bounded(["scontrol", "show", "job", "--oneliner", jobid], 30)
    assert res.returncode == 0, res.stderr
    return dict(re.findall(r"(\w+)=(\S*)", res.stdout))


def submissions(output: str) -> list[tuple[str, str, Path]]:
    """(SLURM job id, rule, SLURM log file) of every job the run submitted, from snakemake's output."""
    found = []
    for jobid, log in SUBMITTED.findall(output):
        rule = next(p.removeprefix("rule_") for p in Path(log).parts if p.startswith("rule_"))
        found.append((jobid, rule, Path(log)))
    return found


def test_tiny_dag_runs_through_sbatch(cluster, tmp_path, itk_head):
    work = tmp_path / "work"
    work.mkdir()
    res = run_workflow(work, site_profile(tmp_path, slurm_partition="gpu"), limit_s=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]

    jobs = submissions(out)
    rules = {rule for _, rule, _ in jobs}
    assert {"prepare_dataset", "train", "strip", "evaluate", "summarise"} <= rules
    assert "all" not in rules  # a target rule without a command is not worth a job
    assert len({jobid for jobid, _, _ in jobs}) == len(jobs)
    for jobid, rule, log in jobs:
        # SLURM wrote each job's log where the profile's slurm-logdir says, under the job's own id.
        assert log.is_file() and log.name == f"{jobid}.log", log
        assert log.is_relative_to(work / "logs" / "slurm" / f"rule_{rule}")
        info = scontrol_job(jobid)
        assert info["JobState"] == "COMPLETED", (rule, info)
        assert info["JobName"].startswith("pumba_")
        assert info["WorkDir"] == str(work)
        if rule == "train":
            # The profile's GPU request reached sbatch (--gpus=1) and SLURM honoured the site's partition.
            assert info["Partition"] == "gpu", info
            assert info["TresPerJob"] == "gres:gpu:1", info
        else:
            assert info["Partition"] == "cpu", (rule, info)
            assert "gpu" not in info.get("TresPerJob", ""), (rule, info)

    summary = pd.read_csv(work / "results" / "tables" / "summary.csv")
    assert set(zip(summary["method"], summary["dataset"], strict=True)) == {
        ("pumba-quick", "itk-kmeans"),
        ("otsu", "itk-kmeans"),
    }
    assert summary["dice_mean"].between(0, 1).all()
    otsu = summary[summary["method"] == "otsu"].iloc[0]
    assert otsu["n_failed"] == 0 and otsu["dice_mean"] > 0.3
    assert (work / "results" / "model" / "pumba-quick" / "model.pt").is_file()


def test_failing_job_is_reported_failed_after_its_retry(cluster, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    bad_train = tmp_path / "bad_train.yaml"
    bad_train.write_text("stepz: 3\n")
    override = tmp_path / "bad.yaml"
    override.write_text(yaml.safe_dump({"methods": {"pumba-quick": {"train": str(bad_train)}}}))
    res = run_workflow(
        work, PROFILE.parent, "results/model/pumba-quick/model.pt", configs=(override,), limit_s=180
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-6000:]
    assert "Error in rule train" in out
    jobs = submissions(out)
    # The profile's `retries: 1`: the job was submitted twice, as two SLURM jobs, and both failed.
    assert [rule for _, rule, _ in jobs] == ["train", "train"], out[-6000:]
    for jobid, _, _ in jobs:
        assert scontrol_job(jobid)["JobState"] == "FAILED"
        assert f"SLURM-job '{jobid}' failed" in out
    assert "stepz" in (work / "logs" / "model" / "train_pumba-quick.log").read_text()
    assert not (work / "results" / "model" / "pumba-quick" / "model.pt").exists()


def test_stop_removes_exactly_what_start_made(cluster):
    assert set(cluster.started) == {"munged", "slurmctld", "slurmd"}
    assert set(cluster.started.values()) <= daemon_pids()
    res = bounded([SCRIPT, "stop", cluster.state], 120)
    assert res.returncode == 0, res.stdout + res.stderr
    # No daemon it started is left, nor any job step of its jobs.
    assert daemon_pids() - cluster.before == set()
    assert not cluster.state.exists()
    conf = Path("/etc/slurm/slurm.conf")
    assert not conf.exists() or "pumba-slurm-cluster" not in conf.read_text()
    status = bounded([SCRIPT, "status", cluster.state], 30)
    assert status.returncode != 0 and "not running" in status.stdout
