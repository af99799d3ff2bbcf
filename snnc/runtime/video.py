"""A video of a stream: left events, predicted disparity, ground truth and error side by side, frame by frame.

``snnc stream --video out.mp4`` (or ``.gif``) writes one video frame per
streamed frame with :class:`StreamVideo`. Every panel keeps one colour scale
for the whole video (so colours mean the same thing in every frame): the
disparity panels run from 0 to the network's largest disparity, with a colour
bar in pixels on the right and the matching depth ``fB / disparity`` in metres
on the left; the error panel runs from 0 to :data:`ERROR_MAX_PX` pixels.

Frames are drawn with matplotlib (one figure, updated in place) and piped to
the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships (H.264 for ``.mp4``,
a per-frame palette GIF for ``.gif``), so memory stays bounded by one frame
however long the stream is. The file is written to a temporary name beside the
target and renamed when the video is complete; an error leaves no partial file.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from snnc.data import layout
from snnc.errors import SnncError

__all__ = ["VIDEO_SUFFIXES", "ERROR_MAX_PX", "StreamVideo", "check_video_path", "read_video_info", "save_still"]

#: Container formats ``--video`` writes, by file suffix.
VIDEO_SUFFIXES = (".mp4", ".gif")
#: Top of the |error| colour scale (px): larger errors saturate.
ERROR_MAX_PX = 2.0
_EVENTS_CLIP = 3.0  # signed event count per pixel shown at full grey / white
_DPI = 80


def check_video_path(path: Path) -> str:
    """The container (``mp4`` / ``gif``) of ``path``; refuses other suffixes and a missing writer.

    Raises:
        SnncError: an unsupported suffix, or imageio-ffmpeg is not installed.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise SnncError(f"--video must end in {' or '.join(VIDEO_SUFFIXES)}, got {suffix or 'no suffix'!r}", path)
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise SnncError("--video needs the imageio-ffmpeg package (pip install imageio-ffmpeg)", path) from None
    return suffix[1:]


def _gt_disparity(gt_depth: np.ndarray | None, shape: tuple[int, int], fb: float) -> np.ndarray:
    gt = np.full(shape, np.nan, dtype=np.float32)
    if gt_depth is not None:
        ok = np.isfinite(gt_depth) & (gt_depth > 0)
        gt[ok] = fb / gt_depth[ok]
    return gt


def _depth_ticks(max_disparity_px: float, fb: float) -> list[float]:
    """Round depths (m) for the metre axis: disparity ``fB / z`` inside the scale, ticks spaced apart."""
    candidates = sorted(m * decade for decade in (0.1, 1.0, 10.0, 100.0) for m in (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0))
    ticks: list[float] = []
    last_px = math.inf
    for z in candidates:
        d = fb / z
        if d > max_disparity_px or d < 0.08 * max_disparity_px:
            continue
        if last_px - d >= 0.09 * max_disparity_px:
            ticks.append(z)
            last_px = d
    return ticks


class StreamVideo:
    """Writes a stream's video incrementally (see module docstring); use as a context manager.

    Args:
        path: the target ``.mp4`` / ``.gif`` file (replaced atomically when complete).
        height, width: sensor size of the streamed frames.
        max_disparity_px: top of the disparity colour scale (unscaled px), e.g. the network's range.
        fps: frames per second of the video (20 plays a 20 Hz recording in real time).
        fb: focal length x baseline (px m) for the metre axis.
        title: text above the panels (the model, the recording).
    """

    def __init__(
        self,
        path: Path,
        height: int,
        width: int,
        *,
        max_disparity_px: float,
        fps: float = 20.0,
        fb: float = layout.FB_INDOOR_FLYING,
        title: str = "",
    ) -> None:
        self.path = Path(path)
        self.container = check_video_path(self.path)
        if not (max_disparity_px > 0 and math.isfinite(max_disparity_px)):
            raise SnncError(
                f"video disparity scale must be a positive number of pixels, got {max_disparity_px}", self.path
            )
        if not fps > 0:
            raise SnncError(f"video fps must be positive, got {fps}", self.path)
        self.height, self.width = int(height), int(width)
        self.vmax = float(max_disparity_px)
        self.fps = float(fps)
        self.fb = float(fb)
        self.title = title
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the video in pixels
        self._stack = ExitStack()
        self._writer: Any = None
        self._fig: Any = None
        self._images: list[Any] = []
        self._text: Any = None

    # -- life cycle: open() ... add() ... close() (or abort()), or a with-block -----------------------
    def open(self) -> StreamVideo:
        """Reserve the temporary file beside :attr:`path`; frames go there until :meth:`close`."""
        from snnc.fileio import atomic_output

        self._tmp = self._stack.enter_context(atomic_output(self.path))
        self._stack.callback(self._close_figure)
        return self

    def close(self) -> None:
        """Finish the video and move it to :attr:`path`.

        Raises:
            SnncError: no frame was added, or ffmpeg failed (the temporary file is removed).
        """
        try:
            self._finish_writer(abort=False)
        except BaseException as err:  # the temporary file is discarded, then the error propagates
            self._stack.__exit__(type(err), err, err.__traceback__)
            raise
        self._stack.close()

    def abort(self) -> None:
        """Stop ffmpeg and remove the temporary file; :attr:`path` is left as it was."""
        self._finish_writer(abort=True)
        err = SnncError("video aborted", self.path)
        try:
            self._stack.__exit__(SnncError, err, None)
        except SnncError as raised:
            if raised is not err:
                raise

    def __enter__(self) -> StreamVideo:
        return self.open()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None:
            self.close()
        else:
            self._finish_writer(abort=True)
            return bool(self._stack.__exit__(exc_type, exc, tb))
        return False

    def _finish_writer(self, abort: bool) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            if not abort:
                raise SnncError("no frame was streamed, so no video was written", self.path)
            return
        try:
            writer.close()  # flushes and waits for ffmpeg
        except Exception as exc:
            if not abort:
                raise SnncError(f"ffmpeg could not finish the video: {exc}", self.path) from None

    def _close_figure(self) -> None:
        if self._fig is not None:
            import matplotlib.pyplot as plt

            plt.close(self._fig)
            self._fig = None

    # -- drawing ---------------------------------------------------------------------------------
    def _build_figure(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        # layout in inches: 4 panels, the disparity bar (metres left, pixels right) after panel 3,
        # the error bar after panel 4
        pw = 3.0
        ph = pw * self.height / self.width
        gap, bar_w, m_room, px_room, top, bottom = 0.2, 0.14, 0.55, 0.75, 0.62, 0.12
        lefts = [0.15]
        lefts.append(lefts[0] + pw + gap)
        lefts.append(lefts[1] + pw + gap)
        disp_bar = lefts[2] + pw + m_room
        lefts.append(disp_bar + bar_w + px_room)
        err_bar = lefts[3] + pw + 0.15
        fig_w, fig_h = err_bar + bar_w + 0.45, ph + top + bottom
        fig = plt.figure(figsize=(fig_w, fig_h), dpi=_DPI)

        def box(left: float, width: float) -> tuple[float, float, float, float]:
            return (left / fig_w, bottom / fig_h, width / fig_w, ph / fig_h)

        blank = np.zeros((self.height, self.width), dtype=np.float32)
        specs = [
            ("left events (signed count)", "gray", -_EVENTS_CLIP, _EVENTS_CLIP),
            ("predicted disparity", "magma", 0.0, self.vmax),
            ("ground truth (fB / depth)", "magma", 0.0, self.vmax),
            ("|error| (px)", "viridis", 0.0, ERROR_MAX_PX),
        ]
        for left, (name, cmap, lo, hi) in zip(lefts, specs, strict=True):
            ax = fig.add_axes(box(left, pw))
            colours = matplotlib.colormaps[cmap].with_extremes(bad="#303030")  # no ground truth: dark grey
            im = ax.imshow(blank, cmap=colours, vmin=lo, vmax=hi, interpolation="nearest", aspect="auto")
            ax.set_title(name, fontsize=9)
            ax.axis("off")
            self._images.append(im)
        bar = fig.colorbar(self._images[2], cax=fig.add_axes(box(disp_bar, bar_w)))
        bar.set_label("disparity (px)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
        ticks = _depth_ticks(self.vmax, self.fb)
        if ticks:
            depth_axis = bar.ax.secondary_yaxis("left", functions=(self._px_to_m, self._m_to_px))
            depth_axis.set_yticks(ticks)
            depth_axis.set_yticklabels([f"{z:g}" for z in ticks])
            depth_axis.set_ylabel("depth (m)", fontsize=8)
            depth_axis.tick_params(labelsize=7)
        err = fig.colorbar(self._images[3], cax=fig.add_axes(box(err_bar, bar_w)))
        err.ax.tick_params(labelsize=7)
        self._text = fig.suptitle(self.title, fontsize=9, y=1.0 - 0.05 / fig_h, va="top")
        self._fig = fig

    def _px_to_m(self, d: Any) -> Any:
        d = np.asarray(d, dtype=np.float64)
        return self.fb / np.maximum(d, 1e-6)

    def _m_to_px(self, z: Any) -> Any:
        z = np.asarray(z, dtype=np.float64)
        return self.fb / np.maximum(z, 1e-6)

    def _render(self) -> np.ndarray:
        fig = self._fig
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        rgb = rgba[..., :3]
        h, w = rgb.shape[0] - rgb.shape[0] % 2, rgb.shape[1] - rgb.shape[1] % 2  # H.264 needs even sizes
        return np.ascontiguousarray(rgb[:h, :w])

    def _open_writer(self, width: int, height: int) -> None:
        import imageio_ffmpeg

        if self.container == "gif":
            kwargs: dict[str, Any] = {
                "codec": "gif",
                "pix_fmt_out": "pal8",
                "output_params": [
                    "-vf",
                    "split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1",
                    "-loop",
                    "0",
                    "-f",
                    "gif",
                ],
            }
        else:
            kwargs = {
                "codec": "libx264",
                "pix_fmt_out": "yuv420p",
                "quality": 7,
                "output_params": ["-movflags", "+faststart", "-f", "mp4"],
            }
        writer = imageio_ffmpeg.write_frames(
            str(self._tmp), (width, height), fps=self.fps, macro_block_size=2, ffmpeg_log_level="error", **kwargs
        )
        writer.send(None)  # start ffmpeg
        self._writer = writer
        self.size = (width, height)

    def add(
        self, disparity: np.ndarray, gt_depth: np.ndarray | None, left_events: np.ndarray | None, caption: str = ""
    ) -> None:
        """Append one frame: predicted disparity (H, W) px, ground-truth depth (H, W) m or None, left events.

        Raises:
            SnncError: an image of another size than the video's, or ffmpeg failing.
        """
        shape = (self.height, self.width)
        for name, img in (("disparity", disparity), ("ground truth", gt_depth), ("events", left_events)):
            if img is not None and tuple(img.shape) != shape:
                raise SnncError(f"{name} image is {tuple(img.shape)}, the video is {shape}", self.path)
        if self._fig is None:
            self._build_figure()
        gt = _gt_disparity(gt_depth, shape, self.fb)
        events = left_events if left_events is not None else np.zeros(shape, dtype=np.float32)
        pred = np.asarray(disparity, dtype=np.float32)
        for im, img in zip(self._images, (events, pred, gt, np.abs(pred - gt)), strict=True):
            im.set_data(img)
        self._text.set_text(f"{self.title}\n{caption}" if self.title and caption else (self.title or caption))
        rgb = self._render()
        if self._writer is None:
            self._open_writer(rgb.shape[1], rgb.shape[0])
        try:
            self._writer.send(rgb)
        except (OSError, StopIteration) as exc:
            raise SnncError(f"ffmpeg stopped writing the video: {exc}", self.path) from None
        self.frames += 1


def read_video_info(path: Path) -> tuple[int, tuple[int, int]]:
    """``(frames, (width, height))`` of a video, decoded with imageio-ffmpeg's ffmpeg (reads every frame).

    Raises:
        SnncError: the file cannot be decoded.
    """
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        frames = sum(1 for _ in reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise SnncError(f"cannot read the video: {exc}", path) from None
    return frames, (int(meta["size"][0]), int(meta["size"][1]))


def save_still(video: Path, index: int, png: Path) -> tuple[int, int]:
    """Write frame ``index`` (0-based) of ``video`` as the PNG ``png`` (atomically); returns its (width, height).

    Raises:
        SnncError: the video cannot be decoded or has fewer than ``index + 1`` frames.
    """
    import imageio_ffmpeg
    from PIL import Image

    from snnc.fileio import atomic_output

    try:
        reader = imageio_ffmpeg.read_frames(str(video))
        meta = next(reader)
        for i, raw in enumerate(reader):
            if i == index:
                size = (int(meta["size"][0]), int(meta["size"][1]))
                with atomic_output(png) as tmp:
                    Image.frombytes("RGB", size, raw).save(tmp, format="PNG", optimize=True)
                reader.close()
                return size
    except (OSError, RuntimeError, StopIteration) as exc:
        raise SnncError(f"cannot read the video: {exc}", video) from None
    raise SnncError(f"video has no frame {index}", video)
