"""Empty-window rule and dropped-event counts of a stream of SBT windows.

A window of a camera is **empty** when none of its events lands on a pixel of
the frame (no events in the window, or all of them off the sensor or mapped
outside by the rectification maps): its SBT stack is all zero. A stream is
refused (one-line :class:`~snnc.errors.SnncError`) when

* a camera has ``EMPTY_RUN_LIMIT`` consecutive empty windows (1 s at the 20 Hz
  depth clock; a DAVIS camera that works produces noise events all the time), or
* at the end, every window of a camera was empty (short streams),

because the metrics, energy or model it would produce are meaningless. Fewer
empty windows are counted: :meth:`WindowStats.to_dict` goes into the stream
summary, which says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snnc.data import layout
from snnc.data.sbt import SbtCounts
from snnc.errors import SnncError

PathLike = str | Path

#: Consecutive empty windows of one camera that stop a stream.
EMPTY_RUN_LIMIT: int = 20

_HINT = "check the time ranges, units and rectification with snnc data info"


class WindowStats:
    """Counts per camera over the windows of one stream; raises on the empty-window rule.

    Args:
        source: file named in the error messages.
        run_limit: consecutive empty windows of a camera that raise.
    """

    def __init__(self, source: PathLike | None = None, run_limit: int = EMPTY_RUN_LIMIT) -> None:
        self.source = source
        self.run_limit = int(run_limit)
        self.windows = 0
        self.empty = dict.fromkeys(layout.CAMERAS, 0)
        self.events = dict.fromkeys(layout.CAMERAS, 0)
        self.off_sensor = dict.fromkeys(layout.CAMERAS, 0)
        self.rect_dropped = dict.fromkeys(layout.CAMERAS, 0)
        self._run = dict.fromkeys(layout.CAMERAS, 0)

    def add(self, t: float, counts: Sequence[SbtCounts]) -> None:
        """Record one window ending at ``t`` (``counts`` per camera, left then right)."""
        self.windows += 1
        for cam, c in zip(layout.CAMERAS, counts, strict=True):
            self.events[cam] += c.events
            self.off_sensor[cam] += c.off_sensor
            self.rect_dropped[cam] += c.rect_dropped
            if c.kept == 0:
                self.empty[cam] += 1
                self._run[cam] += 1
            else:
                self._run[cam] = 0
            if self._run[cam] >= self.run_limit:
                raise SnncError(
                    f"{cam} camera: {self._run[cam]} consecutive windows up to t = {t:.6f} s have no "
                    f"event on the frame ({self._dropped_text(cam)}); the stream would be meaningless; "
                    f"{_HINT}",
                    self.source,
                )

    def finish(self) -> None:
        """Raise when every window of a camera was empty (call once the stream has ended)."""
        for cam in layout.CAMERAS:
            if self.windows and self.empty[cam] == self.windows:
                raise SnncError(
                    f"{cam} camera: all {self.windows} windows have no event on the frame "
                    f"({self._dropped_text(cam)}); {_HINT}",
                    self.source,
                )

    def _dropped_text(self, cam: str) -> str:
        return (
            f"{self.events[cam]} events read, {self.off_sensor[cam]} off the sensor, "
            f"{self.rect_dropped[cam]} outside the rectified frame"
        )

    @property
    def partly_empty(self) -> bool:
        """Whether some (not all) windows of a camera were empty."""
        return any(self.empty.values())

    @property
    def dropped(self) -> bool:
        """Whether any event was dropped (off the sensor or by the rectification maps)."""
        return any(self.off_sensor.values()) or any(self.rect_dropped.values())

    def to_dict(self) -> dict[str, Any]:
        """``windows`` and, per camera, ``empty_windows``, ``events``, ``off_sensor``, ``rect_dropped``."""
        return {
            "windows": self.windows,
            **{
                cam: {
                    "empty_windows": self.empty[cam],
                    "events": self.events[cam],
                    "off_sensor": self.off_sensor[cam],
                    "rect_dropped": self.rect_dropped[cam],
                }
                for cam in layout.CAMERAS
            },
        }

    def summary_line(self) -> str:
        """One line about empty windows and dropped events ('' when there is nothing to say)."""
        parts = []
        if self.partly_empty:
            parts.append(
                "empty windows "
                + ", ".join(f"{cam} {self.empty[cam]}" for cam in layout.CAMERAS)
                + f" of {self.windows} (no event on the frame: all-zero input)"
            )
        if self.dropped:
            parts.append(
                "dropped events "
                + ", ".join(
                    f"{cam} {self.off_sensor[cam]} off the sensor + {self.rect_dropped[cam]} by rectification"
                    for cam in layout.CAMERAS
                )
            )
        return "; ".join(parts)
