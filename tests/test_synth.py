"""Tests of the synthetic MVSEC generator (snnc.data.synth) on small recordings."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.ndimage import binary_erosion, gaussian_filter, maximum_filter, minimum_filter, minimum_filter1d

from snnc.data import layout
from snnc.data.synth import SceneConfig, synthesize
from snnc.data.synth_dvs import DvsParams, dvs_step, noise_events
from snnc.data.synth_lens import rectification_maps, rectify_points
from snnc.data.synth_scene import make_scene, pixel_grid, render
from snnc.errors import SnncError

H, W, FRAMES = 96, 128, 10
CFG = SceneConfig()


def _read_all(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.fixture(scope="module")
def seq(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("synth")
    data_path, gt_path = synthesize(
        folder / "scene_data.hdf5", frames=FRAMES, seed=0, height=H, width=W, progress=False, write_rect_txt=True
    )
    return data_path, gt_path, _read_all(data_path), _read_all(gt_path)


# ------------------------------------------------------------------------------ layout


def test_layout_dtypes_and_shapes(seq) -> None:
    data_path, gt_path, data, gt = seq
    assert gt_path == data_path.with_name("scene_gt.hdf5")
    for cam in layout.CAMERAS:
        ev = data[layout.events_key(cam)]
        assert ev.dtype == np.float64 and ev.ndim == 2 and ev.shape[1] == 4 and ev.shape[0] > 1000
        img = data[layout.image_key(cam)]
        ts = data[layout.image_ts_key(cam)]
        inds = data[layout.image_event_inds_key(cam)]
        assert img.dtype == np.uint8 and img.shape[1:] == (H, W)
        assert ts.dtype == np.float64 and inds.dtype == np.int64
        assert ts.shape == inds.shape == (img.shape[0],)
        assert np.allclose(np.diff(ts), 1 / 30, atol=1e-5)
        assert np.array_equal(inds, np.searchsorted(ev[:, layout.EV_T], ts))
        assert img.std() > 5  # textured frames, not a constant
        for axis in ("x", "y"):
            m = data[layout.rect_map_key(cam, axis)]
            assert m.dtype == np.float32 and m.shape == (H, W)
    depth = gt[layout.DEPTH_KEY]
    depth_ts = gt[layout.DEPTH_TS_KEY]
    assert depth.dtype == np.float32 and depth.shape == (FRAMES, H, W)
    assert depth_ts.dtype == np.float64 and depth_ts.shape == (FRAMES,)
    assert np.allclose(np.diff(depth_ts), 0.05, atol=1e-6)
    assert gt[layout.DEPTH_RAW_KEY].shape == depth.shape
    assert gt[layout.DEPTH_RAW_KEY].dtype == np.float32
    assert np.array_equal(gt[layout.DEPTH_RAW_TS_KEY], depth_ts)


def test_events_sorted_in_range_absolute(seq) -> None:
    _, _, data, gt = seq
    depth_ts = gt[layout.DEPTH_TS_KEY]
    for cam in layout.CAMERAS:
        ev = data[layout.events_key(cam)]
        x, y, t, p = ev.T
        assert np.all(np.diff(t) >= 0)
        assert set(np.unique(p).tolist()) == {-1.0, 1.0}
        assert np.all(x == np.round(x)) and np.all(y == np.round(y))
        assert x.min() >= 0 and x.max() <= W - 1 and y.min() >= 0 and y.max() <= H - 1
        assert 1.4e9 < t[0] < 1.6e9
        # microsecond clock (float64 resolves ~0.24 us at 1.5e9 s), and a full 50 ms
        # event window before the first depth frame
        us = np.round((t - CFG.t0) * 1e6)
        assert np.array_equal(t, CFG.t0 + us * 1e-6)
        assert np.unique(us % 1000).size > 100  # sub-millisecond timestamps
        assert t[0] <= depth_ts[0] - 0.05
        assert t[-1] >= depth_ts[-1]
        # both polarities in useful numbers
        assert 0.2 < np.mean(p > 0) < 0.8


def test_depth_range_and_holes(seq) -> None:
    _, _, _data, gt = seq
    depth = gt[layout.DEPTH_KEY]
    finite = np.isfinite(depth)
    assert 0.05 < finite.mean() < 0.98  # surfaces and empty regions both present
    assert depth[finite].min() >= CFG.z_near - 1e-4 and depth[finite].max() <= CFG.z_far + 1e-4
    scaled = np.round(layout.DISPARITY_SCALE * CFG.fb / depth[finite])
    assert scaled.min() >= 8 and scaled.max() <= 37
    assert not np.all(np.isinf(depth))
    # the scene moves: depth maps change over time
    assert not np.array_equal(np.isfinite(depth[0]), np.isfinite(depth[-1])) or not np.allclose(
        np.nan_to_num(depth[0]), np.nan_to_num(depth[-1])
    )


def _rectified_event_image(ev: np.ndarray, x_map: np.ndarray, y_map: np.ndarray) -> np.ndarray:
    """Signed event image in rectified coordinates, bilinearly splatted."""
    x = ev[:, layout.EV_X].astype(np.int64)
    y = ev[:, layout.EV_Y].astype(np.int64)
    xr = x_map[y, x].astype(np.float64)
    yr = y_map[y, x].astype(np.float64)
    x0, y0 = np.floor(xr).astype(np.int64), np.floor(yr).astype(np.int64)
    fx, fy = xr - x0, yr - y0
    img = np.zeros((H + 2, W + 2))
    pol = ev[:, layout.EV_P]
    for dx, dy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(img, (np.clip(y0 + dy, -1, H) + 1, np.clip(x0 + dx, -1, W) + 1), wt * pol)
    return img[1:-1, 1:-1]


def _window(ev: np.ndarray, t_end: float, length: float) -> np.ndarray:
    a, b = np.searchsorted(ev[:, layout.EV_T], [t_end - length, t_end], side="right")
    return ev[a:b]


def _shift_by_correlation(
    left: np.ndarray, right: np.ndarray, mask: np.ndarray, max_shift: int = 9
) -> tuple[float, float]:
    """Horizontal shift s (px) maximising the NCC of left(x, y) and right(x - s, y) over mask, and that NCC."""
    ys, xs = np.nonzero(mask)
    scores = []
    for s in range(max_shift + 1):
        ok = xs - s >= 0
        a = left[ys[ok], xs[ok]]
        b = right[ys[ok], xs[ok] - s]
        a, b = a - a.mean(), b - b.mean()
        scores.append(float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-12)))
    sc = np.array(scores)
    i = int(np.argmax(sc))
    if 0 < i < max_shift:
        den = sc[i - 1] - 2 * sc[i] + sc[i + 1]
        return i + 0.5 * (sc[i - 1] - sc[i + 1]) / den, float(sc[i])
    return float(i), float(sc[i])


def test_disparity_from_events_matches_ground_truth(seq) -> None:
    """Left/right events of a fronto-parallel surface are shifted by exactly fB / depth."""
    _, _, data, gt = seq
    depth_all, depth_ts = gt[layout.DEPTH_KEY], gt[layout.DEPTH_TS_KEY]
    maps = {c: (data[layout.rect_map_key(c, "x")], data[layout.rect_map_key(c, "y")]) for c in layout.CAMERAS}
    errors, disparities = [], []
    for k in range(FRAMES):
        depth = depth_all[k]
        img = {
            c: gaussian_filter(
                _rectified_event_image(_window(data[layout.events_key(c)], depth_ts[k], 0.05), *maps[c]), 0.7
            )
            for c in layout.CAMERAS
        }
        # the nearest depth in [x, x + 8] of the row: a nearer surface there may hide the point
        # from the right camera; the last columns may be hidden by one just outside the image
        nearer = minimum_filter1d(np.where(np.isfinite(depth), depth, np.inf), 9, axis=1, origin=-4, mode="nearest")
        nearer[:, W - 9 :] = 0
        values, counts = np.unique(depth[np.isfinite(depth)], return_counts=True)
        for z in values[counts >= 300]:  # fronto-parallel surfaces have one exact depth
            mask = binary_erosion(depth == z, iterations=3) & (nearer >= z)
            if mask.sum() < 300:
                continue
            est, peak = _shift_by_correlation(img["left"], img["right"], mask)
            if peak < 0.5:  # too little texture in the window for a confident match
                continue
            errors.append(est - CFG.fb / float(z))
            disparities.append(CFG.fb / float(z))
    errors = np.array(errors)
    assert errors.size >= 5
    assert max(disparities) - min(disparities) > 0.5  # several depths were checked
    assert np.median(np.abs(errors)) < 0.15
    assert np.abs(errors).max() < 0.4
    assert abs(errors.mean()) < 0.1


def test_depth_window_has_events_on_texture_only(seq) -> None:
    _, _, data, gt = seq
    depth_all, depth_ts = gt[layout.DEPTH_KEY], gt[layout.DEPTH_TS_KEY]
    x_map, y_map = data[layout.rect_map_key("left", "x")], data[layout.rect_map_key("left", "y")]
    for k in (0, FRAMES // 2, FRAMES - 1):
        ev = _window(data[layout.events_key("left")], depth_ts[k], 0.05)
        x, y = ev[:, 0].astype(int), ev[:, 1].astype(int)
        xr = np.clip(np.rint(x_map[y, x]), 0, W - 1).astype(int)
        yr = np.clip(np.rint(y_map[y, x]), 0, H - 1).astype(int)
        counts = np.zeros((H, W))
        np.add.at(counts, (yr, xr), 1)
        surface = binary_erosion(np.isfinite(depth_all[k]), iterations=4)
        empty = binary_erosion(~np.isfinite(depth_all[k]), iterations=4)  # surfaces move a few px in 50 ms
        assert surface.sum() > 100 and empty.sum() > 50
        assert counts[surface].mean() > 0.15
        # background noise only (0.1 Hz) plus a little at moving borders
        assert counts[empty].mean() < min(0.03, 0.1 * counts[surface].mean())
        # texture everywhere: most surface pixels have an event nearby
        near = gaussian_filter(counts, 1.0) > 0.05
        assert near[surface].mean() > 0.7


# ------------------------------------------------------------------------------ rectification


def test_maps_embedded_txt_and_lens_agree(seq) -> None:
    data_path, _, data, _ = seq
    ys, xs = np.mgrid[0:H, 0:W]
    for cam, lens in zip(layout.CAMERAS, (CFG.lens_left, CFG.lens_right), strict=False):
        x_map, y_map = data[layout.rect_map_key(cam, "x")], data[layout.rect_map_key(cam, "y")]
        xr, yr = rectify_points(lens, xs, ys, H, W)
        assert np.allclose(x_map, xr, atol=1e-4) and np.allclose(y_map, yr, atol=1e-4)
        assert np.array_equal(np.stack(rectification_maps(lens, H, W)), np.stack([x_map, y_map]))
        disp = np.hypot(x_map - xs, y_map - ys)
        assert 0.5 < disp.max() < 3.0  # a small but real distortion, largest at the corners
        corner = disp[[0, 0, -1, -1], [0, -1, 0, -1]].min()
        assert corner > disp[H // 2 - 2 : H // 2 + 2, W // 2 - 2 : W // 2 + 2].max()
        for axis, arr in (("x", x_map), ("y", y_map)):
            txt = np.loadtxt(layout.rect_map_txt_path(data_path, cam, axis), dtype=np.float64)
            assert txt.shape == (H, W)
            assert np.array_equal(txt.astype(np.float32), arr)
    assert not np.allclose(data[layout.rect_map_key("left", "x")], data[layout.rect_map_key("right", "x")])


def test_raw_depth_is_rect_depth_seen_through_the_map(seq) -> None:
    _, _, data, gt = seq
    x_map, y_map = data[layout.rect_map_key("left", "x")], data[layout.rect_map_key("left", "y")]
    xi = np.rint(x_map).astype(int)
    yi = np.rint(y_map).astype(int)
    inside = (xi >= 1) & (xi < W - 1) & (yi >= 1) & (yi < H - 1)
    checked = 0
    for k in (0, FRAMES - 1):
        rect, raw = gt[layout.DEPTH_KEY][k], gt[layout.DEPTH_RAW_KEY][k]
        filled = np.where(np.isfinite(rect), rect, -1.0)
        lo, hi = minimum_filter(filled, 3), maximum_filter(filled, 3)
        flat = (lo > 0) & (hi - lo <= 0.01 * hi)  # rect depth locally smooth around the map position
        sel = inside & flat[np.clip(yi, 0, H - 1), np.clip(xi, 0, W - 1)]
        expected = rect[yi[sel], xi[sel]]
        assert np.allclose(raw[sel], expected, rtol=0.01)
        checked += int(sel.sum())
        # where the rectified neighbourhood is empty, raw depth is NaN too
        empty = (hi < 0)[np.clip(yi, 0, H - 1), np.clip(xi, 0, W - 1)] & inside
        assert np.all(np.isnan(raw[empty]))
    assert checked > 0.2 * H * W


# ------------------------------------------------------------------------------ files and arguments


def test_deterministic_per_seed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    size = {"frames": 4, "height": 48, "width": 64}  # every key of a recording, at a quarter of the module's size
    d1, g1 = synthesize(tmp_path / "first_data.hdf5", seed=0, progress=False, **size)
    data, gt = _read_all(d1), _read_all(g1)
    d2, g2 = synthesize(tmp_path / "again_data.hdf5", seed=0, progress=True, **size)
    assert "synth" in capsys.readouterr().err  # the progress bar was shown
    for ref, path in ((data, d2), (gt, g2)):
        other = _read_all(path)
        assert sorted(other) == sorted(k for k in ref)
        for key, arr in ref.items():
            assert other[key].dtype == arr.dtype and other[key].tobytes() == arr.tobytes(), key
    d3, _ = synthesize(tmp_path / "other_data.hdf5", seed=1, progress=False, **size)
    other = _read_all(d3)
    ev0, ev1 = data[layout.events_key("left")], other[layout.events_key("left")]
    assert ev0.shape != ev1.shape or not np.array_equal(ev0, ev1)
    assert not np.array_equal(data[layout.image_key("left")], other[layout.image_key("left")])
    assert not list(tmp_path.glob("*.partial"))  # no temporary files left behind


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    small = {"frames": 1, "seed": 3, "height": 16, "width": 24, "progress": False}
    data_path, gt_path = synthesize(tmp_path / "a_data.hdf5", **small)
    before = data_path.read_bytes()
    with pytest.raises(SnncError, match=r"a_data.hdf5"):
        synthesize(data_path, **small)
    gt_path.unlink()
    other = tmp_path / "b_data.hdf5"
    (tmp_path / "b_gt.hdf5").write_bytes(b"precious")
    with pytest.raises(SnncError, match=r"b_gt.hdf5"):
        synthesize(other, **small)
    assert (tmp_path / "b_gt.hdf5").read_bytes() == b"precious" and not other.exists()
    synthesize(data_path, force=True, **small)
    assert gt_path.exists() and len(data_path.read_bytes()) > 0
    assert before  # the first file was complete
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"frames": 0}, "frames"),
        ({"height": 8}, "height"),
        ({"width": 15}, "width"),
        ({"seed": -1}, "seed"),
        ({"config": SceneConfig(z_near=5.0, z_far=4.0)}, "z_near"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = {"frames": 1, "height": 16, "width": 16, "progress": False}
    args.update(kwargs)
    with pytest.raises(SnncError, match=match):
        synthesize(tmp_path / "x_data.hdf5", **args)
    assert not list(tmp_path.iterdir())


def test_data_file_name_must_end_in_data(tmp_path: Path) -> None:
    with pytest.raises(SnncError, match="_data"):
        synthesize(tmp_path / "x.hdf5", frames=1, height=16, width=16, progress=False)


# ------------------------------------------------------------------------------ pixel model


def test_dvs_step_counts_and_times_crossings() -> None:
    c = np.full(3, 0.2, dtype=np.float32)
    params = DvsParams(c, c.copy())
    log_prev = np.zeros(3, dtype=np.float32)
    ref = np.array([0.0, 0.1, 0.0], dtype=np.float32)
    # pixel 0 rises by 0.5 (2 events), pixel 1 falls by 0.35 from ref 0.1 (2 events), pixel 2 flat
    log_next = np.array([0.5, -0.35, 0.0], dtype=np.float32)
    (idx, t_us, pol), (lp, new_ref, t) = dvs_step(log_next, 1000, (log_prev, ref, 0), params)
    order = np.lexsort((t_us, idx))
    assert idx[order].tolist() == [0, 0, 1, 1]
    assert pol[order].tolist() == [1, 1, -1, -1]
    # crossings of 0.2 and 0.4 on a 0 -> 0.5 ramp; of -0.1 and -0.3 on a 0 -> -0.35 ramp
    assert t_us[order].tolist() == [400, 800, round(1000 * 0.1 / 0.35), round(1000 * 0.3 / 0.35)]
    assert np.allclose(new_ref, [0.4, -0.3, 0.0]) and t == 1000 and np.array_equal(lp, log_next)
    # state is not mutated in place
    assert ref.tolist() == pytest.approx([0.0, 0.1, 0.0])


def test_noise_events_rate() -> None:
    idx, t_us, pol = noise_events(10_000, 2.0, 0, 1_000_000, np.random.default_rng(0))
    assert 19_000 < idx.size < 21_000
    assert idx.min() >= 0 and idx.max() < 10_000 and t_us.min() >= 0 and t_us.max() <= 1_000_000
    assert set(np.unique(pol).tolist()) == {-1, 1}


# ------------------------------------------------------------------------------ scene


@pytest.mark.parametrize("config", [CFG, SceneConfig(n_surfaces=12, max_slant_deg=55, angular_width=(0.8, 1.2))])
def test_scene_depths_stay_in_range(config: SceneConfig) -> None:
    scene = make_scene(config, 32, 48, np.random.default_rng(5))
    assert len(scene.surfaces) == config.n_surfaces
    for surf in scene.surfaces:
        lo, hi = surf.depth_bounds()
        assert config.z_near <= lo <= hi <= config.z_far
    # rendered depth at many times obeys the same bounds
    grid = pixel_grid(scene)
    for t in np.linspace(0.0, 10.0, 7):
        _, depth = render(scene, 0, float(t), grid, want_depth=True)
        finite = depth[np.isfinite(depth)]
        assert finite.size == 0 or (finite.min() >= config.z_near - 1e-3 and finite.max() <= config.z_far + 1e-3)


def test_right_camera_sees_left_image_shifted_by_disparity() -> None:
    """Rendering geometry: right(x - fB / z, y) == left(x, y) on a fronto-parallel surface."""
    scene = make_scene(SceneConfig(slanted_fraction=0.0), 64, 96, np.random.default_rng(2))
    grid = pixel_grid(scene)
    left, depth = render(scene, 0, 0.3, grid, want_depth=True)
    values, counts = np.unique(depth[np.isfinite(depth)], return_counts=True)
    z = float(values[np.argmax(counts)])
    ys, xs = np.nonzero(binary_erosion(depth == z, iterations=8))
    d = scene.baseline * scene.focal / z
    shifted = pixel_grid(
        scene, (np.mgrid[0:64, 0:96][1] - d).astype(np.float32), np.mgrid[0:64, 0:96][0].astype(np.float32)
    )
    right, _ = render(scene, 1, 0.3, shifted)
    assert np.allclose(right[ys, xs], left[ys, xs], atol=1e-4)
    # a one-pixel error would show: the texture varies from pixel to pixel
    assert not np.allclose(right[ys, xs], left[ys, xs - 1], atol=1e-2)
