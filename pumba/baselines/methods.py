"""Registry of the benchmark's methods: how to run each one as a child process.

Every method is a command line (``argv``) that reads one image and writes one binary mask on the
image's grid. The in-process baselines (otsu, gmm, bet, deepbet, mindgrab) are ``python -m`` modules of
this package that share :func:`baseline_main`; ``pumba`` is our own ``pumba strip`` command.
Threads are set by the runner through the environment (OMP_NUM_THREADS and friends); ``pumba strip``
also gets ``--threads``, since it sets torch's thread count itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

ArgvBuilder = Callable[[str, str, str | None, int | None], list[str]]


@dataclass(frozen=True)
class Setting:
    """One option of a method: a key of its config entry, a flag of its command line, an argument of its code.

    Attributes:
        name: a Python identifier; the command-line flag is ``--name`` with ``_`` written ``-``.
        kind: ``str``, ``int``, ``float`` or ``bool`` (a bool flag takes ``true``/``false``).
        default: the value when the config does not set it.
        help: one line, units included.
        choices: the allowed values (empty: any value of ``kind``).
    """

    name: str
    kind: type
    default: object
    help: str
    choices: tuple = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> object:
        """The value of a command-line string (``ValueError`` naming the setting when it is not one)."""
        if self.kind is bool:
            low = text.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{self.name}: {text!r} is not true or false")
            value: object = low in ("true", "1", "yes")
        else:
            try:
                value = self.kind(text)
            except ValueError:
                raise ValueError(f"{self.name}: {text!r} is not a {self.kind.__name__}") from None
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name}: {text!r} is not one of {', '.join(map(str, self.choices))}")
        return value

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--name`` to a parser, parsed by :meth:`parse`."""

        def convert(text: str) -> object:
            try:
                return self.parse(text)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        parser.add_argument(
            self.flag,
            dest=self.name,
            type=convert,
            default=self.default,
            help=f"{self.help} (default {self.default})",
        )


@dataclass(frozen=True)
class Method:
    """How to run one method.

    Attributes:
        name: the method's name in records and tables.
        summary: one line for ``--help``.
        argv: builds the child's command line from (image path, mask path, model path or None, threads or
            None).
        takes_model: whether ``--model`` means anything for this method.
    """

    name: str
    summary: str
    argv: ArgvBuilder
    takes_model: bool = False


def _module(module: str) -> ArgvBuilder:
    def build(image: str, mask: str, model: str | None, threads: int | None) -> list[str]:
        return [sys.executable, "-m", f"pumba.baselines.{module}", "-i", image, "-o", mask]

    return build


def _pumba(image: str, mask: str, model: str | None, threads: int | None) -> list[str]:
    # Without --model, ``pumba strip`` decides (packaged weights, or a one-line error).
    # The benchmark times every method on CPU, so the device is fixed.
    argv = [sys.executable, "-m", "pumba.cli", "strip", "-i", image, "-m", mask]
    if model is not None:
        argv += ["--model", model]
    if threads is not None:  # strip sets torch's threads itself (default: every core it may use)
        argv += ["--threads", str(threads)]
    return [*argv, "--device", "cpu"]


METHODS: Mapping[str, Method] = MappingProxyType(
    {
        m.name: m
        for m in (
            Method("otsu", "Otsu threshold + morphology floor", _module("otsu")),
            Method("gmm", "Gaussian-mixture intensity clustering floor (seeded)", _module("gmm")),
            Method("bet", "FSL BET re-implementation (brainextractor)", _module("bet")),
            Method("deepbet", "deepbet 2-stage U-Net, CPU", _module("deep_bet")),
            Method(
                "mindgrab", "MindGrab synthetic-trained MeshNet (web-app pipeline), CPU", _module("mindgrab")
            ),
            Method("pumba", "our model: pumba strip --model CKPT", _pumba, takes_model=True),
        )
    }
)


def available_methods() -> tuple[str, ...]:
    """Names of the registered methods, in registry order."""
    return tuple(METHODS)


def baseline_main(
    name: str,
    compute: Callable[..., np.ndarray],
    argv: Sequence[str] | None = None,
    *,
    seeded: bool,
    settings: Sequence[Setting] = (),
) -> int:
    """Shared ``main`` of the in-process baselines: ``-i IMAGE -o MASK [--seed N] [--SETTING VALUE ...]``.

    ``compute(volume, seed, **settings)`` returns a boolean mask of the volume's shape; it is written with the
    image's grid and affine as uint8 0/1 (atomically). A user error prints one line and returns 2;
    any other exception propagates (the runner records its last line).
    """
    from pumba.io import InputError, load_volume, save_like

    parser = argparse.ArgumentParser(
        prog=f"python -m pumba.baselines.{name}", description=f"{name} brain extraction baseline"
    )
    parser.add_argument("-i", "--input", required=True, help="head image (.nii, .nii.gz, .mgz)")
    parser.add_argument("-o", "--output", required=True, help="brain mask to write (uint8 0/1)")
    if seeded:
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    for setting in settings:
        setting.add_to(parser)
    args = parser.parse_args(argv)
    values = {s.name: getattr(args, s.name) for s in settings}
    try:
        volume = load_volume(args.input)
        mask = compute(volume, getattr(args, "seed", None), **values)
        save_like(np.asarray(mask, dtype=np.uint8), volume, args.output, dtype=np.uint8)
    except InputError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0
