"""Reading and writing volumes: NIfTI (.nii, .nii.gz) and MGZ/MGH, with clear errors and atomic writes.

Arrays are returned in the file's own voxel order (i, j, k); the 4x4 ``affine`` maps voxel indices to
world coordinates in mm (RAS+, nibabel's convention). Nothing here reorients data.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

SUFFIXES = (".nii.gz", ".nii", ".mgz", ".mgh")


class InputError(ValueError):
    """A problem with a user's file or argument, reported as one line without a traceback."""


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

    @property
    def zooms(self) -> np.ndarray:
        """Voxel sizes in mm along (I, J, K), from the affine's columns."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))


def suffix_of(path: str | os.PathLike) -> str:
    """The image suffix of ``path`` ('.nii.gz', '.nii', '.mgz' or '.mgh'), or '' if none."""
    name = str(path).lower()
    return next((s for s in SUFFIXES if name.endswith(s)), "")


def load_volume(path: str | os.PathLike) -> Volume:
    """Read a 3-D volume (a 4-D file with a single frame is accepted and squeezed).

    Raises:
        InputError: missing or unreadable file, not an image, not 3-D, multi-frame 4-D, a singular
            affine or a zero voxel size. The message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image file")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for non-images
        raise InputError(f"{path}: not a readable NIfTI/MGZ image ({_short(exc)})") from None
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
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    except Exception as exc:
        raise InputError(f"{path}: image data cannot be read, truncated? ({_short(exc)})") from None
    affine = np.asarray(img.affine, dtype=np.float64)
    check_affine(affine, path)
    return Volume(data=data, affine=affine, image=img, path=path)


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


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file keeps ``path``'s suffix so that format-sniffing writers (nibabel) behave.
    Nothing is left behind on failure, and an existing ``path`` is either replaced whole or left as it was.
    An OSError while writing (disk full, no permission) becomes an InputError naming ``path``.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{path}: output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{path}: output directory {parent} is not writable")
    suffix = suffix_of(path) or path.suffix
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=parent)
    except OSError as exc:
        raise InputError(
            f"{path}: cannot create a file in {parent} ({exc.strerror or _short(exc)})"
        ) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes private files; give the result the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except OSError as exc:  # disk full, quota, a directory in the way: the user's to fix, not a bug
        raise InputError(f"{path}: cannot write ({exc.strerror or _short(exc)})") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that :func:`atomic_output` left beside ``path`` in a killed process.

    SIGKILL, an out-of-memory kill or a power cut skip the clean-up, and nothing else removes the hidden
    ``.NAME.*.tmp*`` files. Call it only where one process at a time writes ``path`` (a training directory):
    another writer's temporary file would go too. Returns the files removed.
    """
    path = Path(path)
    stale = sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp*"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def save_like(data: np.ndarray, like: Volume, path: str | os.PathLike, dtype=np.uint8) -> None:
    """Write ``data`` (shape like.data.shape) on ``like``'s grid and affine, atomically.

    The format follows ``path``'s suffix (.nii.gz, .nii, .mgz, .mgh); a NIfTI keeps ``like``'s header
    (its qform/sform codes) with the new dtype and no intensity scaling.
    """
    if data.shape != like.data.shape:
        raise ValueError(f"shape {data.shape} does not match the reference {like.data.shape}")
    header = like.image.header if isinstance(like.image, nib.Nifti1Image) else None
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
        out = nib.Nifti1Image(arr, affine, header=None if header is None else header.copy())
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
