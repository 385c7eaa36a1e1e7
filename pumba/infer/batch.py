"""Many scans in one run: find the inputs (files, folders, globs, a BIDS dataset), name the outputs from
templates, skip the scans whose outputs are complete, strip the rest with the model loaded once (in
``--jobs`` worker processes, each loading it once), go on past a bad file, and report.

A scan's outputs are complete when its JSON sidecar (written last, after the images, each atomically) exists,
names every output, records the same settings, weights (sha256) and input (sha256), and every output it
names exists: such a scan is skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pumba.io import InputError, make_output_dir, suffix_of, write_text_atomic

TEMPLATE_FIELDS = ("name", "rel")
"""Fields of an output template: ``{name}``, the input's file name without its image suffix; ``{rel}``, its
path relative to the folder (or the glob's fixed part) it was found in, without the suffix."""
PER_SCAN_BASE_BYTES = 600 * 2**20
"""Memory of one scan's work besides its voxels (the model, torch's buffers, the network grids), bytes."""
PER_VOXEL_BYTES = 32
"""Memory per input voxel at the peak of one scan's work with the score (float32 copies of the image, the
normalised image, the probability, the head mask's labels), bytes."""


@dataclass(frozen=True)
class Job:
    """One scan to strip: its image, its outputs by kind ('mask', 'stripped', 'prob'), the sidecar that
    records the run, extra sidecar keys first (BIDS ``Sources``), and extra JSON files to write beside
    other outputs (a BIDS sidecar for each image)."""

    image: Path
    outputs: dict[str, Path]
    sidecar: Path
    extra: dict = field(default_factory=dict)
    side_files: dict[Path, dict] = field(default_factory=dict)


def is_glob(spec: str) -> bool:
    """Whether ``spec`` holds glob characters."""
    return glob.has_magic(spec)


def image_stem(path: Path) -> str:
    """A file name without its image suffix (``sub-01_T1w.nii.gz`` -> ``sub-01_T1w``)."""
    suffix = suffix_of(path)
    return path.name[: -len(suffix)] if suffix else path.stem


def _rel(path: Path, root: Path) -> str:
    relative = path.relative_to(root)
    return str(relative.parent / image_stem(relative)) if str(relative.parent) != "." else image_stem(path)


def find_inputs(specs: Sequence[str], bids_suffixes: Sequence[str] = ("T1w",)) -> list[tuple[Path, str]]:
    """(image, rel) of every input the specs name, sorted, without duplicates: a file as it is; a folder's
    images (``.nii``, ``.nii.gz``, ``.mgz``, ``.mgh``) at any depth, or, for a BIDS dataset (a folder with
    ``dataset_description.json``), its ``sub-*/[ses-*/]anat/*_<suffix>`` images of ``bids_suffixes``; a glob's
    matches (``**`` at any depth). Hidden files and folders (a temporary file, ``.git``) are left out.

    Raises:
        InputError: a spec that names nothing (a missing file, a glob without matches, a folder without
            images).
    """
    found: dict[Path, str] = {}
    for spec in specs:
        matches: list[tuple[Path, str]] = []
        path = Path(spec)
        if is_glob(spec):
            root = Path(_fixed_prefix(spec))
            for hit in sorted(glob.glob(spec, recursive=True)):
                p = Path(hit)
                if p.is_file() and suffix_of(p) and not _hidden(p, root):
                    matches.append((p, _rel(p, root)))
            if not matches:
                raise InputError(f"{spec}: no image matches this pattern")
        elif path.is_dir():
            if (path / "dataset_description.json").is_file():
                from pumba.infer.bids import bids_inputs

                matches = [(p, _rel(p, path)) for p, _ in bids_inputs(path, suffixes=bids_suffixes)]
            else:
                matches = [
                    (p, _rel(p, path))
                    for p in sorted(path.rglob("*"))
                    if p.is_file() and suffix_of(p) and not _hidden(p, path)
                ]
            if not matches:
                raise InputError(f"{spec}: no image (.nii, .nii.gz, .mgz, .mgh) in this folder")
        elif path.exists():
            matches = [(path, image_stem(path))]
        else:
            raise InputError(f"{spec}: no such file")
        for p, rel in matches:
            found.setdefault(p, rel)
    return sorted(found.items())


def _fixed_prefix(pattern: str) -> str:
    """The folder part of a glob before its first magic component (``.`` if none)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."


def _hidden(path: Path, root: Path) -> bool:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    return any(p.startswith(".") and p not in (".", "..") for p in parts)


def check_template(template: str, option: str) -> None:
    """Refuse an output template without ``{name}`` or ``{rel}`` (every scan would write one file), or with
    another field."""
    fields = set(re.findall(r"{([^{}]*)}", template))
    unknown = fields - set(TEMPLATE_FIELDS)
    if unknown:
        raise InputError(
            f"{option} {template}: unknown field {{{sorted(unknown)[0]}}}; use {{name}} or {{rel}}"
        )
    if not fields:
        raise InputError(
            f"{option} {template}: with several inputs an output needs {{name}} or {{rel}} in its name "
            "(e.g. masks/{name}_mask.nii.gz)"
        )
    if not suffix_of(template):
        raise InputError(f"{option} {template}: unknown output format; use .nii.gz, .nii, .mgz or .mgh")


def _template_regex(template: str) -> re.Pattern:
    """A pattern matching every path ``template`` can produce (absolute)."""
    absolute = os.path.abspath(template)
    pieces = re.split(r"({name}|{rel})", absolute)
    body = "".join("[^/]+" if p == "{name}" else ".+" if p == "{rel}" else re.escape(p) for p in pieces)
    return re.compile(f"^{body}$")


def plan_jobs(
    inputs: Sequence[tuple[Path, str]], templates: dict[str, str | None], sidecar: str | None = None
) -> list[Job]:
    """One job per input, its outputs from ``templates`` (kind -> template, None: not written) and its
    sidecar from ``sidecar`` (default: the first output's name with ``.json``). Inputs that an output
    template could have written (an earlier run's masks in the input folder) are left out.

    Raises:
        InputError: a bad template, or two inputs that would write one output.
    """
    used = {k: t for k, t in templates.items() if t is not None}
    if not used:
        raise InputError("give an output: -m MASK, -o STRIPPED and/or --prob PROB")
    for kind, template in used.items():
        check_template(template, {"mask": "-m", "stripped": "-o", "prob": "--prob"}[kind])
    patterns = [_template_regex(t) for t in used.values()]
    if sidecar is not None:
        patterns.append(_template_regex(sidecar))
    jobs, owners = [], {}
    for image, rel in inputs:
        if any(p.match(os.path.abspath(image)) for p in patterns):
            continue
        fields = {"name": image_stem(image), "rel": rel}
        outputs = {k: Path(t.format(**fields)) for k, t in used.items()}
        first = next(iter(outputs.values()))
        side = Path(sidecar.format(**fields)) if sidecar else first.with_name(image_stem(first) + ".json")
        for out in [*outputs.values(), side]:
            key = os.path.abspath(out)
            if key in owners:
                raise InputError(
                    f"{out}: both {owners[key]} and {image} would write it; use {{rel}} in the name"
                )
            if key == os.path.abspath(image):
                raise InputError(f"{out}: output would overwrite the input; choose another name")
            owners[key] = image
        jobs.append(Job(image, outputs, side))
    return jobs


def complete(job: Job, settings: dict, weights_sha256: str) -> dict | None:
    """The sidecar of a job whose outputs are complete (module docstring), else None."""
    try:
        record = json.loads(job.sidecar.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    from pumba.io import file_digest

    wanted = {k: str(v) for k, v in job.outputs.items()}
    same = (
        _comparable(record.get("Settings")) == _comparable(settings)
        and (record.get("GeneratedBy") or {}).get("WeightsSHA256") == weights_sha256
        and record.get("Outputs") == wanted
        and all(p.is_file() for p in job.outputs.values())
    )
    if not same:
        return None
    try:
        if (record.get("Input") or {}).get("sha256") != file_digest(job.image):
            return None
    except OSError:
        return None
    return record


def _comparable(settings: object) -> object:
    """Settings less the device (a mask made on a GPU needs no redoing on a CPU)."""
    if not isinstance(settings, dict):
        return settings
    return {k: v for k, v in settings.items() if k != "device"}


def memory_available() -> int | None:
    """Bytes of memory available now (``MemAvailable`` of /proc/meminfo), None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def scan_bytes(image: Path) -> int:
    """Estimated peak memory of one scan's work (bytes), from its header's voxel count."""
    import nibabel as nib

    try:
        shape = nib.load(str(image)).shape
    except Exception:  # an unreadable file fails in its job, with its own message
        return PER_SCAN_BASE_BYTES
    voxels = 1
    for n in shape[:3]:
        voxels *= int(n)
    return PER_SCAN_BASE_BYTES + PER_VOXEL_BYTES * voxels


def jobs_within_memory(requested: int, images: Iterable[Path], available: int | None) -> int:
    """The number of parallel scans: ``requested``, fewer when that many of the largest scan would not fit in
    80 % of the ``available`` memory (bytes; None: no bound), at least 1."""
    largest = max((scan_bytes(p) for p in images), default=PER_SCAN_BASE_BYTES)
    if available is None:
        return max(1, requested)
    return max(1, min(requested, int(0.8 * available // largest)))


@dataclass
class Outcome:
    """One scan's result in a batch: status 'ok', 'skipped' (complete already) or 'failed'."""

    image: Path
    status: str
    error: str | None = None
    mask: str | None = None
    qc_score: float | None = None
    qc_flag: bool | None = None
    brain_ml: float | None = None
    mode: str | None = None
    seconds: float | None = None


_WORKER: dict = {}


def _init_worker(stripper_kwargs: dict) -> None:
    """A worker process's set-up: load the model once."""
    import signal

    from pumba.infer.api import Stripper

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    _WORKER["stripper"] = Stripper(**stripper_kwargs)


def _run(job: Job, border_mm: float, qc: bool, stripper=None) -> Outcome:
    """Strip one job's scan; a bad file becomes a failed outcome with its one-line error."""
    from pumba.cli import os_error_line
    from pumba.infer.strip import strip

    stripper = stripper or _WORKER["stripper"]
    try:
        for out in [*job.outputs.values(), job.sidecar, *job.side_files]:
            make_output_dir(out.parent)
        result = strip(
            job.image,
            job.outputs.get("mask"),
            job.outputs.get("stripped"),
            prob_path=job.outputs.get("prob"),
            border_mm=border_mm,
            sidecar_path=job.sidecar,
            qc=qc,
            stripper=stripper,
            extra_sidecar=job.extra,
            side_files=job.side_files,
        )
    except InputError as exc:
        return Outcome(job.image, "failed", str(exc))
    except OSError as exc:
        return Outcome(job.image, "failed", os_error_line(exc))
    except (ValueError, RuntimeError, MemoryError) as exc:  # a scan the code could not handle: go on
        text = " ".join(str(exc).split())[:200]
        return Outcome(job.image, "failed", f"{job.image}: {type(exc).__name__}: {text}")
    q = result.qc
    return Outcome(
        job.image,
        "ok",
        None,
        str(job.outputs.get("mask") or next(iter(job.outputs.values()))),
        None if q is None else round(q.score, 4),
        None if q is None else q.flag,
        round(result.brain_ml, 3),
        result.mode,
        round(result.seconds, 3),
    )


def run_batch(
    jobs: Sequence[Job],
    stripper_kwargs: dict,
    border_mm: float = 0.0,
    qc: bool = True,
    n_jobs: int = 1,
    progress: bool | None = None,
    log=None,
) -> list[Outcome]:
    """Strip every job's scan, skipping the complete ones (:func:`complete`), with the model loaded once per
    process; ``n_jobs`` worker processes (fewer when memory would not hold them, :func:`jobs_within_memory`),
    each with ``threads`` // ``n_jobs`` torch threads unless ``stripper_kwargs`` sets them. A progress bar on
    ``log`` (``progress`` None: only on a terminal). Returns one outcome per job, in order."""
    from tqdm import tqdm

    from pumba.infer.api import Stripper
    from pumba.infer.strip import available_cores

    log = sys.stderr if log is None else log
    stripper = Stripper(**stripper_kwargs)
    settings = {**stripper.settings, "border_mm": float(border_mm), "qc": bool(qc)}
    outcomes: dict[int, Outcome] = {}
    todo = []
    for i, job in enumerate(jobs):
        record = complete(job, settings, stripper.weights_sha256)
        if record is None:
            todo.append(i)
            continue
        q = record.get("QC") or {}
        outcomes[i] = Outcome(
            job.image,
            "skipped",
            None,
            record["Outputs"].get("mask"),
            q.get("score"),
            q.get("flag"),
            record.get("BrainVolume_ml"),
            (record.get("Geometry") or {}).get("mode"),
            0.0,
        )
    n = jobs_within_memory(n_jobs, [jobs[i].image for i in todo], memory_available()) if todo else 1
    n = min(n, max(1, len(todo)))
    if n < n_jobs and todo:
        print(
            f"pumba strip: running {n} scan(s) at a time, not {n_jobs}: memory would not hold more", file=log
        )
    bar = tqdm(
        total=len(jobs),
        initial=len(jobs) - len(todo),
        unit="scan",
        file=log,
        disable=(not log.isatty()) if progress is None else not progress,
        desc="pumba strip",
    )
    try:
        if n == 1:
            for i in todo:
                outcomes[i] = _run(jobs[i], border_mm, qc, stripper)
                bar.update()
        else:
            import concurrent.futures as cf
            import multiprocessing

            kwargs = dict(stripper_kwargs)
            if kwargs.get("threads") is None:
                kwargs["threads"] = max(1, available_cores() // n)
            del stripper
            ctx = multiprocessing.get_context("spawn")  # torch's threads do not survive a fork
            with cf.ProcessPoolExecutor(
                n, mp_context=ctx, initializer=_init_worker, initargs=(kwargs,)
            ) as pool:
                futures = {pool.submit(_run, jobs[i], border_mm, qc): i for i in todo}
                try:
                    for future in cf.as_completed(futures):
                        outcomes[futures[future]] = future.result()
                        bar.update()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()
    return [outcomes[i] for i in range(len(jobs))]


REPORT_COLUMNS = ("input", "status", "error", "mask", "qc_score", "qc_flag", "brain_ml", "mode", "seconds")


def write_report(outcomes: Sequence[Outcome], path: str | Path) -> None:
    """A TSV of every scan (:data:`REPORT_COLUMNS`), the failed first, then the flagged, then by QC score
    (lowest first): the masks to look at on top."""

    def key(o: Outcome) -> tuple:
        return (
            o.status != "failed",
            not o.qc_flag,
            o.qc_score if o.qc_score is not None else 2.0,
            str(o.image),
        )

    lines = ["\t".join(REPORT_COLUMNS)]
    for o in sorted(outcomes, key=key):
        values = [o.image, o.status, o.error, o.mask, o.qc_score, o.qc_flag, o.brain_ml, o.mode, o.seconds]
        lines.append("\t".join("" if v is None else str(v).replace("\t", " ") for v in values))
    write_text_atomic(path, "\n".join(lines) + "\n")


def summary(outcomes: Sequence[Outcome]) -> list[str]:
    """Lines for stderr: the counts, each failure's error and each flagged mask."""
    ok = sum(o.status == "ok" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    failed = [o for o in outcomes if o.status == "failed"]
    flagged = [o for o in outcomes if o.qc_flag]
    lines = [
        f"pumba strip: {len(outcomes)} scan(s): {ok} stripped, {skipped} complete already (skipped), "
        f"{len(failed)} failed; {len(flagged)} mask(s) flagged by the quality score"
    ]
    lines += [f"pumba strip: failed: {o.error}" for o in failed]
    lines += [f"pumba strip: flagged (QC {o.qc_score:.3f}): {o.mask}" for o in flagged]
    return lines
