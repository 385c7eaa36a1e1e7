"""Downloading one file over HTTP(S) so that it survives the real world.

:func:`download` resumes an interrupted transfer with an HTTP ``Range`` request, retries a dropped
connection or a stalled server (no byte for ``timeout_s`` seconds) with a growing pause, stops at
once on an HTTP error that a retry cannot mend (404, 403, ...), shows a progress bar, and keeps the
file only when its size and checksum match: a mismatch removes the partial file too, and the error
names the URL and both digests.

While it runs the data go to ``.<name>.part`` beside the target (a hidden name no other stage reads);
that file is what a later call resumes from, so an interrupted download (a dropped connection, a
scheduler's kill) loses only what was not yet written. The target appears, by rename, only once
verified.

Our own code on :mod:`urllib` rather than pooch or fsspec: pooch restarts a failed download from
byte 0 (no ``Range``), which for the multi-GB archives of the public datasets (SynthStrip's is
6.9 GB) turns every dropped connection into a fresh download; fsspec's HTTP file system needs
aiohttp and neither resumes nor checks a digest.
"""

from __future__ import annotations

import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pumba.io import InputError, file_digest

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
USER_AGENT = "pumba-bench"
# HTTP statuses worth a retry (the server's trouble, not the request's)
_TRANSIENT = {408, 425, 429, 500, 502, 503, 504}


class DownloadError(InputError):
    """A download that cannot succeed: HTTP error, stalled server, size or checksum mismatch."""


@dataclass(frozen=True)
class Checksum:
    """An expected digest of a file's bytes.

    Attributes:
        algorithm: ``sha256`` or ``md5`` (Zenodo and S3 publish md5).
        value: lower-case hex digest.
    """

    algorithm: str
    value: str

    def __post_init__(self) -> None:
        if self.algorithm not in ("sha256", "md5"):
            raise ValueError(f"checksum algorithm {self.algorithm!r}: expected sha256 or md5")


def part_path(target: Path) -> Path:
    """Where the partial data of ``target`` are kept while it downloads (resumed from next time)."""
    return target.with_name(f".{target.name}.part")


def download(
    url: str,
    target: str | os.PathLike,
    checksum: Checksum | None = None,
    size: int | None = None,
    timeout_s: float = 60.0,
    retries: int = 5,
    progress: bool = True,
    backoff_s: float = 1.0,
) -> Path:
    """Download ``url`` to ``target`` (resuming a partial download), verify it, return ``target``.

    Args:
        url: an ``http://`` or ``https://`` URL.
        target: the file to write; its directory is created.
        checksum: the expected digest; None keeps an unverified file (the caller says so).
        size: the expected size in bytes, or None.
        timeout_s: seconds without a byte (connecting or reading) before the try counts as stalled.
        retries: tries after the first on a dropped connection, a stall or a transient HTTP status
            (408, 429, 5xx); each resumes where the previous one stopped.
        progress: show a progress bar on stderr (tqdm).
        backoff_s: pause before the first retry, doubled before each next one (seconds).

    Raises:
        DownloadError: one line naming the URL and the problem: an HTTP error status, a server that
            stalled or dropped the connection on every try, a size or checksum mismatch (the
            partial file is removed, nothing is kept).
    """
    target = Path(target)
    if target.is_file() and (checksum or size) and _intact(target, checksum, size):
        return target  # a previous call finished this one
    target.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(target)
    failure = ""
    for attempt in range(retries + 1):
        if attempt:
            pause = backoff_s * 2 ** (attempt - 1)
            log.warning("%s: %s; retry %d of %d in %.0f s", url, failure, attempt, retries, pause)
            time.sleep(pause)
        try:
            complete = _transfer(url, part, size, timeout_s, progress)
        except _TransientError as exc:
            failure = str(exc)
            continue
        if complete:
            break
        failure = "the server closed the connection early"
    else:
        raise DownloadError(f"{url}: download failed after {retries + 1} tries: {failure}")
    _verify(url, part, checksum, size)
    os.replace(part, target)
    return target


class _TransientError(Exception):
    """A try that failed in a way the next try may mend (it resumes from the partial file)."""


def _transfer(url: str, part: Path, size: int | None, timeout_s: float, progress: bool) -> bool:
    """One try: append to ``part`` from its current length; True when the server sent everything.

    Raises:
        _TransientError: connection refused, reset or stalled; a transient HTTP status.
        DownloadError: an HTTP status no retry mends.
    """
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have == size:
        return True
    if size is not None and have > size:
        part.unlink()
        have = 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            # asked for bytes past the end: what we have is the whole file (or junk the checksum finds)
            return True
        if exc.code in _TRANSIENT:
            raise _TransientError(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"{url}: download failed: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise _TransientError(f"no answer within {timeout_s:g} s") from None
        raise _TransientError(f"cannot connect ({reason})") from None
    except TimeoutError:
        raise _TransientError(f"no answer within {timeout_s:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _TransientError(_one_line(exc)) from None
    with response:
        if have and response.status != 206:
            log.info("%s: the server ignores Range; downloading from the start", url)
            have = 0
        expected_total = _total_length(response, have)
        mode = "ab" if have else "wb"
        bar = _progress_bar(url, expected_total or size, have, progress)
        try:
            with open(part, mode) as out:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except TimeoutError:
                        raise _TransientError(f"stalled: no data for {timeout_s:g} s") from None
                    except (OSError, http.client.HTTPException) as exc:
                        raise _TransientError(_one_line(exc)) from None
                    if not chunk:
                        break
                    out.write(chunk)
                    bar(len(chunk))
        finally:
            bar(None)
    got = part.stat().st_size
    if expected_total is not None:
        return got >= expected_total
    return size is None or got >= size


def _total_length(response: http.client.HTTPResponse, have: int) -> int | None:
    """The whole file's length in bytes from Content-Range or Content-Length, when the server says."""
    content_range = response.headers.get("Content-Range", "")
    if response.status == 206 and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return int(length) + (have if response.status == 206 else 0)
    return None


def _progress_bar(url: str, total: int | None, initial: int, enabled: bool) -> Callable[[int | None], None]:
    """A callback: bytes received (``None``: close). A no-op when disabled."""
    if not enabled:
        return lambda n: None
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=url.rsplit("/", 1)[-1][:40],
        mininterval=1.0,
        leave=False,
    )

    def update(n: int | None) -> None:
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return update


def _intact(path: Path, checksum: Checksum | None, size: int | None) -> bool:
    """Does ``path`` have the expected size and digest (those that are given)?"""
    if size is not None and path.stat().st_size != size:
        return False
    return checksum is None or file_digest(path, checksum.algorithm) == checksum.value


def _verify(url: str, part: Path, checksum: Checksum | None, size: int | None) -> None:
    """Check the downloaded bytes; on a mismatch remove them and raise."""
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink()
        raise DownloadError(f"{url}: size mismatch: expected {size} bytes, got {got}; nothing kept")
    if checksum is None:
        return
    actual = file_digest(part, checksum.algorithm)
    if actual != checksum.value:
        part.unlink()
        raise DownloadError(
            f"{url}: {checksum.algorithm} mismatch: expected {checksum.value}, got {actual}; nothing kept"
        )


def read_url(url: str, timeout_s: float = 60.0, retries: int = 3, backoff_s: float = 1.0) -> bytes:
    """The body of a small resource (a checksum file, an S3 listing), with the same retries.

    Raises:
        DownloadError: as :func:`download`.
    """
    failure = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if exc.code not in _TRANSIENT:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            failure = f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            failure = f"cannot connect ({exc.reason})"
        except (OSError, http.client.HTTPException) as exc:
            failure = _one_line(exc)
    raise DownloadError(f"{url}: failed after {retries + 1} tries: {failure}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__
