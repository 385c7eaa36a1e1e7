"""Getting a registry file onto local disk: installed packages, the cache, a mirror, or a download.

Downloaded and mirrored files land in a cache laid out like the mirror (``<cache>/<mirror_path>``,
for GitHub files ``<owner>/<repo>/<commit>/<path>``), so a cache can serve as another machine's
mirror. A file enters the cache only after its sha256 matched: it is written to a temporary file in
the cache directory, checked, then renamed into place; on any failure nothing is left behind.

Reference masks (masks the benchmark's team made for scans that ship none) are not distributed: they
are read in place from a local reference-masks directory, checked against their sha256, and never
copied into the cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from pumba.data.download import Checksum, DownloadError, download
from pumba.data.registry import AbsoluteFile, FileSpec, PackageFile, ReferenceMaskFile, UrlFile
from pumba.io import InputError, file_digest

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class FetchError(InputError):
    """A registry file cannot be had here: package missing, no copy and no network, bad checksum."""


def fetch_file(
    spec: FileSpec,
    cache_dir: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    allow_download: bool = True,
    timeout_s: float = 60.0,
    reference_masks: str | os.PathLike | None = None,
) -> Path:
    """The local path of a registry file, fetching it into ``cache_dir`` if needed.

    Embedded files (:class:`PackageFile`, :class:`AbsoluteFile`) are located where their package
    installed them and are not copied. A :class:`ReferenceMaskFile` is read in place from the
    ``reference_masks`` directory and checked against its sha256. A :class:`UrlFile` is looked for,
    in order, in the cache (checked against its sha256; a corrupt copy is discarded), in ``mirror``
    (copied into the cache and checked), and on the network (:func:`pumba.data.download.download`:
    resumed, retried, ``timeout_s`` seconds without a byte is a stall, checked) unless
    ``allow_download`` is false.

    Raises:
        FetchError: one line naming the file and the reason (package not installed, not found, no
            copy and downloads off, download failed, no reference-masks directory or no such mask in
            it, sha256 mismatch with expected and actual).
    """
    if isinstance(spec, ReferenceMaskFile):
        path = reference_mask_path(spec, reference_masks)
        actual = file_digest(path)
        if actual != spec.sha256:
            raise FetchError(f"{path}: sha256 mismatch: expected {spec.sha256}, got {actual}")
        return path
    if isinstance(spec, PackageFile):
        return _package_file(spec)
    if isinstance(spec, AbsoluteFile):
        if not spec.file.is_file():
            raise FetchError(f"{spec.file}: not found; it comes with {spec.install}")
        return spec.file
    mirror_dir = None if mirror is None else Path(mirror)
    return _url_file(spec, Path(cache_dir), mirror_dir, allow_download, timeout_s)


def reference_mask_path(spec: ReferenceMaskFile, reference_masks: str | os.PathLike | None) -> Path:
    """Where a reference mask lies, without reading it.

    Raises:
        FetchError: no directory given, the directory does not exist, or the file is not in it. The
            message names the file and the directory and says that the mask is tool-made
            (``spec.made_by``) and not distributed.
    """
    why = f"these masks are tool-made ({spec.made_by}) and are not distributed"
    if reference_masks is None or str(reference_masks) == "":
        raise FetchError(
            f"{spec.name}: no reference_masks dir given (config key reference_masks, "
            f"pumba data --reference-masks); {why}"
        )
    directory = Path(reference_masks)
    if not directory.is_dir():
        raise FetchError(f"{spec.name} not found: reference_masks dir {directory} does not exist; {why}")
    path = directory / spec.file_name
    if not path.is_file():
        raise FetchError(f"{spec.name} not found in reference_masks dir {directory}; {why}")
    return path


def locate(
    spec: FileSpec,
    cache_dir: str | os.PathLike,
    mirror: str | os.PathLike | None,
    reference_masks: str | os.PathLike | None = None,
) -> str:
    """Where a file would come from, without network or checksums (for ``pumba data list``).

    Returns:
        'installed' or 'missing' for embedded files; 'reference' or 'missing' for reference masks;
        'cached', 'mirror' or 'download' for URL files.
    """
    if isinstance(spec, ReferenceMaskFile):
        try:
            reference_mask_path(spec, reference_masks)
        except FetchError:
            return "missing"
        return "reference"
    if isinstance(spec, UrlFile):
        if (Path(cache_dir) / spec.mirror_path).is_file():
            return "cached"
        if mirror is not None and (Path(mirror) / spec.mirror_path).is_file():
            return "mirror"
        return "download"
    try:
        fetch_file(spec, cache_dir)
    except FetchError:
        return "missing"
    return "installed"


def _package_file(spec: PackageFile) -> Path:
    try:
        found = importlib.util.find_spec(spec.python_package)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise FetchError(
            f"{spec.name}: Python package '{spec.python_package}' is not installed (install: {spec.install})"
        )
    locations = list(found.submodule_search_locations or ())
    for location in locations:
        candidate = Path(location) / spec.path
        if candidate.is_file():
            return candidate
    where = ", ".join(locations) or "a module, not a package"
    raise FetchError(f"{spec.name}: not found in the installed package ({where}); {spec.install}")


def _url_file(
    spec: UrlFile, cache_dir: Path, mirror: Path | None, allow_download: bool, timeout_s: float
) -> Path:
    target = cache_dir / spec.mirror_path
    if target.is_file():
        actual = file_digest(target)
        if actual == spec.sha256:
            return target
        log.warning("%s: cached sha256 %s, expected %s; discarding it", target, actual, spec.sha256)
        target.unlink()
    if mirror is not None and (mirror / spec.mirror_path).is_file():
        source = mirror / spec.mirror_path
        with open(source, "rb") as stream:
            _store_verified(stream, str(source), spec, cache_dir, target)
        return target
    if not allow_download:
        looked = f"the cache {cache_dir}" + (f" or the mirror {mirror}" if mirror else "")
        raise FetchError(f"{spec.url}: not in {looked}, and downloads are off")
    try:
        download(spec.url, target, Checksum("sha256", spec.sha256), timeout_s=timeout_s, progress=False)
    except DownloadError as exc:
        raise FetchError(str(exc)) from None
    return target


def _store_verified(stream: BinaryIO, origin: str, spec: UrlFile, cache_dir: Path, target: Path) -> None:
    """Copy ``stream`` to ``target`` through a temporary file, renaming only if the sha256 matches.

    The temporary file lies in ``cache_dir`` itself so that target's sub-directories are created
    only for a verified file.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".fetch-", suffix=".part", dir=cache_dir)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != spec.sha256:
            raise FetchError(f"{origin}: sha256 mismatch: expected {spec.sha256}, got {actual}")
        # mkstemp makes the file private; a cache is meant to be shared like the mirror it mimics
        tmp.chmod(0o644)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
