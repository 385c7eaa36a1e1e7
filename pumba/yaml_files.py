"""Reading YAML files strictly: safe loader, duplicate keys are errors, one-line errors naming the file.

Numbers are read as people type them: ``1e-4`` and ``1.0e5`` are floats (YAML 1.1, PyYAML's dialect, wants a
dot and a signed exponent, and reads them as strings otherwise; YAML 1.2 reads them as floats).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import yaml

from pumba.io import InputError


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys (PyYAML keeps the last one silently)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)
# exponent floats without a dot or without the exponent's sign (1e-4, 1E5, 1.0e5, .5e3): floats, as in
# YAML 1.2; YAML 1.1's own float and int patterns are tried first, so nothing they read changes
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def read_yaml(path: str | os.PathLike) -> Any:
    """Parse YAML strictly (safe loader, duplicate keys are errors); InputError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with open(path) as fh:
            return yaml.load(fh, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: invalid YAML{where}: {problem}") from None


def read_mapping(path: str | os.PathLike, what: str) -> dict:
    """A YAML file that must hold a mapping (``what`` names it in errors, e.g. 'training config').

    An empty file is an empty mapping. A number that is not finite (``.inf``, ``.nan``) anywhere in it is an
    InputError naming the file and the key (``synth.size``): no setting takes one.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {what}")
    raw = read_yaml(path)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a {what} must be a mapping of keys to values")
    for key, value in _leaves(raw):
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{path}: '{key}' must be a finite number, got {value}")
    return raw


def _leaves(value: Any, key: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every scalar in nested mappings and lists (list items as ``key[i]``)."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{key}[{i}]")]
    return [(key, value)]
