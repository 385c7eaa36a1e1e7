"""Fetching a collection's parts (archives, S3 objects, OpenNeuro snapshots, manual copies).

Each part of a collection dataset lands in the cache under ``<cache>/collections/<dataset>/<part>/``::

    files/          what was downloaded, in the publisher's layout (an S3 prefix's or an OpenNeuro
                    snapshot's relative paths; a single file under its own name)
    unpacked/       an archive's content (tar, tar.gz, tgz or zip), unpacked through a staging
                    directory and renamed into place, so never half there
    complete.json   written last: what was fetched (URLs, sizes, digests); a part with it is not
                    fetched again, and a run without network can use it

:func:`fetch_collection` returns, per part, the directory in the publisher's layout that the
dataset's converter (:mod:`pumba.data.converters`) reads. A manual part is the user's own copy (a
directory, used in place, or an archive, unpacked into the cache); it is never modified.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import urllib.parse
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pumba.data.download import Checksum, DownloadError, download, read_url
from pumba.data.registry import Dataset, ManualPart, OpenNeuroPart, Part, S3Part, UrlPart
from pumba.io import InputError, file_digest, write_text_atomic

log = logging.getLogger(__name__)

S3_ENDPOINT = "https://s3.amazonaws.com"
"""Where public S3 buckets are read from (path-style URLs ``<endpoint>/<bucket>/<key>``)."""
OPENNEURO_BUCKET = "openneuro.org"
COMPLETE = "complete.json"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
_S3_NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
_PLAIN_MD5 = re.compile(r"^[0-9a-f]{32}$")


class CollectError(InputError):
    """A collection part that cannot be had: no network, a manual copy missing, a bad archive."""


@dataclass(frozen=True)
class FetchOptions:
    """How parts may be fetched.

    Attributes:
        cache_dir: the cache's root.
        allow_download: may the network be used?
        manual_path: the user's copy of the dataset's manual part (a directory or an archive), or None.
        s3_endpoint: the S3 endpoint URL (a local server in tests).
        timeout_s: seconds without a byte before a try counts as stalled.
        retries: tries after the first of each download.
        progress: show progress bars.
    """

    cache_dir: Path
    allow_download: bool = True
    manual_path: Path | None = None
    s3_endpoint: str = S3_ENDPOINT
    timeout_s: float = 60.0
    retries: int = 5
    progress: bool = True

    def download(self, url: str, target: Path, checksum: Checksum | None, size: int | None) -> None:
        """:func:`pumba.data.download.download` with these options' timeout, retries and progress bar."""
        download(
            url,
            target,
            checksum=checksum,
            size=size,
            timeout_s=self.timeout_s,
            retries=self.retries,
            progress=self.progress,
        )


def part_dir(dataset_id: str, part: Part, cache_dir: str | os.PathLike) -> Path:
    """The cache directory of one part of a collection."""
    return Path(cache_dir) / "collections" / dataset_id / part.name


def why_unavailable(dataset: Dataset, options: FetchOptions) -> str | None:
    """Why a collection cannot be had here (one line), or None; reads no network and no checksum."""
    assert dataset.collection is not None
    for part in dataset.collection.parts:
        if isinstance(part, ManualPart):
            reason = _manual_problem(dataset.id, part, options.manual_path)
            if reason:
                return reason
            continue
        cached = (part_dir(dataset.id, part, options.cache_dir) / COMPLETE).is_file()
        if not cached and not options.allow_download:
            return f"{dataset.id}: part {part.name} ({part.kind}) is not in the cache, and downloads are off"
    return None


def fetch_collection(dataset: Dataset, options: FetchOptions) -> dict[str, Path]:
    """Fetch every part of a collection dataset; the directory in the publisher's layout, per part.

    Raises:
        CollectError: downloads off and a part not cached, the manual copy missing (with the
            publisher's instructions), a bad or unsafe archive.
        pumba.data.download.DownloadError: a download that failed (HTTP error, stall, checksum).
    """
    assert dataset.collection is not None, f"{dataset.id} lists its subjects"
    roots = {}
    for part in dataset.collection.parts:
        if isinstance(part, ManualPart):
            roots[part.name] = _manual_root(dataset.id, part, options)
            continue
        here = part_dir(dataset.id, part, options.cache_dir)
        if not (here / COMPLETE).is_file():
            if not options.allow_download:
                raise CollectError(
                    f"{dataset.id}: part {part.name} is not in the cache {here}, and downloads are off"
                )
            record = _FETCHERS[type(part)](part, here, options)
            write_text_atomic(here / COMPLETE, json.dumps(record, indent=2) + "\n")
        roots[part.name] = _root(here)
    return roots


def _root(here: Path) -> Path:
    return here / "unpacked" if (here / "unpacked").is_dir() else here / "files"


# --- url -----------------------------------------------------------------------------------------


def _fetch_url(part: UrlPart, here: Path, options: FetchOptions) -> dict:
    checksum = _url_checksum(part, options)
    target = here / "files" / _basename(part.url)
    # a verified file from a try whose unpacking failed is not downloaded again (download() checks it)
    options.download(part.url, target, checksum, part.size)
    verified = checksum is not None and checksum.algorithm == "sha256"
    got = f"sha256:{checksum.value if verified else file_digest(target)}"
    if checksum is None:
        log.warning(
            "%s: no checksum to check it against (%s); its sha256 was %s", part.url, part.no_checksum, got
        )
    if part.unpack and is_archive(target):
        unpack(target, here / "unpacked")
        target.unlink()  # the unpacked copy is what is read; the archive was verified before
    return {
        "url": part.url,
        "bytes": part.size,
        "checksum": None if checksum is None else f"{checksum.algorithm}:{checksum.value}",
        "downloaded": got,
    }


def _url_checksum(part: UrlPart, options: FetchOptions) -> Checksum | None:
    if part.sha256:
        return Checksum("sha256", part.sha256)
    if part.md5:
        return Checksum("md5", part.md5)
    if part.checksum_file:
        text = read_url(part.checksum_file, timeout_s=options.timeout_s).decode("utf-8", "replace")
        name = _basename(part.url)
        if part.checksum_format == "zenodo":
            return checksum_from_zenodo(text, name, part.checksum_file)
        return Checksum(part.checksum_algorithm, checksum_from_file(text, name, part.checksum_file))
    return None


def checksum_from_zenodo(text: str, name: str, origin: str) -> Checksum:
    """The checksum of file ``name`` in a Zenodo record's JSON (``files[].key``, ``"md5:<hex>"``).

    Raises:
        DownloadError: not a record's JSON, or no such file in it (naming the record's URL).
    """
    try:
        files = json.loads(text)["files"]
        found = {f["key"]: f["checksum"] for f in files}
    except (ValueError, KeyError, TypeError):
        raise DownloadError(f"{origin}: not a Zenodo record (no files with key and checksum)") from None
    if name not in found:
        raise DownloadError(
            f"{origin}: the Zenodo record has no file {name} (has: {', '.join(sorted(found))})"
        )
    algorithm, _, value = str(found[name]).partition(":")
    if algorithm not in ("md5", "sha256") or not value:
        raise DownloadError(f"{origin}: checksum {found[name]!r} of {name} is not md5:<hex> or sha256:<hex>")
    return Checksum(algorithm, value.lower())


def checksum_from_file(text: str, name: str, origin: str) -> str:
    """The digest of ``name`` in a checksum file (``<hex>  <name>`` or ``<hex> *<name>`` lines).

    Raises:
        DownloadError: no line names the file (naming the checksum file).
    """
    for line in text.splitlines():
        fields = line.strip().split(maxsplit=1)
        named = len(fields) == 2 and fields[1].lstrip("*").removeprefix("./") == name
        if named and re.fullmatch(r"[0-9a-fA-F]{32,128}", fields[0]):
            return fields[0].lower()
    raise DownloadError(f"{origin}: the checksum file has no line for {name}")


def _basename(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or "download"


# --- s3 and openneuro ----------------------------------------------------------------------------


def s3_url(endpoint: str, bucket: str, key: str) -> str:
    """The path-style HTTPS URL of an S3 object."""
    return f"{endpoint.rstrip('/')}/{bucket}/{urllib.parse.quote(key)}"


@dataclass(frozen=True)
class S3Object:
    """One object of a listing: its key, size in bytes and ETag (quotes removed)."""

    key: str
    size: int
    etag: str


def list_s3(endpoint: str, bucket: str, prefix: str, timeout_s: float = 60.0) -> list[S3Object]:
    """Every object under ``prefix`` (ListObjectsV2, anonymous, following continuation tokens).

    Raises:
        DownloadError: an HTTP error, or a listing that is not S3's XML.
    """
    objects: list[S3Object] = []
    token = None
    while True:
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        url = f"{endpoint.rstrip('/')}/{bucket}?{urllib.parse.urlencode(query)}"
        body = read_url(url, timeout_s=timeout_s)
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise DownloadError(f"{url}: not an S3 listing ({exc})") from None
        for item in root.findall("s3:Contents", _S3_NS):
            objects.append(
                S3Object(
                    key=item.findtext("s3:Key", "", _S3_NS),
                    size=int(item.findtext("s3:Size", "0", _S3_NS)),
                    etag=item.findtext("s3:ETag", "", _S3_NS).strip('"'),
                )
            )
        if root.findtext("s3:IsTruncated", "false", _S3_NS) != "true":
            return objects
        token = root.findtext("s3:NextContinuationToken", "", _S3_NS)
        if not token:
            raise DownloadError(f"{url}: truncated listing without a continuation token")


def _matches(relative: str, include: tuple[str, ...]) -> bool:
    return not include or any(fnmatch.fnmatchcase(relative, pattern) for pattern in include)


def _download_object(
    options: FetchOptions, bucket: str, obj: S3Object, target: Path, sha256: str | None = None
) -> str | None:
    """Download one listed object, checking a pinned sha256 or else a plain-md5 ETag."""
    if sha256:
        checksum: Checksum | None = Checksum("sha256", sha256)
    elif _PLAIN_MD5.fullmatch(obj.etag):
        checksum = Checksum("md5", obj.etag)
    else:
        checksum = None  # a multipart upload's ETag is no file digest: the size is still checked
    options.download(s3_url(options.s3_endpoint, bucket, obj.key), target, checksum, obj.size)
    return None if checksum is None else f"{checksum.algorithm}:{checksum.value}"


def _fetch_s3(part: S3Part, here: Path, options: FetchOptions) -> dict:
    if part.key is not None:
        url = s3_url(options.s3_endpoint, part.bucket, part.key)
        target = here / "files" / part.key.rsplit("/", 1)[-1]
        listed = list_s3(options.s3_endpoint, part.bucket, part.key, options.timeout_s)
        match = [o for o in listed if o.key == part.key]
        if not match:
            raise DownloadError(f"{url}: no such object in bucket {part.bucket}")
        obj = match[0]
        if part.size is not None and obj.size != part.size:
            raise DownloadError(f"{url}: the bucket says {obj.size} bytes, the registry {part.size}")
        digest = _download_object(options, part.bucket, obj, target, part.sha256)
        if part.unpack and is_archive(target):
            unpack(target, here / "unpacked")
            target.unlink()
        return {"objects": {part.key: {"bytes": obj.size, "checksum": digest}}}
    assert part.prefix is not None
    objects = [
        o
        for o in list_s3(options.s3_endpoint, part.bucket, part.prefix, options.timeout_s)
        if not o.key.endswith("/") and _matches(o.key[len(part.prefix) :], part.include)
    ]
    if not objects:
        raise DownloadError(
            f"{s3_url(options.s3_endpoint, part.bucket, part.prefix)}: no object matches {list(part.include)}"
        )
    record = {}
    for obj in objects:
        target = here / "files" / obj.key[len(part.prefix) :]
        record[obj.key] = {"bytes": obj.size, "checksum": _download_object(options, part.bucket, obj, target)}
    archives = [p for p in sorted((here / "files").rglob("*")) if p.is_file() and is_archive(p)]
    if part.unpack and archives:
        _unpack_each(archives, here)
    return {"prefix": part.prefix, "objects": record}


def _unpack_each(archives: list[Path], here: Path) -> None:
    """Unpack several archives into ``here/unpacked/<archive name>/``, all or none."""
    staging = Path(tempfile.mkdtemp(prefix=".unpacked.", suffix=".tmp", dir=here))
    try:
        staging.chmod(0o755)
        for archive in archives:
            name = archive.name
            for suffix in ARCHIVE_SUFFIXES:
                name = name.removesuffix(suffix)
            unpack(archive, staging / name)
        os.rename(staging, here / "unpacked")
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    for archive in archives:
        archive.unlink()


def _fetch_openneuro(part: OpenNeuroPart, here: Path, options: FetchOptions) -> dict:
    prefix = f"{part.dataset}/"
    listed = list_s3(options.s3_endpoint, OPENNEURO_BUCKET, prefix, options.timeout_s)
    by_path = {o.key[len(prefix) :]: o for o in listed if not o.key.endswith("/")}
    if "CHANGES" not in by_path:
        raise DownloadError(
            f"OpenNeuro {part.dataset}: no CHANGES file in the bucket, cannot check the version"
        )
    changes = here / "files" / "CHANGES"
    _download_object(options, OPENNEURO_BUCKET, by_path["CHANGES"], changes)
    latest = latest_version(changes.read_text(encoding="utf-8", errors="replace"))
    if latest != part.version:
        changes.unlink()
        raise DownloadError(
            f"OpenNeuro {part.dataset}: the bucket holds snapshot {latest}, the registry pins {part.version} "
            "(update the registry after checking the new snapshot)"
        )
    wanted = {
        p: o for p, o in by_path.items() if p == "dataset_description.json" or _matches(p, part.include)
    }
    record = {}
    for path, obj in sorted(wanted.items()):
        digest = _download_object(options, OPENNEURO_BUCKET, obj, here / "files" / path)
        record[path] = {"bytes": obj.size, "checksum": digest}
    return {"dataset": part.dataset, "version": part.version, "objects": record}


def latest_version(changes: str) -> str | None:
    """The first version named in a BIDS CHANGES file (OpenNeuro writes the newest first)."""
    for line in changes.splitlines():
        found = re.match(r"^\s*v?(\d+\.\d+\.\d+)\b", line)
        if found:
            return found.group(1)
    return None


_FETCHERS = {UrlPart: _fetch_url, S3Part: _fetch_s3, OpenNeuroPart: _fetch_openneuro}


# --- manual --------------------------------------------------------------------------------------


def _manual_problem(dataset_id: str, part: ManualPart, path: Path | None) -> str | None:
    if path is None:
        return (
            f"{dataset_id}: download it by hand and set manual_data.{dataset_id} (pumba data --manual PATH): "
            f"{part.instructions}"
        )
    if not path.exists():
        return f"{dataset_id}: manual_data.{dataset_id} = {path} does not exist; {part.instructions}"
    if path.is_file() and not is_archive(path):
        return f"{path}: manual_data.{dataset_id} is a file but not an archive (tar, tar.gz, tgz, zip)"
    return None


def _manual_root(dataset_id: str, part: ManualPart, options: FetchOptions) -> Path:
    problem = _manual_problem(dataset_id, part, options.manual_path)
    if problem:
        raise CollectError(problem)
    path = options.manual_path
    assert path is not None
    if path.is_dir():
        return path
    here = part_dir(dataset_id, part, options.cache_dir)
    info = path.stat()
    stamp = {"archive": str(path.resolve()), "bytes": info.st_size, "mtime_ns": info.st_mtime_ns}
    done = here / COMPLETE
    if done.is_file() and json.loads(done.read_text()) == stamp:
        return here / "unpacked"
    if (here / "unpacked").exists():
        shutil.rmtree(here / "unpacked")
    unpack(path, here / "unpacked")
    write_text_atomic(done, json.dumps(stamp, indent=2) + "\n")
    return here / "unpacked"


# --- archives ------------------------------------------------------------------------------------


def is_archive(path: Path) -> bool:
    """Is ``path`` named like an archive we unpack (tar, tar.gz, tgz, zip)?"""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def unpack(archive: Path, destination: Path) -> Path:
    """Unpack ``archive`` into ``destination`` (which must not exist) via a staging directory.

    Members that would land outside the destination (absolute paths, '..', links out of it) are
    refused, as are device files. On any failure nothing is left at ``destination``.

    Raises:
        CollectError: a corrupt, truncated or unsafe archive (naming it and the member).
    """
    if destination.exists():
        raise CollectError(f"{destination}: already exists; not unpacking {archive} over it")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent))
    try:
        staging.chmod(0o755)
        if archive.name.lower().endswith(".zip"):
            _unzip(archive, staging)
        else:
            _untar(archive, staging)
        os.rename(staging, destination)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return destination


def _untar(archive: Path, staging: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
    except tarfile.FilterError as exc:
        raise CollectError(f"{archive}: unsafe member refused ({exc})") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CollectError(f"{archive}: cannot unpack: {exc}") from None


def _unzip(archive: Path, staging: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                target = (staging / member).resolve()
                if not target.is_relative_to(staging.resolve()):
                    raise CollectError(f"{archive}: unsafe member refused ({member} is outside the archive)")
            zf.extractall(staging)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise CollectError(f"{archive}: cannot unpack: {exc}") from None
