"""Reading and writing volumes: NIfTI (.nii, .nii.gz) and MGZ/MGH, with clear errors and atomic writes.

Arrays are returned in the file's own voxel order (i, j, k); the 4x4 ``affine`` maps voxel indices to
world coordinates in mm (RAS+, nibabel's convention). Nothing here reorients data.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import hashlib
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

SUFFIXES = (".nii.gz", ".nii", ".mgz", ".mgh")


try:  # POSIX: a writer holds a lock on its temporary file, so a later run can tell a dead writer's leftovers
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

FLOAT32_SAFE = 2.0**100
"""Grey values whose magnitude is above this (or, all of them, below its inverse) are rescaled by a power of
two on reading (:func:`load_volume` with ``fit_float32``): float32 arithmetic on them would overflow."""


class InputError(ValueError):
    """A problem with a user's file or argument, reported as one line without a traceback."""


class Terminated(BaseException):
    """SIGTERM, SIGHUP or SIGINT arrived while :func:`atomic_outputs` was writing, in a process that had left
    the signal's action at its default (to end the process): raised instead, so that the temporary files are
    removed on the way out. ``signum`` is the signal; the command line exits with status 128 + ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@dataclass(frozen=True)
class Volume:
    """A 3-D scalar volume.

    Attributes:
        data: float32 array, shape (I, J, K), in the file's voxel order.
        affine: 4x4 float64 voxel-to-world (mm, RAS+) matrix.
        image: the nibabel image it came from (header and format, used to write results alike).
        path: the file it was read from.
    """

    data: np.ndarray
    affine: np.ndarray
    image: nib.spatialimages.SpatialImage
    path: Path
    scale: float = 1.0
    """``data`` is the file's grey values times ``scale``: 1, unless :func:`load_volume` was asked to fit
    grey values beyond float32's range (``fit_float32``), when it is the power of two that brings the largest
    finite magnitude to [1, 2)."""

    @property
    def zooms(self) -> np.ndarray:
        """Voxel sizes in mm along (I, J, K), from the affine's columns."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def voxel_ml(self) -> float:
        """The volume of one voxel in ml: |det| of the affine's 3x3 part (right for a sheared grid too, where
        the product of the column norms is too large) over 1000."""
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)


def suffix_of(path: str | os.PathLike) -> str:
    """The image suffix of ``path`` ('.nii.gz', '.nii', '.mgz' or '.mgh'), or '' if none."""
    name = str(path).lower()
    return next((s for s in SUFFIXES if name.endswith(s)), "")


_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def load_volume(path: str | os.PathLike, fit_float32: bool = False) -> Volume:
    """Read a 3-D volume (a 4-D file with a single frame is accepted and squeezed).

    ``fit_float32``: grey values that float32 cannot hold, or whose arithmetic would overflow in it
    (magnitudes above :data:`FLOAT32_SAFE`, or all of them below its inverse, as in a float64 file of 1e300s),
    are multiplied by a power of two before the cast (:attr:`Volume.scale`); without it they become Inf or 0.
    Ordinary grey values are read the same either way.

    Raises:
        InputError: missing or unreadable file, not a regular file (a FIFO, a device), not an image (with a
            hint when the name says gzip and the content does not, or the other way round), not 3-D,
            multi-frame 4-D, a singular affine or a zero voxel size. The message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image file")
    mode = path.stat().st_mode
    for test, what in _SPECIAL_FILES:
        if test(mode):
            raise InputError(
                f"{path}: is {what}, not a regular file; save the image to a file first and pass that"
            )
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for non-images
        hint = _compression_hint(path)
        raise InputError(f"{path}: not a readable NIfTI/MGZ image ({hint or _short(exc)})") from None
    shape = img.shape
    if (len(shape) == 4 and shape[3] == 1) or (len(shape) == 5 and shape[3] == 1 and shape[4] == 1):
        shape = shape[:3]
    if len(shape) == 4:
        raise InputError(
            f"{path}: 4-D image with {shape[3]} frames; extract one frame first "
            "(e.g. the mean or the first volume)"
        )
    if len(shape) != 3:
        raise InputError(f"{path}: expected a 3-D image, got shape {tuple(img.shape)}")
    if min(shape) < 2:
        raise InputError(f"{path}: image is 2-D in effect (shape {tuple(shape)})")
    dtype = np.dtype(img.get_data_dtype())
    if dtype.kind not in "iuf":  # complex, RGB (structured) or boolean data have no single grey value
        raise InputError(
            f"{path}: voxel data type {dtype} is not supported; need integer or float grey values"
        )
    try:
        # a value beyond float32 becomes Inf here (and is rescaled below when asked): no warning on the way
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
            scale = 1.0
            wide = dtype.itemsize > 4 or getattr(img.dataobj, "slope", 1.0) != 1.0  # float64, or scaled
            if fit_float32 and not _fits_float32(data, wide):
                data, scale = _rescaled(img, shape, data, wide)
    except Exception as exc:
        raise InputError(f"{path}: image data cannot be read, truncated? ({_short(exc)})") from None
    affine = np.asarray(img.affine, dtype=np.float64)
    check_affine(affine, path)
    return Volume(data=data, affine=affine, image=img, path=path, scale=scale)


def _compression_hint(path: Path) -> str:
    """A hint when a file's name and its gzip compression disagree (else ''): a gzip file named .nii."""
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
    except OSError:
        return ""
    name = path.name
    if gzipped and name.lower().endswith((".nii", ".mgh")):
        new = name[:-4] + (".nii.gz" if name.lower().endswith(".nii") else ".mgz")
        return f"the file is gzip-compressed but its name says it is not; rename it to {new}"
    if not gzipped and name.lower().endswith((".nii.gz", ".mgz")):
        new = name[:-3] if name.lower().endswith(".gz") else name[:-4] + ".mgh"
        return f"the file is not gzip-compressed but its name says it is; rename it to {new}"
    return ""


def _fits_float32(data: np.ndarray, wide: bool) -> bool:
    """Whether ``data`` (the float32 cast) kept the file's grey values in a range safe for float32
    arithmetic: cheap reductions, no full-size temporary (slice by slice where an Inf is in it). ``wide``: the
    file's values are wider than float32 (float64, or scaled by the header)."""
    hi, lo = np.fmax.reduce(data, axis=None), np.fmin.reduce(data, axis=None)
    if np.isfinite(hi) and np.isfinite(lo):
        top = max(abs(float(hi)), abs(float(lo)))
    elif wide:
        return False  # Inf in the file, or made by the cast: read the file again to tell
    else:
        top = _finite_top(data)  # Inf voxels in a float32 file: look at the others
    if top > FLOAT32_SAFE or 0 < top < 1 / FLOAT32_SAFE:
        return False
    # all zero in float32 from a wider type (or a scaling) may be tiny values flushed to zero
    return not (top == 0 and wide)


def _finite_top(data: np.ndarray) -> float:
    """The largest finite magnitude in ``data`` (0 if none), one slice at a time."""
    top = 0.0
    for plane in data:
        finite = plane[np.isfinite(plane)]
        if finite.size:
            top = max(top, float(np.abs(finite).max()))
    return top


def _rescaled(
    img: nib.spatialimages.SpatialImage, shape: tuple[int, ...], data: np.ndarray, wide: bool
) -> tuple[np.ndarray, float]:
    """The grey values times the power of two that brings their largest finite magnitude to [1, 2), in
    float32, and that power; ``data`` itself (scale 1) when that magnitude is safe or there is none. A
    ``wide`` (float64 or scaled) file is read again in float64, a float32 one is rescaled in place, one slice
    at a time."""
    raw = np.asarray(img.dataobj, dtype=np.float64).reshape(shape) if wide else data
    top = _finite_top(raw)
    if top == 0 or 1 / FLOAT32_SAFE <= top <= FLOAT32_SAFE:
        return data, 1.0
    scale = float(2.0 ** -np.floor(np.log2(top)))  # exact: a power of two changes no relative grey value
    if wide:
        raw *= scale
        return raw.astype(np.float32), scale
    for plane in data:  # in float64, where 2^149 and 2^-127 are plain numbers
        plane[...] = plane.astype(np.float64) * scale
    return data, scale


def check_affine(affine: np.ndarray, path: str | os.PathLike) -> None:
    """Raise InputError if the voxel-to-world matrix is not finite, has a zero voxel size (< 1e-6 mm) or is
    singular (its voxel axes within about 0.06 degrees of a plane)."""
    if not np.all(np.isfinite(affine)):
        raise InputError(f"{path}: header affine has non-finite values")
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    if np.any(zooms < 1e-6):
        sizes = ", ".join(f"{z:g}" for z in zooms)
        raise InputError(f"{path}: header has a zero voxel size ({sizes} mm)")
    # |det| over the product of the voxel sizes is 1 for orthogonal axes and 0 for coplanar ones; judged
    # relative to the voxel sizes, so that a singular matrix stored in float32 (NIfTI) is still caught
    if abs(np.linalg.det(affine[:3, :3])) < 1e-3 * np.prod(zooms):
        raise InputError(f"{path}: header affine is singular (voxel axes nearly coplanar)")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name)
)


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """Meanwhile, a stop signal whose action is the default (end the process at once, skipping every clean-up)
    raises :class:`Terminated` instead. Handlers installed by the program (the trainer's, Python's SIGINT
    handler that raises KeyboardInterrupt) are left alone, and so is everything outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    installed = {}
    for signum in _STOP_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_DFL:
            installed[signum] = signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in installed.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Meanwhile, stop signals are held back (delivered when the block ends): for the renames and the
    clean-up, which must not be cut in the middle."""
    held = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS) if held else None
    try:
        yield
    finally:
        if held:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def name_max(folder: str | os.PathLike) -> int:
    """The longest file name (bytes) that the file system of ``folder`` allows (255 if it does not say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def check_output_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path, after the checks that can be made before any work: its folder exists and is
    writable, its name is not longer than the file system allows and it is not a directory. InputError
    naming ``path`` otherwise."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        blocker = parent if parent.exists() else file_in_the_way(parent)
        if blocker is not None:
            raise InputError(f"{path}: output directory {parent} cannot be made: {blocker} is a file")
        raise InputError(f"{path}: output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{path}: output directory {parent} is not writable")
    length, limit = len(os.fsencode(path.name)), name_max(parent)
    if length > limit:
        raise InputError(f"{path}: file name is {length} bytes, longer than the file system allows ({limit})")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give an output file name")
    return path


def make_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder ``path`` (and its parents) unless it exists; InputError naming it when a file
    is in the way or the folder cannot be made (no permission, read-only file system)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a directory")
    blocker = file_in_the_way(path)
    if blocker is not None:
        raise InputError(f"{path}: cannot create the directory: {blocker} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot create the directory: {exc.strerror or _short(exc)}") from None
    if not os.access(path, os.W_OK):
        raise InputError(f"{path}: output directory is not writable")
    return path


def file_in_the_way(path: str | os.PathLike) -> Path | None:
    """The first of ``path``'s parents that exists and is not a directory (None if there is none)."""
    for parent in reversed(Path(path).parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


_RANDOM_CHARS = 8
"""Length of the random part tempfile puts in a name."""


def _temporary_prefix(path: Path, suffix: str) -> str:
    """The start of ``path``'s temporary names, ``.NAME.``: NAME is cut, and 8 hex digits of its digest
    appended, where the whole temporary name would be longer than the file system allows."""
    name = os.fsencode(path.name)
    tail = 2 + _RANDOM_CHARS + len(f".tmp{suffix}".encode())  # the dots around NAME, random part, suffix
    limit = name_max(path.parent if str(path.parent) else ".")
    if len(name) + tail <= limit:
        return f".{path.name}."
    digest = hashlib.sha1(name).hexdigest()[:8]
    return f".{os.fsdecode(name[: max(1, limit - tail - 9)])}~{digest}."


def _lock(fd: int, wait: bool) -> bool:
    """Take an exclusive lock on an open file (released when the holder closes it or dies, SIGKILL too)."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def _same_file(fd: int, name: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.lstat(name)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _new_temporary(path: Path, suffix: str) -> tuple[int, Path]:
    """A new locked temporary file beside ``path``: (descriptor, path). The lock tells a later run that its
    writer is alive; a run that finds it unlocked may remove it (:func:`remove_stale_temporaries`)."""
    parent = path.parent if str(path.parent) else Path(".")
    for _ in range(10):
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path, suffix), suffix=f".tmp{suffix}", dir=parent)
        locked = _lock(fd, wait=True)
        if not locked or _same_file(fd, Path(tmp)):  # removed as stale between mkstemp and the lock: again
            return fd, Path(tmp)
        os.close(fd)
    raise OSError(f"cannot keep a temporary file in {parent}")


_scanned: dict[Path, set[str]] = {}
"""Per folder: the hidden temporary-like names it held when this process first wrote into it."""


def remove_stale_temporaries(path: str | os.PathLike, _fresh: bool = True) -> list[Path]:
    """Delete the temporary files of ``path`` (``.NAME.*.tmp*`` beside it) that a killed writer left.

    SIGKILL, an out-of-memory kill or a power cut skip every clean-up. A live writer holds a lock on its
    temporary file (:func:`atomic_output`), so only the files of dead writers are removed; where the file
    system cannot lock, nothing is. :func:`atomic_output` calls this before it writes, reading each folder
    once per process. Returns the files removed.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    key = parent.resolve()
    if _fresh or key not in _scanned:
        try:
            _scanned[key] = {
                e.name for e in os.scandir(parent) if e.name.startswith(".") and ".tmp" in e.name
            }
        except OSError:
            _scanned[key] = set()
    suffix = suffix_of(path) or path.suffix
    patterns = {f"{glob.escape(p)}*.tmp*" for p in (f".{path.name}.", _temporary_prefix(path, suffix))}
    removed = []
    for name in sorted(_scanned[key]):
        if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        _scanned[key].discard(name)
        tmp = parent / name
        try:
            fd = os.open(tmp, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue  # gone already, or not ours to touch
        try:
            if _lock(fd, wait=False) and _same_file(fd, tmp):
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


_writing: set[str] = set()
"""Absolute paths of the temporary files this process is writing now (:func:`atomic_outputs`)."""


@contextlib.contextmanager
def atomic_outputs(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """Yield a temporary path beside each of ``paths``; rename them all onto ``paths`` only if the block
    succeeds.

    A temporary file keeps its path's suffix so that format-sniffing writers (nibabel) behave; its name is
    hidden (``.NAME.XXXXXXXX.tmpSUFFIX``, NAME shortened where the whole would be too long for the file
    system) and locked while it is written. Nothing is left behind on failure, nor on SIGTERM, SIGHUP or
    SIGINT during the block (:class:`Terminated`), and an existing path is either replaced whole or left as it
    was; the renames run with those signals held. Temporary files of these paths that a dead writer left
    (SIGKILL) are removed first. A path that is itself a temporary file being written here (a writer such as
    :func:`save_like` called on one) is written in place, not through a temporary file of its own. An OSError
    while writing (disk full, no permission) becomes an InputError naming the path.
    """
    paths = [check_output_file(p) for p in paths]
    pending: list[tuple[int, Path, Path]] = []  # (locked descriptor, temporary, destination)
    targets: list[Path] = []
    with _stop_signals_raise():
        try:
            for path in paths:
                if os.path.abspath(path) in _writing:  # already a temporary file: no second one
                    targets.append(path)
                    continue
                remove_stale_temporaries(path, _fresh=False)
                with _stop_signals_held():  # a signal here would leave a temporary file nobody knows of
                    try:
                        fd, tmp = _new_temporary(path, suffix_of(path) or path.suffix)
                    except OSError as exc:
                        raise InputError(
                            f"{path}: cannot create a file in {path.parent} ({exc.strerror or _short(exc)})"
                        ) from None
                    pending.append((fd, tmp, path))
                    _writing.add(os.path.abspath(tmp))
                targets.append(tmp)
            try:
                yield targets
            except OSError as exc:  # the writer's: disk full, quota; the user's to fix, not a bug
                named = next((p for _, t, p in pending if str(t) == str(exc.filename)), paths[0])
                raise InputError(f"{named}: cannot write ({exc.strerror or _short(exc)})") from None
            # mkstemp makes private files; give the results the permissions a plain open() would
            umask = os.umask(0)
            os.umask(umask)
            with _stop_signals_held():
                while pending:
                    fd, tmp, path = pending[0]
                    try:
                        os.chmod(tmp, 0o666 & ~umask)
                        os.replace(tmp, path)
                    except OSError as exc:  # a directory in the way, a full disk
                        raise InputError(f"{path}: cannot write ({exc.strerror or _short(exc)})") from None
                    _writing.discard(os.path.abspath(tmp))
                    os.close(fd)
                    pending.pop(0)
        finally:
            with _stop_signals_held():
                for fd, tmp, _ in pending:
                    with contextlib.suppress(OSError):
                        tmp.unlink()
                    _writing.discard(os.path.abspath(tmp))
                    os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds (the
    one-path case of :func:`atomic_outputs`, which says what happens on failure, a signal or a kill)."""
    with atomic_outputs([path]) as (tmp,):
        yield tmp


def save_like(data: np.ndarray, like: Volume, path: str | os.PathLike, dtype=np.uint8) -> None:
    """Write ``data`` (shape like.data.shape) on ``like``'s grid and affine, atomically.

    The format follows ``path``'s suffix (.nii.gz, .nii, .mgz, .mgh); a NIfTI keeps ``like``'s header
    (its qform/sform codes, NIfTI-1 or NIfTI-2) with the new dtype and no intensity scaling.
    """
    if data.shape != like.data.shape:
        raise ValueError(f"shape {data.shape} does not match the reference {like.data.shape}")
    header = like.image.header if isinstance(like.image, nib.Nifti1Image) else None  # NIfTI-2 too
    _save(np.asarray(data, dtype=dtype), like.affine, path, header)


def save_array(data: np.ndarray, affine: np.ndarray, path: str | os.PathLike) -> None:
    """Write a NIfTI or MGZ volume with the given affine atomically (dtype kept)."""
    _save(data, affine, path, None)


def _save(arr: np.ndarray, affine: np.ndarray, path: str | os.PathLike, header) -> None:
    """Build the image for ``path``'s format (from a NIfTI ``header`` if given) and write it atomically."""
    path = Path(path)
    suffix = suffix_of(path)
    if suffix in (".mgz", ".mgh"):
        out = nib.MGHImage(arr, affine)
    elif suffix in (".nii.gz", ".nii"):
        # a NIfTI-2 input gives a NIfTI-2 output: its header in a NIfTI-1 image draws warnings from nibabel
        kind = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        out = kind(arr, affine, header=None if header is None else header.copy())
        qcode = sform_code = 1
        if header is not None:
            out.set_data_dtype(arr.dtype)
            out.header.set_slope_inter(1, 0)
            qcode = int(header["qform_code"]) or 1
            sform_code = int(header["sform_code"]) or 1
        out.set_qform(affine, code=qcode)
        out.set_sform(affine, code=sform_code)
    else:
        raise InputError(f"{path}: unknown output format; use .nii.gz, .nii, .mgz or .mgh")
    with atomic_output(path) as tmp:
        nib.save(out, str(tmp))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (temp file + rename)."""
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text)


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Lower-case hex digest of a file's bytes (``sha256``, ``md5`` or any :mod:`hashlib` name)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()
