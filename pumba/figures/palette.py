"""One order and one colour per method, the same in every figure of a run.

The order is the config's ``methods:`` order (the workflow passes it as ``--methods``); a method's colour is
fixed by its position in that list, so a method keeps its colour in every figure even where another method
is missing (skipped, or absent from one table). Colours are seaborn's colour-blind palette, then its
``dark`` and ``pastel`` variants for the 11th method on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

REFERENCE_COLOR = "#ffffff"
"""The reference mask's colour (montages, the qualitative figure): white, unlike any method's colour."""


def _base_colors() -> list[tuple[float, float, float]]:
    import seaborn as sns

    return [
        *sns.color_palette("colorblind", 10),
        *sns.color_palette("dark", 10),
        *sns.color_palette("pastel", 10),
    ]


def method_order(present: Iterable[str], configured: Sequence[str] | None = None) -> list[str]:
    """The methods of ``present`` in the configured order, then any others in their order of appearance."""
    present = list(dict.fromkeys(str(m) for m in present))
    if not configured:
        return present
    known = [m for m in configured if m in present]
    return known + [m for m in present if m not in known]


def method_palette(methods: Sequence[str], configured: Sequence[str] | None = None) -> dict[str, tuple]:
    """Method -> RGB colour (0-1 floats): the colour of its position in ``configured`` (else in ``methods``).

    A method not in ``configured`` gets the next colour after the configured ones, in ``methods`` order.
    """
    colors = _base_colors()
    order = method_order(methods, configured)
    slots = list(configured or []) + [m for m in order if m not in (configured or [])]
    return {m: colors[slots.index(m) % len(colors)] for m in order}


def parse_methods(text: str | None) -> list[str] | None:
    """A ``--methods a,b,c`` value as a list (None when not given); blanks dropped."""
    if text is None:
        return None
    return [m.strip() for m in text.split(",") if m.strip()] or None
