"""Opening MVSEC HDF5 files and reading their datasets with honest error messages.

HDF5 reports very different problems with the same ``OSError``: a truncated
file, a file locked by a program that has it open for writing, and a dataset
compressed with a filter this HDF5 build lacks. This module tells them apart
so each becomes a one-line :class:`~snnc.errors.SnncError` that says what is
wrong and what to do:

* a **locked** file (HDF5 file locking, errno 11 / "unable to lock file")
  says it is locked by another program;
* a dataset whose **filter is not available** names the filter and points to
  ``pip install hdf5plugin`` (snnc imports ``hdf5plugin`` when it is
  installed, which registers Blosc, LZ4, Zstd, Bitshuffle, ...);
* anything else is "corrupt or truncated".
"""

from __future__ import annotations

import errno
from pathlib import Path

import h5py

from snnc.errors import SnncError

PathLike = str | Path

#: Registered HDF5 filter ids (https://github.com/HDFGroup/hdf5_plugins) -> name.
KNOWN_FILTERS = {
    1: "deflate (gzip)",
    2: "shuffle",
    3: "fletcher32",
    4: "szip",
    5: "nbit",
    6: "scaleoffset",
    307: "bzip2",
    32000: "lzf",
    32001: "blosc",
    32004: "lz4",
    32008: "bitshuffle",
    32013: "zfp",
    32015: "zstd",
    32017: "sz",
    32018: "fcidecomp",
    32024: "sz3",
    32026: "blosc2",
}
HDF5PLUGIN_HINT = "install the filter plugins with 'pip install hdf5plugin' (snnc loads them when present)"

try:  # registers the common compression filters with HDF5 when the package is installed
    import hdf5plugin
except ImportError:  # optional: only files using those filters need it
    hdf5plugin = None


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return getattr(exc, "errno", None) in (errno.EAGAIN, errno.EWOULDBLOCK) or "unable to lock file" in text


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def open_h5(path: Path, what: str) -> h5py.File:
    """Open ``path`` read-only as HDF5 or raise SnncError naming it (missing, locked, not HDF5, corrupt)."""
    if not path.exists():
        raise SnncError(f"{what} file not found", path)
    if not path.is_file():
        raise SnncError(f"{what} path is not a file", path)
    try:
        is_h5 = h5py.is_hdf5(str(path))
    except OSError as exc:
        if _is_lock_error(exc):
            raise SnncError(_locked_message(what, exc), path) from None
        raise SnncError(f"cannot read {what} file: {exc}", path) from None
    if not is_h5:
        raise SnncError(f"not an HDF5 file (expected the MVSEC {what} file)", path)
    try:
        return h5py.File(str(path), "r")
    except OSError as exc:
        if _is_lock_error(exc):
            raise SnncError(_locked_message(what, exc), path) from None
        raise SnncError(f"{what} file is corrupt or truncated, HDF5 cannot open it ({_one_line(exc)})", path) from None


def _locked_message(what: str, exc: BaseException) -> str:
    return (
        f"{what} file is locked by another program that has it open for writing (HDF5 file lock: "
        f"{_one_line(exc)}); wait for that program to finish or close it, then retry"
    )


def dataset(f: h5py.File, key: str) -> h5py.Dataset | None:
    """The dataset at ``key``, or None if the path is absent or not a dataset."""
    try:
        obj = f.get(key)
    except (OSError, RuntimeError) as exc:
        raise SnncError(f"cannot read {key}, file corrupt or truncated? ({exc})", f.filename) from None
    return obj if isinstance(obj, h5py.Dataset) else None


def missing_filter(ds: h5py.Dataset) -> str | None:
    """Name and id of the first filter of ``ds``'s pipeline that HDF5 cannot apply here, else None."""
    try:
        plist = ds.id.get_create_plist()
        n = plist.get_nfilters()
    except (OSError, RuntimeError, ValueError):
        return None
    for i in range(n):
        code, _flags, _values, name = plist.get_filter(i)
        if not h5py.h5z.filter_avail(code):
            label = KNOWN_FILTERS.get(int(code)) or (name.decode(errors="replace") if name else "") or "unregistered"
            return f"{label}, HDF5 filter id {int(code)}"
    return None


def require_filters(ds: h5py.Dataset, path: PathLike) -> None:
    """Raise SnncError when ``ds`` is compressed with a filter this HDF5 build cannot decode."""
    lacking = missing_filter(ds)
    if lacking is not None:
        raise SnncError(
            f"{ds.name.lstrip('/')} is compressed with a filter this HDF5 build lacks ({lacking}); {HDF5PLUGIN_HINT}",
            path,
        )


def read_error(exc: BaseException, key: str, path: PathLike | None, ds: h5py.Dataset | None = None) -> SnncError:
    """The SnncError for an ``OSError`` raised while reading ``key``: missing filter, else corrupt file."""
    lacking = missing_filter(ds) if ds is not None else None
    text = _one_line(exc)
    if lacking is not None or "filter" in text.lower() or "plugin" in text.lower():
        what = f" ({lacking})" if lacking else ""
        return SnncError(
            f"cannot read {key}: it is compressed with a filter this HDF5 build lacks{what}; {HDF5PLUGIN_HINT}", path
        )
    return SnncError(f"cannot read {key}, file corrupt or truncated? ({text})", path)
