"""One option of a method: its config key, its command-line flag, its code's keyword argument.

A setting travels in a straight line: the config's ``methods: {name: {tool: T, KEY: VALUE}}`` ->
the strip rule's ``params`` (:func:`settings_argv`) -> the tool's command-line flag
(:meth:`Setting.add_to`) -> the keyword argument of the tool's function.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


@dataclass(frozen=True)
class Setting:
    """One option of a method.

    Attributes:
        name: a Python identifier (the config key and the keyword argument).
        kind: ``str``, ``int``, ``float`` or ``bool``.
        default: the value when the config does not set it.
        help: one line, units included.
        choices: the allowed values (empty: any value of ``kind``).
        flag: the command-line flag; default ``--name`` with ``_`` written ``-``. A bool is
            ``--flag`` / ``--no-flag``.
    """

    name: str
    kind: type
    default: object
    help: str
    choices: tuple = ()
    flag: str = ""

    @property
    def option(self) -> str:
        """The command-line flag."""
        return self.flag or "--" + self.name.replace("_", "-")

    def check(self, value: object) -> object:
        """``value`` as this setting's kind; ValueError naming the setting when it is not one."""
        if self.kind is bool:
            if isinstance(value, str) and value.lower() in BOOL_WORDS:
                value = BOOL_WORDS[value.lower()]
            if not isinstance(value, bool):
                raise ValueError(f"{self.name}: {value!r} is not true or false")
        elif self.kind is float and isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{self.name}: {value!r} is not a number") from None
        elif self.kind is int and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ValueError(f"{self.name}: {value!r} is not an integer") from None
        elif self.kind is str and value is None:
            value = ""
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            raise ValueError(f"{self.name}: {value!r} is not a {self.kind.__name__}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        return value

    def argv(self, value: object) -> list[str]:
        """The command-line words that give this setting ``value``."""
        value = self.check(value)
        if self.kind is bool:
            return [self.option if value else "--no-" + self.option.removeprefix("--")]
        return [self.option, str(value)]

    def add_to(self, parser: argparse.ArgumentParser, default: object = None) -> None:
        """Add this setting's flag to ``parser`` (dest ``name``, checked by :meth:`check`).

        ``default``: the value when the flag is not given (None: the setting's default;
        ``argparse.SUPPRESS``: no attribute).
        """
        help_text = f"{self.help} (default: {self.default})"
        default = self.default if default is None else default
        if self.kind is bool:
            parser.add_argument(
                self.option,
                dest=self.name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
            return

        def convert(text: str) -> object:
            try:
                return self.check(text)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        parser.add_argument(self.option, dest=self.name, type=convert, default=default, help=help_text)


def resolve_settings(
    settings: Sequence[Setting], values: Mapping[str, object], owner: str
) -> dict[str, object]:
    """Every setting's value: ``values`` checked, defaults for the rest.

    Raises:
        ValueError: a key that is no setting (naming ``owner`` and the known keys) or a bad value.
    """
    known = {s.name: s for s in settings}
    unknown = [k for k in values if k not in known]
    if unknown:
        names = ", ".join(known) or "none"
        raise ValueError(f"{owner}: unknown setting {', '.join(map(repr, unknown))} (settings: {names})")
    try:
        return {s.name: s.check(values[s.name]) if s.name in values else s.default for s in settings}
    except ValueError as exc:
        raise ValueError(f"{owner}: {exc}") from None


def settings_argv(settings: Sequence[Setting], values: Mapping[str, object], owner: str) -> list[str]:
    """The command-line flags of ``values`` (checked; settings left at their default are not written)."""
    resolved = resolve_settings(settings, values, owner)
    return [word for s in settings if s.name in values for word in s.argv(resolved[s.name])]
