"""``results.h5`` of ``snnc stream``: written frame by frame (bounded memory), renamed into place at the end.

Datasets (``F`` frames, ``H x W`` sensor):

=====================  ==============  ==================================================================
``disparity``          float32 F,H,W   predicted disparity in **unscaled pixels** (``fB / depth``; the
                                       network's output in training units divided by 7)
``timestamps``         float64 F       frame time (end of the 50 ms event window), seconds
``events``             int64 F,2       events in the window, left and right camera
``ac``, ``mac``        float64 F       accumulates / multiply-accumulates of the frame (one op-counting
                                       pass; NaN with energy off)
``energy_j``           float64 F       energy of the frame in joules (AC 0.9 pJ, MAC 4.6 pJ by default)
``gt_index``           int64 F         with ground truth: index of the frame's depth image in the gt file
``mean_disparity_error``, ``mean_depth_error``, ``median_depth_error``, ``one_pixel_accuracy``
                       float64 F       with ground truth: per-frame metrics (px, m, m, fraction in [0,1]);
                                       NaN for a frame without a valid ground-truth pixel
``n_valid``            int64 F         with ground truth: valid ground-truth pixels of the frame
=====================  ==============  ==================================================================

Root attributes: ``disparity_units``, ``model``, ``backend``, ``device``, ``clock``,
``data_file``, ``gt_file``, ``fb``, ``disparity_scale``, ``energy_costs`` and,
when the stream ends, ``summary`` (JSON of the overall numbers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from snnc.data.metrics import METRIC_NAMES
from snnc.h5write import H5Output
from snnc.runtime.engine import FrameResult

__all__ = ["ResultsWriter", "DISPARITY_UNITS"]

DISPARITY_UNITS = "pixels, unscaled (fB / depth); network training units are 7x this"


class ResultsWriter:
    """Appends one frame at a time to ``path`` (open it on a temporary path; see ``atomic_output``).

    Args:
        path: file to create.
        height, width: frame size.
        with_gt: add the per-frame metric datasets.
        attrs: root attributes to store.
    """

    def __init__(self, path: Path, height: int, width: int, *, with_gt: bool, attrs: dict[str, Any]) -> None:
        self._out = H5Output(path)  # a full disk raises OSError at add/finish, never a half-open HDF5 file
        self.f = f = self._out.file
        self.with_gt = with_gt
        self.n = 0
        try:
            f.create_dataset(
                "disparity",
                shape=(0, height, width),
                maxshape=(None, height, width),
                dtype=np.float32,
                chunks=(1, height, width),
                compression="gzip",
                compression_opts=1,
                shuffle=True,
            )
            f["disparity"].attrs["units"] = DISPARITY_UNITS
            scalars: dict[str, type[np.generic]] = dict.fromkeys(("timestamps", "ac", "mac", "energy_j"), np.float64)
            if with_gt:
                scalars.update(dict.fromkeys(METRIC_NAMES, np.float64))
                scalars.update({"n_valid": np.int64, "gt_index": np.int64})
            for name, dtype in scalars.items():
                f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(1024,))
            f.create_dataset("events", shape=(0, 2), maxshape=(None, 2), dtype=np.int64, chunks=(1024, 2))
            f["timestamps"].attrs["units"] = "seconds"
            f["energy_j"].attrs["units"] = "joules"
            for key, value in attrs.items():
                f.attrs[key] = value if isinstance(value, (int, float, str)) else json.dumps(value)
            self._ds = {name: f[name] for name in f}  # open once: no per-frame handle churn
            self._out.check()
        except BaseException:
            self._out.abort()
            raise

    def _append(self, name: str, value: Any) -> None:
        ds = self._ds[name]
        ds.resize(self.n + 1, axis=0)
        ds[self.n] = value

    def add(self, r: FrameResult) -> None:
        """Append one frame.

        Raises:
            OSError: writing the file failed (full or read-only disk); ``atomic_output`` names the output.
        """
        self._append("disparity", r.disparity)
        self._append("timestamps", r.t)
        self._append("events", np.asarray(r.events, dtype=np.int64))
        self._append("ac", r.ac)
        self._append("mac", r.mac)
        self._append("energy_j", r.energy_j)
        if self.with_gt:
            m = r.metrics
            for name in METRIC_NAMES:
                self._append(name, float(m[name]) if m else np.nan)
            self._append("n_valid", int(m["n_valid"]) if m else 0)
            self._append("gt_index", -1 if r.gt_index is None else int(r.gt_index))
        self.n += 1
        self._out.check()

    def finish(self, summary: dict[str, Any] | None) -> None:
        """Store the summary attribute and close the file.

        Raises:
            OSError: the file could not be written completely.
        """
        try:
            if summary is not None:
                self.f.attrs["summary"] = json.dumps(summary)
        except BaseException:
            self._out.abort()
            raise
        self._ds = {}
        self._out.close()

    def close(self) -> None:
        """Close without a summary (on failure; never raises)."""
        self._ds = {}
        self._out.abort()
