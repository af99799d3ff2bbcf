"""Synthetic MVSEC recordings with known depth, written in the real HDF5 layout.

:func:`synthesize` renders a scene of textured planar surfaces (see
:mod:`snnc.data.synth_scene`) moving in front of a rectified stereo pair with
MVSEC's ``f*B``, through two raw cameras with a small radial distortion
(:mod:`snnc.data.synth_lens`), simulates DVS events from log-intensity
threshold crossings (:mod:`snnc.data.synth_dvs`) and writes
``<name>_data.hdf5`` (events, APS frames, rectification maps) and
``<name>_gt.hdf5`` (rectified and raw depth) exactly as described in
``spec/mvsec.md``. Output is deterministic for a seed and appears atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from snnc.data import layout
from snnc.data.pairs import SET_ID_ATTR
from snnc.data.synth_config import LensSpec, SceneConfig
from snnc.data.synth_dvs import EventChunk, dvs_init, dvs_step, make_dvs_params, noise_events
from snnc.data.synth_lens import rectification_maps
from snnc.data.synth_scene import PixelGrid, Scene, make_scene, pixel_grid, render
from snnc.errors import SnncError
from snnc.fileio import atomic_output_set
from snnc.h5write import H5Output

__all__ = ["LensSpec", "SceneConfig", "synthesize"]

#: APS gain: a white (reflectance 1) surface reads this many digital numbers.
_APS_WHITE_DN: float = 230.0
#: APS read noise (digital numbers, Gaussian).
_APS_NOISE_DN: float = 1.5
#: Simulation keeps running this long past the last depth frame.
_TAIL_S: float = 0.01


@dataclasses.dataclass(frozen=True)
class _Timeline:
    """Relative times (integer microseconds from the recording start)."""

    step_us: np.ndarray  # simulation substep ends, ascending, first one > 0
    depth_us: np.ndarray  # depth frames
    aps_us: np.ndarray  # APS frames
    end_us: int


def synthesize(
    data_path: str | Path,
    *,
    frames: int = 40,
    seed: int = 0,
    height: int = layout.HEIGHT,
    width: int = layout.WIDTH,
    force: bool = False,
    progress: bool = True,
    write_rect_txt: bool = False,
    config: SceneConfig | None = None,
) -> tuple[Path, Path]:
    """Write a synthetic MVSEC sequence; return ``(data_path, gt_path)``.

    ``frames`` depth frames are produced at 20 Hz, the first one ``config.lead_s``
    after the recording starts (so each has a full 50 ms event window behind it).
    ``data_path`` must end in ``_data.hdf5`` (or ``_data.h5``); the gt file is
    placed beside it. Existing outputs are refused unless ``force``. With
    ``write_rect_txt`` the rectification maps are also written as
    ``{camera}_{axis}_map.txt`` beside the data file, like real MVSEC.
    Raises :class:`SnncError` on bad arguments or unwritable outputs.
    """
    data_path = Path(data_path)
    cfg = config if config is not None else SceneConfig()
    _check_args(data_path, frames, seed, height, width, cfg)
    gt_path = layout.gt_path_for(data_path)
    txt_paths = (
        {(cam, axis): layout.rect_map_txt_path(data_path, cam, axis) for cam in layout.CAMERAS for axis in ("x", "y")}
        if write_rect_txt
        else {}
    )
    outputs = [data_path, gt_path, *txt_paths.values()]
    for out in outputs:
        if out.is_dir():
            raise SnncError("output path is a directory", out)
        if out.exists() and not force:
            raise SnncError("output file exists; pass force=True (--force) to overwrite it", out)
    try:
        data_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SnncError(f"cannot create the output folder: {exc.strerror}", data_path.parent) from exc

    seeds = np.random.SeedSequence(seed).spawn(5)
    scene_rng, dvs_rng_l, dvs_rng_r, noise_rng, aps_rng = (np.random.default_rng(s) for s in seeds)
    scene = make_scene(cfg, height, width, scene_rng)
    maps = {
        cam: rectification_maps(lens, height, width)
        for cam, lens in zip(layout.CAMERAS, (cfg.lens_left, cfg.lens_right), strict=False)
    }
    raw_grids = [pixel_grid(scene, *maps[cam]) for cam in layout.CAMERAS]
    rect_grid = pixel_grid(scene)
    timeline = _make_timeline(cfg, frames)

    total = timeline.step_us.size + timeline.aps_us.size + timeline.depth_us.size
    with tqdm(total=total, desc=f"synth {data_path.name}", unit="step", disable=not progress) as bar:
        events = _simulate_events(scene, raw_grids, timeline, cfg, (dvs_rng_l, dvs_rng_r), noise_rng, bar)
        images = _render_aps(scene, raw_grids, timeline, aps_rng, bar)
        depth_rect, depth_raw = _render_depth(scene, rect_grid, raw_grids[0], timeline, bar)

    t0 = float(cfg.t0)
    data: dict[str, np.ndarray] = {}
    for i, cam in enumerate(layout.CAMERAS):
        ev = events[i]
        data[layout.events_key(cam)] = ev
        aps_t = t0 + timeline.aps_us * 1e-6
        data[layout.image_key(cam)] = images[i]
        data[layout.image_ts_key(cam)] = aps_t
        data[layout.image_event_inds_key(cam)] = np.searchsorted(ev[:, layout.EV_T], aps_t).astype(np.int64)
        data[layout.rect_map_key(cam, "x")] = maps[cam][0]
        data[layout.rect_map_key(cam, "y")] = maps[cam][1]
    depth_t = t0 + timeline.depth_us * 1e-6
    gt = {
        layout.DEPTH_KEY: depth_rect,
        layout.DEPTH_TS_KEY: depth_t,
        layout.DEPTH_RAW_KEY: depth_raw,
        layout.DEPTH_RAW_TS_KEY: depth_t.copy(),
    }
    attrs = _attributes(scene, cfg, seed, frames)
    _write_atomically(data_path, gt_path, txt_paths, data, gt, maps, attrs)
    return data_path, gt_path


def _check_args(data_path: Path, frames: int, seed: int, height: int, width: int, cfg: SceneConfig) -> None:
    """Raise :class:`SnncError` for arguments a user can get wrong."""
    for name, value in (("frames", frames), ("seed", seed), ("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise SnncError(f"{name} must be an integer, got {value!r}", data_path)
    if frames < 1:
        raise SnncError(f"frames must be >= 1, got {frames}", data_path)
    if height < 16 or width < 16:
        raise SnncError(f"height and width must be >= 16, got {height}x{width}", data_path)
    if seed < 0:
        raise SnncError(f"seed must be >= 0, got {seed}", data_path)
    if not isinstance(cfg, SceneConfig):
        raise SnncError(f"config must be a SceneConfig, got {type(cfg).__name__}", data_path)
    cfg.validate()


def _make_timeline(cfg: SceneConfig, frames: int) -> _Timeline:
    """Substep, depth and APS times in integer microseconds from the start."""
    step = max(1, round(cfg.substep_s * 1e6))
    depth_us = np.array([round((cfg.lead_s + k / cfg.depth_rate_hz) * 1e6) for k in range(frames)], dtype=np.int64)
    end_us = int(depth_us[-1] + round(_TAIL_S * 1e6))
    n_steps = math.ceil(end_us / step)
    end_us = n_steps * step
    step_us = np.arange(1, n_steps + 1, dtype=np.int64) * step
    aps_period = 1.0 / cfg.aps_rate_hz
    n_aps = math.floor((end_us * 1e-6 - 0.5 * aps_period) / aps_period) + 1
    aps_us = np.array([round((0.5 + k) * aps_period * 1e6) for k in range(max(n_aps, 1))], dtype=np.int64)
    return _Timeline(step_us, depth_us, aps_us, end_us)


def _simulate_events(
    scene: Scene,
    grids: list[PixelGrid],
    timeline: _Timeline,
    cfg: SceneConfig,
    dvs_rngs: tuple[np.random.Generator, np.random.Generator],
    noise_rng: np.random.Generator,
    bar: tqdm,
) -> list[np.ndarray]:
    """Events (float64 (N, 4): x, y, t, p; sorted by t) of both cameras."""
    n_pix = scene.height * scene.width
    params, states = [], []
    for cam, rng in enumerate(dvs_rngs):
        par = make_dvs_params(n_pix, cfg.contrast_threshold, cfg.threshold_sigma, rng)
        log0, _ = render(scene, cam, 0.0, grids[cam])
        params.append(par)
        states.append(dvs_init(log0, 0, par, rng))
    chunks: list[list[EventChunk]] = [[], []]
    for t_us in timeline.step_us:
        t = int(t_us) * 1e-6
        for cam in (0, 1):
            log_img, _ = render(scene, cam, t, grids[cam])
            evs, states[cam] = dvs_step(log_img, int(t_us), states[cam], params[cam])
            if evs[0].size:
                chunks[cam].append(evs)
        bar.update(1)
    out = []
    for cam in (0, 1):
        chunks[cam].append(noise_events(n_pix, cfg.noise_rate_hz, 0, timeline.end_us, noise_rng))
        idx = np.concatenate([c[0] for c in chunks[cam]])
        t_us = np.concatenate([c[1] for c in chunks[cam]])
        pol = np.concatenate([c[2] for c in chunks[cam]])
        order = np.argsort(t_us, kind="stable")
        idx, t_us, pol = idx[order], t_us[order], pol[order]
        ev = np.empty((idx.size, 4), dtype=np.float64)
        ev[:, layout.EV_X] = idx % scene.width
        ev[:, layout.EV_Y] = idx // scene.width
        ev[:, layout.EV_T] = cfg.t0 + t_us * 1e-6
        ev[:, layout.EV_P] = pol
        out.append(ev)
    return out


def _render_aps(
    scene: Scene, grids: list[PixelGrid], timeline: _Timeline, rng: np.random.Generator, bar: tqdm
) -> list[np.ndarray]:
    """APS frames (uint8 (F, H, W)) of both raw cameras."""
    out = [np.empty((timeline.aps_us.size, scene.height, scene.width), dtype=np.uint8) for _ in (0, 1)]
    for k, t_us in enumerate(timeline.aps_us):
        for cam in (0, 1):
            log_img, _ = render(scene, cam, int(t_us) * 1e-6, grids[cam])
            dn = _APS_WHITE_DN * np.exp(log_img.astype(np.float64))
            dn += rng.normal(0.0, _APS_NOISE_DN, dn.shape)
            out[cam][k] = np.clip(np.rint(dn), 0, 255).astype(np.uint8)
        bar.update(1)
    return out


def _render_depth(
    scene: Scene, rect_grid: PixelGrid, raw_grid: PixelGrid, timeline: _Timeline, bar: tqdm
) -> tuple[np.ndarray, np.ndarray]:
    """Left depth (float32 (D, H, W), NaN where no surface): rectified frame and raw frame."""
    shape = (timeline.depth_us.size, scene.height, scene.width)
    rect, raw = np.empty(shape, dtype=np.float32), np.empty(shape, dtype=np.float32)
    for k, t_us in enumerate(timeline.depth_us):
        t = int(t_us) * 1e-6
        rect[k] = render(scene, 0, t, rect_grid, want_depth=True)[1]
        raw[k] = render(scene, 0, t, raw_grid, want_depth=True)[1]
        bar.update(1)
    return rect, raw


def _attributes(scene: Scene, cfg: SceneConfig, seed: int, frames: int) -> dict[str, object]:
    """Root attributes describing how the file was made."""
    return {
        "snnc_synthetic": True,
        "seed": int(seed),
        "frames": int(frames),
        "fB": float(cfg.fb),
        "focal_px": float(scene.focal),
        "baseline_m": float(scene.baseline),
        "principal_point": np.array([scene.cx, scene.cy], dtype=np.float64),
        "config_json": json.dumps(dataclasses.asdict(cfg), sort_keys=True),
    }


def _write_atomically(
    data_path: Path,
    gt_path: Path,
    txt_paths: dict[tuple[str, str], Path],
    data: dict[str, np.ndarray],
    gt: dict[str, np.ndarray],
    maps: dict[str, tuple[np.ndarray, np.ndarray]],
    attrs: dict[str, object],
) -> None:
    """Write every output to a temporary file in its folder, then rename them as a set (data file last).

    Both HDF5 files carry the same ``snnc_set_id`` root attribute (a hash of
    the settings and array shapes, so the same seed still gives the same files),
    so a reader can tell a ``_gt.hdf5`` of another synth run beside the data
    file (a stale or partial pair) from its own. A full or read-only disk gives one
    :class:`SnncError` naming the file (HDF5 goes through :class:`~snnc.h5write.H5Output`).
    """
    ident = repr(
        (
            sorted((k, str(v)) for k, v in attrs.items()),
            sorted((k, a.shape, str(a.dtype)) for part in (data, gt) for k, a in part.items()),
        )
    )
    set_attrs = dict(attrs, **{SET_ID_ATTR: hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]})
    txt = list(txt_paths.items())
    with atomic_output_set([data_path, gt_path, *(final for _, final in txt)]) as temps:
        for tmp, content in ((temps[1], gt), (temps[0], data)):
            with H5Output(tmp) as out:
                for key, arr in content.items():
                    out.file.create_dataset(key, data=arr)
                    out.check()
                for key, value in set_attrs.items():
                    out.file.attrs[key] = value
        for ((cam, axis), _), tmp in zip(txt, temps[2:], strict=False):
            np.savetxt(tmp, maps[cam][0 if axis == "x" else 1], fmt="%.9g")  # %.9g round-trips float32
