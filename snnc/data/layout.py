"""Names, shapes and constants of the real MVSEC HDF5 layout.

A sequence is two files side by side: ``<name>_data.hdf5`` (sensor data) and
``<name>_gt.hdf5`` (ground truth). This module is the single place that spells
the dataset paths, so the reader, the synthetic generator and the tests agree.
"""

from __future__ import annotations

from pathlib import Path

from snnc.errors import SnncError

#: DAVIS 346 sensor resolution (rows, columns).
HEIGHT: int = 260
WIDTH: int = 346

#: Focal length x baseline of indoor_flying (pixels x metres).
FB_INDOOR_FLYING: float = 19.941772

#: Scale used by learning-based stereo on MVSEC: ``d = round(7 * fB / depth)``.
DISPARITY_SCALE: float = 7.0

CAMERAS: tuple[str, str] = ("left", "right")

#: Default of ``--max-window-events``: most events of one camera that one window may hold (about 100
#: bytes each while encoding). A DAVIS 346 peaks near 12 M events/s, i.e. 0.6 M per 50 ms window.
DEFAULT_MAX_WINDOW_EVENTS: int = 2_000_000


# data file
def events_key(camera: str) -> str:
    """Dataset of (N, 4) float64 events ``x, y, t, p`` for a camera."""
    return f"davis/{camera}/events"


def image_key(camera: str) -> str:
    """Dataset of (F, H, W) uint8 APS frames."""
    return f"davis/{camera}/image_raw"


def image_ts_key(camera: str) -> str:
    """Dataset of (F,) float64 APS frame timestamps (seconds)."""
    return f"davis/{camera}/image_raw_ts"


def image_event_inds_key(camera: str) -> str:
    """Dataset of (F,) int64 indices into the events of each APS frame's time."""
    return f"davis/{camera}/image_raw_event_inds"


def rect_map_key(camera: str, axis: str) -> str:
    """Optional embedded rectification map (H, W) float32; ``axis`` is 'x' or 'y'.

    Real MVSEC ships these as ``{camera}_{axis}_map.txt`` beside the files; the
    synthetic generator embeds them here as well.
    """
    return f"davis/{camera}/rect_{axis}_map"


# gt file
DEPTH_KEY: str = "davis/left/depth_image_rect"
DEPTH_TS_KEY: str = "davis/left/depth_image_rect_ts"
#: Unrectified depth (not used for learning; written by the generator for completeness).
DEPTH_RAW_KEY: str = "davis/left/depth_image_raw"
DEPTH_RAW_TS_KEY: str = "davis/left/depth_image_raw_ts"

# Column order of the events array.
EV_X, EV_Y, EV_T, EV_P = 0, 1, 2, 3


def gt_path_for(data_path: Path) -> Path:
    """The ground-truth file beside ``data_path`` (``*_data.hdf5`` -> ``*_gt.hdf5``)."""
    data_path = Path(data_path)
    name = data_path.name
    for suffix in (".hdf5", ".h5"):
        if name.endswith("_data" + suffix):
            return data_path.with_name(name[: -len("_data" + suffix)] + "_gt" + suffix)
    raise SnncError("data file name does not end in _data.hdf5; pass the gt file explicitly (--gt)", data_path)


def rect_map_txt_path(data_path: Path, camera: str, axis: str) -> Path:
    """Where real MVSEC's rectification map txt file would sit next to ``data_path``.

    The dataset's calibration archives name them ``<scene>_{camera}_{axis}_map.txt``
    (e.g. ``indoor_flying_left_x_map.txt``); the plain ``{camera}_{axis}_map.txt``
    is accepted as well. Returns the plain name; the reader globs for the prefixed one.
    """
    return Path(data_path).with_name(f"{camera}_{axis}_map.txt")
