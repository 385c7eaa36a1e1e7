"""Run one method on one image in a child process and write a JSON run record.

The child is isolated so that a crash (a Python exception, a segfault, running out of memory or
time) becomes a record with ``status: "failed"`` instead of killing the benchmark. A small helper
process (see :func:`run_child`) measures the method's wall-clock seconds and its peak resident
memory (``ru_maxrss`` from ``os.wait4``, which covers the method and any processes it waited for).

The record's fields are defined in :mod:`pumba.bench.record`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pumba
from pumba.bench.record import RUN_INFO_VARIABLE
from pumba.bench.registry import METHODS, Method, tool_version
from pumba.bench.settings import resolve_settings, settings_argv
from pumba.grid import same_grid
from pumba.io import InputError, write_text_atomic

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
# Everything a method might cache or configure goes under a throw-away home, never the user's.
HOME_VARIABLES = (
    "HOME",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "MPLCONFIGDIR",
)
ERROR_CHARS = 300
STDERR_TAIL_BYTES = 65536


def child_environment(home: Path, threads: int | None) -> dict[str, str]:
    """The child's environment: ours, with a private home and cache dirs and the thread limit."""
    env = dict(os.environ)
    for name in HOME_VARIABLES:
        env[name] = str(home)
    if threads is not None:
        for name in THREAD_VARIABLES:
            env[name] = str(threads)
    # ``python -m pumba...`` must find this package even when it is not installed.
    root = str(Path(pumba.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _last_line(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(max(f.seek(0, os.SEEK_END) - STDERR_TAIL_BYTES, 0))
        text = f.read().decode("utf-8", errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:ERROR_CHARS] if lines else ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# A Linux process inherits, on exec, the peak RSS of the memory image it replaces: a child spawned
# straight from a large parent would report at least the parent's peak. So the method is spawned
# from this tiny stdlib-only helper (-S: no site imports), which reports the method's own wait
# status, peak RSS (KiB on Linux, bytes on macOS) and wall seconds to a file.
_HELPER = """
import os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
try:
    pid = os.posix_spawnp(argv[0], argv, os.environ)
except OSError as exc:
    sys.stderr.write(f"could not start {argv[0]}: {exc}\\n")
    sys.exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(report, "w") as f:
    f.write(f"{status} {usage.ru_maxrss} {seconds}")
"""


@dataclass(frozen=True)
class ChildResult:
    """How a child run ended: exit code (negative = signal), wall seconds, peak RSS in MB."""

    returncode: int
    seconds: float
    peak_rss_mb: float | None
    timed_out: bool


def run_child(
    argv: list[str],
    env: dict[str, str],
    stderr_path: Path,
    report_path: Path,
    timeout_s: float | None,
) -> ChildResult:
    """Run ``argv`` through the measuring helper, in its own process group; stdout is discarded.

    Past ``timeout_s`` the whole group is killed, and the peak memory is unknown (None).
    Raises OSError if the helper itself cannot start.
    """
    helper = [sys.executable, "-S", "-c", _HELPER, str(report_path), *argv]
    start = time.perf_counter()
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            helper,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            start_new_session=True,
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # on a timeout, and on Ctrl-C in the parent: leave no orphan behind
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    seconds = time.perf_counter() - start
    if timed_out or not report_path.exists():
        return ChildResult(proc.returncode, seconds, None, timed_out)
    status, maxrss, child_seconds = report_path.read_text().split()
    peak_mb = int(maxrss) / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return ChildResult(os.waitstatus_to_exitcode(int(status)), float(child_seconds), peak_mb, timed_out)


def _check_mask(mask_out: Path, image: Path) -> str | None:
    """None if the mask is a readable, non-empty volume on the image's grid, else the problem (one line)."""
    import nibabel as nib
    import numpy as np

    try:
        mask_img, image_img = nib.load(str(mask_out)), nib.load(str(image))
    except Exception as exc:
        return f"{mask_out}: unreadable mask ({str(exc).strip()[:200]})"
    if not same_grid(mask_img.shape[:3], mask_img.affine, image_img.shape[:3], image_img.affine):
        return f"{mask_out}: mask is not on the input image's grid"
    try:
        if not np.any(np.asanyarray(mask_img.dataobj)):
            return "empty mask: no brain voxel"
    except Exception as exc:
        return f"{mask_out}: unreadable mask ({str(exc).strip()[:200]})"
    return None


def run_method(
    tool: str,
    image: str | os.PathLike,
    mask_out: str | os.PathLike,
    record_out: str | os.PathLike,
    settings: Mapping[str, object] | None = None,
    threads: int | None = None,
    timeout_s: float | None = None,
    *,
    dataset: str | None = None,
    subject: str | None = None,
    name: str | None = None,
    methods: Mapping[str, Method] | None = None,
) -> dict:
    """Run ``tool`` on ``image`` in a child process; write the mask and a JSON record atomically.

    Args:
        tool: a registered tool (a key of :data:`pumba.bench.registry.METHODS`).
        image: the input head image.
        mask_out: where the method writes its binary mask (removed if the run fails).
        record_out: where the JSON record goes.
        settings: values of the tool's settings (the rest keep their defaults), e.g.
            ``{"weights": "model.pt"}`` for ``pumba``; they reach the child as its flags.
        threads: thread limit for the child (OMP/MKL/OpenBLAS/numba variables); None = inherit.
        timeout_s: wall-clock limit in seconds; past it the child's process group is killed.
        dataset, subject: copied into the record (the keys of the evaluation tables).
        name: the method's name in the record and the tables (default ``tool``), e.g. ``pumba-quick``
            for tool ``pumba`` run with another model.
        methods: the registry to use (tests add methods that crash on purpose).

    Returns:
        The record that was written. A method failure never raises: the record says "failed".

    Raises:
        InputError: unknown tool, an unknown setting or a bad value, a non-positive thread count or
            timeout, or an output directory that does not exist.
    """
    registry = METHODS if methods is None else methods
    if tool not in registry:
        raise InputError(f"{tool}: unknown tool; available: {', '.join(registry)}")
    spec = registry[tool]
    values = dict(settings or {})
    try:
        resolved = resolve_settings(spec.settings, values, f"tool {tool}")
        flags = settings_argv(spec.settings, values, f"tool {tool}")
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if threads is not None and threads < 1:
        raise InputError(f"{threads}: thread count must be at least 1")
    if timeout_s is not None and timeout_s <= 0:
        raise InputError(f"{timeout_s}: timeout must be positive seconds")
    image, mask_out, record_out = Path(image), Path(mask_out), Path(record_out)
    for out in (mask_out, record_out):
        if not out.parent.is_dir():
            raise InputError(f"{out}: output directory {out.parent} does not exist")
    # A mask left by an earlier run must not pass for this run's output.
    mask_out.unlink(missing_ok=True)

    argv = [*spec.command(str(image), str(mask_out), threads), *flags]
    home = Path(tempfile.mkdtemp(prefix="pumba-run-"))
    stderr_path = home / "stderr.log"
    env = child_environment(home, threads)
    env[RUN_INFO_VARIABLE] = str(home / "run_info.json")
    result: ChildResult | None = None
    try:
        try:
            result = run_child(argv, env, stderr_path, home / "report", timeout_s)
        except OSError as exc:
            error = f"could not start {sys.executable}: {exc}"
        else:
            error = _failure(result, timeout_s, stderr_path, mask_out, image)
        info = _run_info(home / "run_info.json") or {}
        qc = info.pop("qc", None) if error is None else None
        geometry = info or {"grid": spec.geometry}
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if error is not None:
        mask_out.unlink(missing_ok=True)
    record = {
        "method": name or tool,
        "tool": tool,
        "version": tool_version(spec, resolved),
        "settings": resolved,
        "geometry": geometry,
        "dataset": dataset,
        "subject": subject,
        "image": str(image),
        "mask": None if error is not None else str(mask_out),
        "status": "failed" if error is not None else "ok",
        "error": error,
        "seconds": _rounded(result and result.seconds, 3),
        "peak_rss_mb": _rounded(result and result.peak_rss_mb, 1),
        "returncode": result and result.returncode,
        "qc": qc if isinstance(qc, dict) else None,
    }
    write_text_atomic(record_out, json.dumps(record, indent=2) + "\n")
    return record


def _run_info(path: Path) -> dict | None:
    """What the child reported about its run (a JSON object), or None."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _failure(
    result: ChildResult,
    timeout_s: float | None,
    stderr_path: Path,
    mask_out: Path,
    image: Path,
) -> str | None:
    """Why the run failed (one line), or None if it succeeded."""
    returncode = result.returncode
    if result.timed_out:
        return f"timed out after {timeout_s:g} s"
    if returncode == -signal.SIGKILL:
        return "crashed: killed by SIGKILL (out of memory?)"
    if returncode < 0:
        return f"crashed: killed by {_signal_name(-returncode)}"
    if returncode > 0:
        last = _last_line(stderr_path)
        return f"exit status {returncode}" + (f": {last}" if last else "")
    if not mask_out.exists():
        return "exited 0 but wrote no mask"
    return _check_mask(mask_out, image)
