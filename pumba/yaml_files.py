"""Reading YAML files strictly: safe loader, duplicate keys are errors, one-line errors naming the file."""

from __future__ import annotations

import os
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

    An empty file is an empty mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {what}")
    raw = read_yaml(path)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a {what} must be a mapping of keys to values")
    return raw
