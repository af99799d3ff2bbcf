"""Reader for MVSEC recordings in the real HDF5 layout (see ``layout.py``).

A recording is a ``*_data.hdf5`` file (events, APS frames, optional embedded
rectification maps) and, optionally, a ``*_gt.hdf5`` file beside it (rectified
left depth and its timestamps). :class:`MVSECRecording` validates both on open
and raises :class:`~snnc.errors.SnncError` with a one-line message naming the
file and the problem for anything malformed. Events are never loaded whole:
:meth:`MVSECRecording.events_between` locates a time window with a
bounded-memory binary search on the HDF5 dataset and reads only that slice.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import h5py
import numpy as np

from snnc.data import layout
from snnc.data.h5open import dataset as _dataset
from snnc.data.h5open import open_h5 as _open_h5
from snnc.data.h5open import read_error, require_filters
from snnc.data.h5search import SortedColumn, first_unsorted_row
from snnc.data.layout import DEFAULT_MAX_WINDOW_EVENTS
from snnc.data.pairs import check_pair
from snnc.data.rectmaps import find_rect_map_txt, load_rect_map_txt
from snnc.data.sanity import MAX_ABS_TIME_S, DataCheck, inspect_recording, time_resolution
from snnc.errors import SnncError

PathLike = str | Path
RectMaps = tuple[np.ndarray, np.ndarray]

#: Event arrays with at most this many rows are checked for sortedness exactly on open.
FULL_SORT_CHECK_ROWS: int = 1 << 18
#: Longer arrays: this many evenly spaced probe blocks ...
SORT_PROBE_BLOCKS: int = 16
#: ... of this many consecutive rows are checked (plus the sparse index).
SORT_PROBE_ROWS: int = 4096
#: Index samples / largest block per search on the time column (see h5search).
INDEX_SAMPLES: int = 1024
SEARCH_MAX_BLOCK: int = 1 << 18
#: Depth timestamps must resolve this (seconds) at their magnitude (float32 at 1.5e9 s resolves 128 s).
MAX_DEPTH_TS_RESOLUTION_S: float = 1e-3


def _is_numeric(ds: h5py.Dataset) -> bool:
    kind = ds.dtype.kind
    return ds.dtype.fields is None and kind in "iuf"


class MVSECRecording:
    """One MVSEC sequence: events of both DAVIS cameras, optional depth ground truth.

    Use as a context manager (``with MVSECRecording(path) as rec: ...``) or call
    :meth:`close`. ``gt_path`` defaults to ``layout.gt_path_for(data_path)``; when
    that file does not exist the recording simply has no ground truth
    (``has_gt`` False). An explicitly given ``gt_path`` must exist.
    Rectification maps: with ``rect_dir``, the ``{camera}_{axis}_map.txt`` /
    ``*_{camera}_{axis}_map.txt`` files there (they win over maps embedded in the
    data file); else the embedded maps; else txt files beside the data file;
    else identity. :meth:`rectification_line` says which were used.

    ``max_window_events`` bounds the events of one camera that
    :meth:`events_between` reads at once (checked before reading). With
    ``sanity`` (the default) the content checks of :mod:`snnc.data.sanity`
    (clocks, units, coordinates, rectification, depth) run on open and the
    first problem is raised; :attr:`check` holds the measured values either way.
    """

    def __init__(
        self,
        data_path: PathLike,
        gt_path: PathLike | None = None,
        rect_dir: PathLike | None = None,
        *,
        max_window_events: int = DEFAULT_MAX_WINDOW_EVENTS,
        sanity: bool = True,
    ) -> None:
        self.data_path = Path(data_path)
        if isinstance(max_window_events, bool) or int(max_window_events) < 1:
            raise SnncError(f"--max-window-events must be a positive integer, got {max_window_events!r}")
        self.max_window_events = int(max_window_events)
        self._rect_overrides: dict[str, bool] = {}
        self.check: DataCheck | None = None
        self._data: h5py.File | None = None
        self._gt: h5py.File | None = None
        self._events: dict[str, h5py.Dataset] = {}
        self._index: dict[str, SortedColumn] = {}
        self._rect: dict[str, RectMaps | None] = {}
        self._rect_source: dict[str, str] = {}
        self._depth_ds: h5py.Dataset | None = None
        self._depth_ts = np.zeros(0, dtype=np.float64)
        try:
            self._data = _open_h5(self.data_path, "data")
            self.gt_path = self._resolve_gt(gt_path)
            self._open_events()
            self.height, self.width = self._load_rect_and_size(rect_dir)
            if self.gt_path is not None:
                self._gt = _open_h5(self.gt_path, "ground-truth")
                check_pair(self._data, self._gt, self.data_path, self.gt_path)  # a stale synth pair is refused
                self._open_depth()
            self.check = inspect_recording(self)
            if sanity:
                self.check.raise_first()
        except BaseException:
            self.close()
            raise

    # -- opening and validation -------------------------------------------------
    def _resolve_gt(self, gt_path: PathLike | None) -> Path | None:
        if gt_path is not None:
            path = Path(gt_path)
            if not path.exists():
                raise SnncError("ground-truth file not found", path)
            return path
        try:
            path = layout.gt_path_for(self.data_path)
        except SnncError:
            return None  # not named *_data.hdf5: no gt unless given explicitly
        return path if path.exists() else None

    def _open_events(self) -> None:
        assert self._data is not None
        for camera in layout.CAMERAS:
            key = layout.events_key(camera)
            ds = _dataset(self._data, key)
            if ds is None:
                raise SnncError(f"missing dataset {key}", self.data_path)
            if not _is_numeric(ds):
                raise SnncError(f"{key} has non-numeric dtype {ds.dtype}, expected float64", self.data_path)
            if ds.ndim != 2:
                raise SnncError(f"{key} has shape {ds.shape}, expected (N, 4) (x, y, t, p)", self.data_path)
            if ds.shape[1] != 4:
                raise SnncError(f"{key} has {ds.shape[1]} columns, expected 4 (x, y, t, p)", self.data_path)
            require_filters(ds, self.data_path)
            try:
                index = SortedColumn(ds, layout.EV_T, max_samples=INDEX_SAMPLES, max_block=SEARCH_MAX_BLOCK)
                row, finite = first_unsorted_row(
                    index,
                    full_check_rows=FULL_SORT_CHECK_ROWS,
                    probe_blocks=SORT_PROBE_BLOCKS,
                    probe_rows=SORT_PROBE_ROWS,
                )
            except OSError as exc:
                raise read_error(exc, key, self.data_path, ds) from None
            if row is not None:
                problem = "non-finite timestamp" if not finite else "timestamps not sorted (decrease)"
                raise SnncError(f"{key}: {problem} at row {row}; events must be sorted by t", self.data_path)
            self._events[camera] = ds
            self._index[camera] = index

    def _embedded_map(self, camera: str, axis: str) -> np.ndarray | None:
        assert self._data is not None
        key = layout.rect_map_key(camera, axis)
        if key not in self._data:
            return None
        ds = _dataset(self._data, key)
        if ds is None or not _is_numeric(ds) or ds.ndim != 2:
            shape = getattr(ds, "shape", None)
            raise SnncError(f"{key} must be a 2-D numeric (H, W) map, got shape {shape}", self.data_path)
        require_filters(ds, self.data_path)
        try:
            return np.asarray(ds[()], dtype=np.float32)
        except OSError as exc:
            raise read_error(exc, key, self.data_path, ds) from None

    def _find_maps(self, camera: str, rect_dir: PathLike | None) -> tuple[RectMaps | None, str]:
        """Rectification maps of ``camera`` and where they came from (``rect_dir`` wins over embedded maps)."""
        emb = {axis: self._embedded_map(camera, axis) for axis in ("x", "y")}
        has_embedded = emb["x"] is not None or emb["y"] is not None
        self._rect_overrides[camera] = False
        if rect_dir is not None:
            if not Path(rect_dir).is_dir():
                raise SnncError("rectification map folder not found", rect_dir)
            maps, source = self._txt_maps(camera, [Path(rect_dir)])
            if maps is None:
                raise SnncError(
                    f"no {camera}_x_map.txt / {camera}_y_map.txt (or *_{camera}_x_map.txt) "
                    f"rectification maps in the --rect-dir folder",
                    rect_dir,
                )
            self._rect_overrides[camera] = has_embedded
            return maps, source
        if has_embedded:
            if emb["x"] is None or emb["y"] is None:
                have = "x" if emb["x"] is not None else "y"
                lack = "y" if have == "x" else "x"
                raise SnncError(
                    f"{layout.rect_map_key(camera, have)} present but {layout.rect_map_key(camera, lack)} missing",
                    self.data_path,
                )
            return (emb["x"], emb["y"]), "embedded"
        return self._txt_maps(camera, [self.data_path.parent])

    def _txt_maps(self, camera: str, folders: list) -> tuple[RectMaps | None, str]:
        """Text maps of ``camera`` from the first of ``folders`` that has them, or (None, 'identity')."""
        stem = self.data_path.stem
        txt = {axis: find_rect_map_txt(camera, axis, folders, stem) for axis in ("x", "y")}
        if txt["x"] is None and txt["y"] is None:
            return None, "identity"
        if txt["x"] is None or txt["y"] is None:
            have = txt["x"] if txt["x"] is not None else txt["y"]
            lack = "y" if txt["x"] is not None else "x"
            raise SnncError(f"rectification map for {camera} {lack} not found beside this one", have)
        xmap, ymap = load_rect_map_txt(txt["x"]), load_rect_map_txt(txt["y"])
        if xmap.shape != ymap.shape:
            raise SnncError(
                f"{camera} rectification map is {xmap.shape[0]}x{xmap.shape[1]} but "
                f"{txt['y'].name} is {ymap.shape[0]}x{ymap.shape[1]}",
                txt["x"],
            )
        return (xmap, ymap), str(txt["x"].parent)

    def _load_rect_and_size(self, rect_dir: PathLike | None) -> tuple[int, int]:
        assert self._data is not None
        size: tuple[int, int] | None = None
        size_from = ""
        for camera in layout.CAMERAS:
            img = _dataset(self._data, layout.image_key(camera))
            if img is not None and img.ndim == 3:
                if size is None:
                    size, size_from = (int(img.shape[1]), int(img.shape[2])), layout.image_key(camera)
                elif (int(img.shape[1]), int(img.shape[2])) != size:
                    raise SnncError(
                        f"{layout.image_key(camera)} is {img.shape[1]}x{img.shape[2]} but "
                        f"{size_from} is {size[0]}x{size[1]}",
                        self.data_path,
                    )
        for camera in layout.CAMERAS:
            maps, source = self._find_maps(camera, rect_dir)
            self._rect[camera], self._rect_source[camera] = maps, source
            if maps is None:
                continue
            shape = maps[0].shape
            where = self.data_path if source == "embedded" else Path(source)
            if maps[0].shape != maps[1].shape:
                raise SnncError(
                    f"{camera} rectification maps differ in shape: x {maps[0].shape}, y {maps[1].shape}", where
                )
            if size is None:
                size, size_from = (int(shape[0]), int(shape[1])), f"{camera} rectification map"
            elif tuple(shape) != size:
                raise SnncError(
                    f"{camera} rectification map is {shape[0]}x{shape[1]}, but the sensor "
                    f"({size_from}) is {size[0]}x{size[1]}",
                    where,
                )
        if size is None:
            size = (layout.HEIGHT, layout.WIDTH)
        return size

    def _open_depth(self) -> None:
        assert self._gt is not None and self.gt_path is not None
        path = self.gt_path
        depth = _dataset(self._gt, layout.DEPTH_KEY)
        ts = _dataset(self._gt, layout.DEPTH_TS_KEY)
        if depth is None:
            raise SnncError(f"ground-truth file has no depth dataset {layout.DEPTH_KEY}", path)
        if ts is None:
            raise SnncError(f"ground-truth file has no depth timestamps {layout.DEPTH_TS_KEY}", path)
        require_filters(depth, path)
        require_filters(ts, path)
        if not _is_numeric(depth) or depth.ndim != 3:
            raise SnncError(f"{layout.DEPTH_KEY} must be numeric (D, H, W), got {depth.dtype} {depth.shape}", path)
        if (int(depth.shape[1]), int(depth.shape[2])) != (self.height, self.width):
            raise SnncError(
                f"depth images are {depth.shape[1]}x{depth.shape[2]}, but the sensor/"
                f"rectification maps are {self.height}x{self.width}",
                path,
            )
        if not _is_numeric(ts) or ts.ndim != 1:
            raise SnncError(f"{layout.DEPTH_TS_KEY} must be a numeric 1-D array, got {ts.dtype} {ts.shape}", path)
        if ts.shape[0] != depth.shape[0]:
            raise SnncError(
                f"{layout.DEPTH_TS_KEY} has {ts.shape[0]} timestamps but there are {depth.shape[0]} depth images", path
            )
        try:
            values = np.asarray(ts[()], dtype=np.float64)
        except OSError as exc:
            raise read_error(exc, layout.DEPTH_TS_KEY, path, ts) from None
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise SnncError(f"{layout.DEPTH_TS_KEY} has a non-finite timestamp at index {bad[0]}", path)
        if values.size:
            step = time_resolution(ts.dtype, float(np.abs(values).max()))
            if step > MAX_DEPTH_TS_RESOLUTION_S and np.abs(values).max() <= MAX_ABS_TIME_S:  # else: units
                raise SnncError(
                    f"{layout.DEPTH_TS_KEY} is {ts.dtype}: near t = {np.abs(values).max():.6g} it "
                    f"resolves only {step:.3g}, so depth timestamps collapse; MVSEC stores float64 "
                    f"seconds",
                    path,
                )
        dec = np.flatnonzero(np.diff(values) <= 0)
        if dec.size:
            i = int(dec[0]) + 1
            raise SnncError(
                f"depth timestamps not increasing: {layout.DEPTH_TS_KEY}[{i}] = {values[i]!r} "
                f"<= [{i - 1}] = {values[i - 1]!r}",
                path,
            )
        self._depth_ds = depth
        self._depth_ts = values

    # -- context management -----------------------------------------------------
    def close(self) -> None:
        """Close the HDF5 files (idempotent)."""
        for f in (self._data, self._gt):
            if f is not None:
                with contextlib.suppress(Exception):  # closing a half-opened file must not mask the real error
                    f.close()
        self._data = self._gt = None

    def __enter__(self) -> MVSECRecording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"MVSECRecording({str(self.data_path)!r}, gt={str(self.gt_path) if self.gt_path else None!r}, "
            f"{self.height}x{self.width})"
        )

    def _require_open(self) -> None:
        if self._data is None:
            raise SnncError("recording is closed", self.data_path)

    def _camera(self, camera: str) -> str:
        if camera not in layout.CAMERAS:
            raise SnncError(f"unknown camera {camera!r}, expected one of {', '.join(layout.CAMERAS)}", self.data_path)
        return camera

    # -- public API -------------------------------------------------------------
    @property
    def sequence_name(self) -> str:
        """File name without ``_data.hdf5`` (e.g. ``indoor_flying1``)."""
        name = self.data_path.name
        for suffix in ("_data.hdf5", "_data.h5", ".hdf5", ".h5"):
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return self.data_path.stem

    @property
    def has_gt(self) -> bool:
        """Whether a ground-truth depth file is attached."""
        return self._depth_ds is not None

    @property
    def depth_ts(self) -> np.ndarray:
        """(D,) float64 depth timestamps in seconds (empty without gt)."""
        return self._depth_ts.copy()

    @property
    def n_depth(self) -> int:
        """Number of depth frames (0 without gt)."""
        return int(self._depth_ts.shape[0])

    def depth(self, k: int) -> np.ndarray:
        """Depth frame ``k`` as float32 (H, W) in metres, NaN where unknown."""
        self._require_open()
        if self._depth_ds is None:
            raise SnncError("recording has no ground-truth depth (no *_gt.hdf5 file)", self.data_path)
        n = self.n_depth
        if not -n <= int(k) < n:
            raise SnncError(f"depth index {k} out of range, the recording has {n} depth frames", self.gt_path)
        try:
            return np.asarray(self._depth_ds[int(k) % n], dtype=np.float32)
        except OSError as exc:
            raise read_error(exc, f"depth frame {k}", self.gt_path, self._depth_ds) from None

    def event_count(self, camera: str) -> int:
        """Number of events of ``camera``."""
        self._require_open()
        return int(self._events[self._camera(camera)].shape[0])

    def time_range(self) -> tuple[float, float]:
        """(first, last) event time over both cameras, in seconds.

        Falls back to the depth timestamps when there are no events, and is
        ``(nan, nan)`` when the recording has neither.
        """
        self._require_open()
        firsts, lasts = [], []
        for camera in layout.CAMERAS:
            index = self._index[camera]
            if index.n:
                firsts.append(float(index.values[0]))
                lasts.append(float(index.values[-1]))
        if not firsts and self.n_depth:
            firsts, lasts = [float(self._depth_ts[0])], [float(self._depth_ts[-1])]
        if not firsts:
            return float("nan"), float("nan")
        return min(firsts), max(lasts)

    def events_between(self, camera: str, t0: float, t1: float) -> np.ndarray:
        """Events of ``camera`` with ``t0 < t <= t1`` as an (N, 4) float64 array (x, y, t, p).

        Only the matching slice (plus one row each side for the order check) is
        read. Raises SnncError if the rows read are not sorted by time.
        """
        self._require_open()
        camera = self._camera(camera)
        ds, index = self._events[camera], self._index[camera]
        if not (t1 > t0):
            return np.zeros((0, 4), dtype=np.float64)
        try:
            a = index.searchsorted(t0, side="right")
            b = index.searchsorted(t1, side="right")
            b = max(a, b)
            if b - a > self.max_window_events:
                raise SnncError(
                    f"{camera} camera: {b - a} events in the window ({t0:.6f}, {t1:.6f}] s, more than "
                    f"--max-window-events {self.max_window_events} (about 100 bytes each while "
                    f"encoding); raise the option if the recording is really this dense",
                    self.data_path,
                )
            lo, hi = max(a - 1, 0), min(b + 1, index.n)
            block = np.asarray(ds[lo:hi], dtype=np.float64) if hi > lo else np.zeros((0, 4))
        except OSError as exc:
            raise read_error(exc, layout.events_key(camera), self.data_path, ds) from None
        t = block[:, layout.EV_T]
        bad = np.flatnonzero(~np.isfinite(t))
        if bad.size:
            raise SnncError(f"{camera} camera: non-finite event timestamp at row {lo + int(bad[0])}", self.data_path)
        dec = np.flatnonzero(np.diff(t) < 0)
        inner = t[a - lo : b - lo]
        if dec.size or (inner.size and (inner[0] <= t0 or inner[-1] > t1)):
            row = lo + int(dec[0]) + 1 if dec.size else a
            raise SnncError(
                f"{camera} camera: event timestamps not sorted near row {row} (window ({t0!r}, {t1!r}])", self.data_path
            )
        return block[a - lo : b - lo]

    def rect_maps(self, camera: str) -> RectMaps | None:
        """(x_map, y_map) float32 (H, W) rectification tables of ``camera``, or None for identity."""
        self._require_open()
        return self._rect[self._camera(camera)]

    def rect_source(self, camera: str) -> str:
        """Where the maps came from: ``'embedded'``, the folder of the txt files, or ``'identity'``."""
        return self._rect_source[self._camera(camera)]

    def rectification_line(self) -> str:
        """One line saying which rectification maps are used for each camera (printed by the commands)."""
        return "rectification: " + self.rectification_text()

    def rectification_text(self) -> str:
        """Which rectification maps are used, e.g. ``maps embedded in the data file (left, right)``."""
        parts = []
        for camera in layout.CAMERAS:
            source = self._rect_source[camera]
            if source == "embedded":
                text = "maps embedded in the data file"
            elif source == "identity":
                text = "none found, identity (real MVSEC needs --rect-dir)"
            else:
                text = f"txt maps from {source}"
                if self._rect_overrides.get(camera):
                    text += " (--rect-dir; embedded maps ignored)"
            parts.append((camera, text))
        if parts[0][1] == parts[1][1]:
            return f"{parts[0][1]} (left, right)"
        return "; ".join(f"{cam} {text}" for cam, text in parts)

    def camera_time_range(self, camera: str) -> tuple[float, float]:
        """(first, last) event time of ``camera`` in seconds, ``(nan, nan)`` without events."""
        self._require_open()
        index = self._index[self._camera(camera)]
        if not index.n:
            return float("nan"), float("nan")
        return float(index.values[0]), float(index.values[-1])

    def event_dtype(self, camera: str) -> np.dtype:
        """The stored dtype of ``camera``'s events dataset."""
        self._require_open()
        return self._events[self._camera(camera)].dtype

    def sample_events(self, camera: str, blocks: int, block_rows: int) -> np.ndarray:
        """At most ``blocks * block_rows`` events of ``camera`` as float64 (N, 4): all of them when they fit,
        else ``blocks`` evenly spaced runs of ``block_rows`` consecutive rows."""
        self._require_open()
        ds = self._events[self._camera(camera)]
        n = int(ds.shape[0])
        try:
            if n <= blocks * block_rows:
                return np.asarray(ds[()], dtype=np.float64).reshape(-1, 4)
            starts = np.unique(np.linspace(0, n - block_rows, blocks).astype(np.int64))
            return np.concatenate([np.asarray(ds[int(s) : int(s) + block_rows], dtype=np.float64) for s in starts])
        except OSError as exc:
            raise read_error(exc, layout.events_key(camera), self.data_path, ds) from None
