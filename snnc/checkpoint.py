"""The one checkpoint format of snnc, and the one safe way to read it.

Every ``.pt`` file snnc writes (a network to deploy, a training run's
``checkpoint.pt`` / ``folded.pt``, a search's ``ARCH.search_state.pt``) is a
``torch.save`` of one plain dict::

    {
      "format": "snnc-checkpoint",
      "version": 2,
      "kind": "network" | "training" | "search",
      "snnc_version": "0.2.0",
      ...                       # the kind's own fields (see the writers)
    }

whose values are only what ``torch.load(weights_only=True)`` accepts:
tensors, ``str``/``int``/``float``/``bool``/``None``, and lists, tuples and
dicts of those. Genotypes and configs are stored as their JSON-able dicts,
optimizer and scheduler state as their ``state_dict()``, RNG states as
tensors and numbers (:func:`plain` converts NumPy values on the way in).

**Reading never unpickles code.** :func:`read_checkpoint` calls
``torch.load(weights_only=True)`` and nothing else: there is no fallback to a
full unpickle. A file holding any other Python object (a class instance, a
function such as ``os.system``) is refused with a one-line message that says
it was *not loaded* and which object it asked for.

Checkpoints of snnc 0.1 (``"snnc-checkpoint/1"`` network files and
``"snnc-checkpoint"`` version 1 training files) are read when they load
safely; training checkpoints of 0.1 held NumPy RNG state, which a
weights-only load refuses, so they are converted once with
``snnc checkpoint upgrade OLD.pt NEW.pt`` (:func:`upgrade_checkpoint`): that
reads the file with the weights-only unpickler plus exactly the NumPy array
constructors (no code can run) and writes the current format.
"""

from __future__ import annotations

import importlib
import re
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnc.errors import SnncError
from snnc.fileio import atomic_output

__all__ = [
    "FORMAT",
    "VERSION",
    "KINDS",
    "SUFFIXES",
    "plain",
    "write_checkpoint",
    "read_checkpoint",
    "upgrade_checkpoint",
    "numpy_rng_state",
]

#: ``format`` of every snnc checkpoint.
FORMAT = "snnc-checkpoint"
#: Current format version (1 was snnc 0.1: training checkpoints held NumPy RNG state).
VERSION = 2
#: What a checkpoint holds: a network to deploy, a training run, a search.
KINDS = ("network", "training", "search")
#: File suffixes that name a checkpoint.
SUFFIXES = (".pt", ".pth", ".ckpt")
_LEGACY_NETWORK_FORMAT = "snnc-checkpoint/1"
_HEADER = ("format", "version", "kind", "snnc_version")
_GLOBAL = re.compile(r"GLOBAL ([A-Za-z_][\w.]*)")

PathLike = str | Path


def plain(value: Any, where: str = "checkpoint") -> Any:
    """``value`` as what a weights-only load accepts (NumPy -> tensors/numbers, Path -> str).

    Raises:
        TypeError: a value of another type (a programming error in a writer: every
            field must be data).
    """
    if value is None or isinstance(value, (bool, int, str, bytes, torch.Tensor, torch.Size)):
        return value
    if isinstance(value, float):
        return float(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value).copy())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Counter):  # torch's MultiStepLR keeps milestones in a Counter
        return {plain(k, where): plain(v, where) for k, v in value.items()}
    if isinstance(value, (dict, OrderedDict)):
        return {plain(k, where): plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(plain(v, where) for v in value)
    if isinstance(value, (list, set)):
        return [plain(v, where) for v in value]
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored in a checkpoint (only data)")


def write_checkpoint(path: PathLike, kind: str, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` as a checkpoint of ``kind`` at ``path``, atomically.

    Raises:
        ValueError: unknown kind.
        TypeError: a value that is not data (see :func:`plain`).
        SnncError: the file cannot be written.
    """
    from snnc import __version__

    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r} (expected one of {', '.join(KINDS)})")
    reserved = sorted(set(payload) & set(_HEADER))
    if reserved:
        raise ValueError(f"checkpoint payload may not set the header field(s) {', '.join(reserved)}")
    doc = {"format": FORMAT, "version": VERSION, "kind": kind, "snnc_version": __version__, **plain(dict(payload))}
    path = Path(path)
    with atomic_output(path) as tmp:
        try:
            torch.save(doc, tmp)
        except OSError as err:
            raise SnncError(f"cannot write checkpoint: {err.strerror or err}", path) from None


def _refusal(err: Exception, path: Path) -> SnncError:
    """The one-line message for a file the weights-only load refused."""
    text = str(err)
    found = _GLOBAL.search(text)
    if found is None:
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)
        return SnncError(f"not a readable snnc checkpoint ({first[:160]}); it was not loaded", path)
    name = found.group(1)
    hint = ""
    if name.startswith("numpy."):
        hint = (
            "; a checkpoint of snnc 0.1 holds NumPy RNG state: convert it once with "
            "'snnc checkpoint upgrade OLD.pt NEW.pt'"
        )
    return SnncError(
        f"refused: the file asks to unpickle the Python object {name}, which a safe "
        f"(weights-only) load does not allow; it was not loaded{hint}",
        path,
    )


def _load(path: Path, safe_globals: Iterable[Any] = ()) -> Any:
    if not path.is_file():
        raise SnncError("checkpoint file not found" if not path.exists() else "is not a file", path)
    with open(path, "rb") as f:
        head = f.read(4)
    if not head.startswith(b"PK"):
        what = "an empty file" if not head else "not a torch zip archive"
        raise SnncError(f"not an snnc checkpoint ({what}); it was not loaded", path)
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise _refusal(err, path) from None


def _legacy_kind(doc: Mapping[str, Any]) -> str | None:
    """The kind of a snnc 0.1 document, or None when it is not one."""
    fmt = doc.get("format")
    if fmt == _LEGACY_NETWORK_FORMAT or (fmt is None and "genotype" in doc and "model" in doc):
        return "network"
    if fmt == FORMAT and doc.get("version") == 1:
        return "training" if "optimizer" in doc else "network"
    return None


def _normalise(doc: Any, path: Path) -> dict[str, Any]:
    if not isinstance(doc, Mapping):
        raise SnncError(f"not an snnc checkpoint: it holds a {type(doc).__name__}, not a dict", path)
    legacy = _legacy_kind(doc)
    if legacy is not None:
        return {**doc, "format": FORMAT, "version": VERSION, "kind": legacy, "legacy": True}
    if doc.get("format") != FORMAT:
        raise SnncError("not an snnc checkpoint (no 'format': 'snnc-checkpoint' field)", path)
    if doc.get("version") != VERSION:
        raise SnncError(
            f"checkpoint format version {doc.get('version')!r} is not supported by this snnc "
            f"(it reads version {VERSION})",
            path,
        )
    if doc.get("kind") not in KINDS:
        raise SnncError(f"checkpoint kind {doc.get('kind')!r} is unknown (expected one of {', '.join(KINDS)})", path)
    return dict(doc)


def read_checkpoint(path: PathLike, kinds: Iterable[str] | None = None) -> dict[str, Any]:
    """Load a checkpoint safely (weights-only, never a full unpickle) and check its header.

    Args:
        path: the ``.pt`` file.
        kinds: the kinds the caller accepts (all when None).

    Raises:
        SnncError: missing, not a checkpoint, refused by the safe load (it names the
            object the file asked for), another format version, or a kind not accepted.
    """
    path = Path(path)
    doc = _normalise(_load(path), path)
    if kinds is not None:
        wanted = tuple(kinds)
        if doc["kind"] not in wanted:
            raise SnncError(f"is a {doc['kind']} checkpoint, expected a {' or '.join(wanted)} checkpoint", path)
    return doc


def _numpy_globals() -> list[Any]:
    """The NumPy constructors an 0.1 training checkpoint's RNG state needs (data only, no code)."""
    numpy2 = int(np.__version__.split(".")[0]) >= 2
    multiarray = importlib.import_module("numpy._core.multiarray" if numpy2 else "numpy.core.multiarray")
    found: list[Any] = [multiarray._reconstruct, np.ndarray, np.dtype, multiarray.scalar]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [
            getattr(dtypes, n)
            for n in ("UInt32DType", "Float64DType", "Int64DType", "Float32DType")
            if hasattr(dtypes, n)
        ]
    return found


def numpy_rng_state(state: tuple[Any, ...]) -> dict[str, Any]:
    """An ``np.random.get_state()`` tuple as tensors and numbers (what a weights-only load accepts)."""
    name, keys, pos, has_gauss, cached = state
    return {
        "name": str(name),
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _rng_to_plain(rng: Any) -> Any:
    """0.1's RNG dict with a NumPy state tuple -> the form training checkpoints store now."""
    if isinstance(rng, Mapping) and isinstance(rng.get("numpy"), tuple):
        return {**rng, "numpy": numpy_rng_state(rng["numpy"])}
    return rng


def upgrade_checkpoint(src: PathLike, dst: PathLike) -> dict[str, Any]:
    """Convert a snnc 0.1 checkpoint to the current format; returns the new header fields.

    The old file is read with the weights-only unpickler plus the NumPy array
    constructors only (an array is data: no code can run); anything else it asks
    for is refused as in :func:`read_checkpoint`.

    Raises:
        SnncError: unreadable or refused file, not an 0.1 snnc checkpoint, or ``dst`` unwritable.
    """
    src, dst = Path(src), Path(dst)
    raw = _load(src, _numpy_globals())
    if not isinstance(raw, Mapping):
        raise SnncError(f"not an snnc checkpoint: it holds a {type(raw).__name__}, not a dict", src)
    kind = _legacy_kind(raw)
    if kind is None:
        if raw.get("format") == FORMAT and raw.get("version") == VERSION:
            raise SnncError(f"is already a version {VERSION} checkpoint; nothing to upgrade", src)
        raise SnncError("not a checkpoint written by snnc 0.1 (no known 'format')", src)
    body = {k: v for k, v in raw.items() if k not in ("format", "version")}
    if "rng" in body:
        body["rng"] = _rng_to_plain(body["rng"])
    write_checkpoint(dst, kind, body)
    return {"kind": kind, "keys": sorted(body)}
