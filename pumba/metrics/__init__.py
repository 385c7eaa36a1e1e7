"""Benchmark metrics: overlap (Dice, sensitivity, specificity, volumes), HD95, and result tables.

The public functions are imported lazily (on first attribute access) so that ``pumba --help``,
which imports :mod:`pumba.metrics.cli`, does not pay for scipy and pandas.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "dice": "overlap",
    "sensitivity": "overlap",
    "specificity": "overlap",
    "volume_difference": "overlap",
    "hd95": "distance",
    "evaluate_pair": "tables",
    "summarise": "tables",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"pumba.metrics.{_HOMES[name]}"), name)
