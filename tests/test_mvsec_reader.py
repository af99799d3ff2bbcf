"""MVSECRecording: validation errors, windowed event reads, rectification maps, summarize."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from snnc.data import layout, mvsec
from snnc.data.h5search import SortedColumn
from snnc.data.info import summarize
from snnc.data.mvsec import MVSECRecording
from snnc.errors import SnncError

from _mvsec_h5 import T0, random_events, write_data, write_gt, write_recording

H, W = 20, 30


def _events(n: int = 200, seed: int = 0, **kw) -> np.ndarray:
    return random_events(np.random.default_rng(seed), n, height=H, width=W, **kw)


def _both(ev: np.ndarray):
    return {"left": ev, "right": ev.copy()}


def _raises(path: Path, *fragments: str, **kwargs) -> SnncError:
    """Open and expect a one-line SnncError naming ``path`` and each fragment."""
    data = kwargs.pop("data", path)
    with pytest.raises(SnncError) as info:
        MVSECRecording(data, **kwargs).close()
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    return info.value


# -- data file errors ---------------------------------------------------------
def test_missing_file(tmp_path):
    _raises(tmp_path / "nope_data.hdf5", "not found")


def test_not_hdf5(tmp_path):
    p = tmp_path / "text_data.hdf5"
    p.write_text("x y t p\n1 2 3 4\n")
    _raises(p, "not an HDF5 file")


def test_truncated(tmp_path):
    p = write_recording(tmp_path, n=5000, height=H, width=W, gt=False)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    _raises(p, "corrupt or truncated")


@pytest.mark.parametrize("missing", ["left", "right"])
def test_missing_camera_events(tmp_path, missing):
    ev = _events()
    events = _both(ev)
    events[missing] = None
    p = write_data(tmp_path / "a_data.hdf5", events)
    _raises(p, f"davis/{missing}/events", "missing")


def test_events_wrong_columns(tmp_path):
    ev = np.concatenate([_events(), np.zeros((200, 1))], axis=1)
    p = write_data(tmp_path / "a_data.hdf5", _both(ev))
    _raises(p, "has 5 columns, expected 4 (x, y, t, p)")


def test_events_not_2d(tmp_path):
    p = write_data(tmp_path / "a_data.hdf5", _both(_events().ravel()))
    _raises(p, "expected (N, 4)")


def test_events_non_numeric(tmp_path):
    ev = np.array([[b"1", b"2", b"3", b"4"]] * 3)
    p = write_data(tmp_path / "a_data.hdf5", _both(ev))
    _raises(p, "non-numeric dtype")


def test_integer_events_refused_by_sanity_but_readable(tmp_path):
    ev = np.array([[1, 2, 10, 1], [3, 4, 20, -1], [5, 6, 30, 1]], dtype=np.int64)
    p = write_data(tmp_path / "a_data.hdf5", _both(ev))
    _raises(p, "davis/left/events is int64", "integer timestamps")  # issue 14: integer microseconds
    with MVSECRecording(p, sanity=False) as rec:
        got = rec.events_between("left", 10, 30)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, ev[1:].astype(np.float64))


def test_unsorted_events_on_open(tmp_path):
    ev = _events(500)
    ev[[100, 101]] = ev[[101, 100]]
    ev[100, 2] += 1e-3  # make sure the swap is a strict decrease
    p = write_data(tmp_path / "a_data.hdf5", {"left": _events(500), "right": ev})
    _raises(p, "davis/right/events", "not sorted", "row 101")


def test_nonfinite_timestamp_on_open(tmp_path):
    ev = _events(500)
    ev[42, 2] = np.nan
    p = write_data(tmp_path / "a_data.hdf5", {"left": ev, "right": _events(500)})
    _raises(p, "davis/left/events", "non-finite timestamp", "row 42")


def test_unsorted_inside_window_caught_by_read(tmp_path, monkeypatch):
    # Make the open-time check sampled and coarse so it cannot see the defect.
    monkeypatch.setattr(mvsec, "FULL_SORT_CHECK_ROWS", 64)
    monkeypatch.setattr(mvsec, "SORT_PROBE_BLOCKS", 2)
    monkeypatch.setattr(mvsec, "SORT_PROBE_ROWS", 8)
    monkeypatch.setattr(mvsec, "INDEX_SAMPLES", 8)
    ev = _events(10000, duration=1.0)
    i = 5003
    ev[i, 2], ev[i + 1, 2] = ev[i + 1, 2] + 1e-4, ev[i, 2]
    p = write_data(tmp_path / "a_data.hdf5", _both(ev))
    with MVSECRecording(p) as rec:
        ok = rec.events_between("left", T0, T0 + 0.3)  # far from the defect: fine
        assert len(ok) > 0
        with pytest.raises(SnncError) as info:
            rec.events_between("right", ev[i - 10, 2], ev[i + 10, 2])
    msg = str(info.value)
    assert str(p) in msg and "right camera" in msg and "not sorted" in msg


# -- gt file errors -------------------------------------------------------------
def _data(tmp_path: Path, image_shape=(H, W)) -> Path:
    return write_data(tmp_path / "s_data.hdf5", _both(_events()), image_shape=image_shape)


def test_gt_without_depth(tmp_path):
    _data(tmp_path)
    gt = write_gt(tmp_path / "s_gt.hdf5", None, T0 + np.arange(3.0))
    _raises(gt, "no depth dataset", data=tmp_path / "s_data.hdf5")


def test_gt_without_depth_ts(tmp_path):
    _data(tmp_path)
    gt = write_gt(tmp_path / "s_gt.hdf5", np.ones((3, H, W), np.float32), None)
    _raises(gt, "no depth timestamps", data=tmp_path / "s_data.hdf5")


def test_gt_wrong_resolution(tmp_path):
    _data(tmp_path)
    gt = write_gt(tmp_path / "s_gt.hdf5", np.ones((3, H + 1, W), np.float32), T0 + np.arange(3.0))
    _raises(gt, f"depth images are {H + 1}x{W}", f"are {H}x{W}", data=tmp_path / "s_data.hdf5")


def test_gt_ts_length_mismatch(tmp_path):
    _data(tmp_path)
    gt = write_gt(tmp_path / "s_gt.hdf5", np.ones((3, H, W), np.float32), T0 + np.arange(4.0))
    _raises(gt, "4 timestamps", "3 depth images", data=tmp_path / "s_data.hdf5")


def test_gt_ts_not_increasing(tmp_path):
    _data(tmp_path)
    gt = write_gt(tmp_path / "s_gt.hdf5", np.ones((3, H, W), np.float32), T0 + np.array([0.0, 2.0, 1.0]))
    _raises(gt, "depth timestamps not increasing", "[2]", data=tmp_path / "s_data.hdf5")


def test_gt_not_hdf5(tmp_path):
    _data(tmp_path)
    gt = tmp_path / "s_gt.hdf5"
    gt.write_bytes(b"\x00" * 100)
    _raises(gt, "not an HDF5 file", data=tmp_path / "s_data.hdf5")


def test_explicit_gt_missing(tmp_path):
    data = _data(tmp_path)
    _raises(tmp_path / "other_gt.hdf5", "not found", data=data, gt_path=tmp_path / "other_gt.hdf5")


def test_gt_optional(tmp_path):
    data = _data(tmp_path)
    with MVSECRecording(data) as rec:
        assert not rec.has_gt and rec.gt_path is None and rec.n_depth == 0
        assert rec.depth_ts.shape == (0,)
        with pytest.raises(SnncError, match="no ground-truth depth"):
            rec.depth(0)


def test_gt_found_beside_and_explicit(tmp_path):
    data = write_recording(tmp_path, "fly", n=300, n_depth=4, height=H, width=W)
    other = tmp_path / "renamed.hdf5"
    (tmp_path / "fly_gt.hdf5").rename(other)
    with MVSECRecording(data) as rec:
        assert not rec.has_gt
    with MVSECRecording(data, gt_path=other) as rec:
        assert rec.has_gt and rec.n_depth == 4
        d = rec.depth(2)
        assert d.dtype == np.float32 and d.shape == (H, W)
        assert np.isnan(d[0]).all() and np.isfinite(d[5]).all()
        assert np.all(np.diff(rec.depth_ts) > 0)
        with pytest.raises(SnncError, match="out of range"):
            rec.depth(4)


# -- sensor size and rectification maps -----------------------------------------
def _maps(h: int, w: int, dx: float = 0.0):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return {"x": xx + dx, "y": yy}


def test_size_from_image_raw(tmp_path):
    p = write_data(tmp_path / "s_data.hdf5", _both(_events()), image_shape=(H, W))
    with MVSECRecording(p) as rec:
        assert (rec.height, rec.width) == (H, W)
        assert rec.rect_maps("left") is None and rec.rect_source("left") == "identity"


def test_size_default_without_images_or_maps(tmp_path):
    p = write_data(tmp_path / "s_data.hdf5", _both(_events()))
    with MVSECRecording(p) as rec:
        assert (rec.height, rec.width) == (layout.HEIGHT, layout.WIDTH)


def test_embedded_maps_give_size(tmp_path):
    maps = {"left": _maps(H, W, 1.0), "right": _maps(H, W, -1.0)}
    p = write_data(tmp_path / "s_data.hdf5", _both(_events()), rect_maps=maps)
    with MVSECRecording(p) as rec:
        assert (rec.height, rec.width) == (H, W)
        xm, ym = rec.rect_maps("left")
        assert xm.dtype == np.float32 and xm[3, 4] == 5.0 and ym[3, 4] == 3.0
        assert rec.rect_maps("right")[0][3, 4] == 3.0
        assert rec.rect_source("left") == "embedded"


def test_embedded_map_wrong_shape(tmp_path):
    maps = {"left": _maps(H, W + 2)}
    p = write_data(tmp_path / "s_data.hdf5", _both(_events()), image_shape=(H, W), rect_maps=maps)
    _raises(p, f"left rectification map is {H}x{W + 2}", f"is {H}x{W}")


def test_embedded_map_only_x(tmp_path):
    p = write_data(tmp_path / "s_data.hdf5", _both(_events()), rect_maps={"left": {"x": _maps(H, W)["x"]}})
    _raises(p, "rect_x_map present", "rect_y_map missing")


def _write_txt(path: Path, table: np.ndarray) -> None:
    np.savetxt(path, table, fmt="%.4f")


def test_txt_maps_real_names_beside_data(tmp_path):
    p = write_data(tmp_path / "indoor_flying1_data.hdf5", _both(_events()))
    for cam, dx in (("left", 2.0), ("right", -2.0)):
        for axis, table in _maps(H, W, dx).items():
            _write_txt(tmp_path / f"indoor_flying_{cam}_{axis}_map.txt", table)
    with MVSECRecording(p) as rec:
        assert (rec.height, rec.width) == (H, W)
        assert rec.rect_maps("left")[0][1, 1] == pytest.approx(3.0)
        assert rec.rect_maps("right")[0][1, 5] == pytest.approx(3.0)
        assert rec.rect_source("right") == str(tmp_path)
        assert rec.sequence_name == "indoor_flying1"


def test_txt_maps_plain_names_in_rect_dir(tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    p = write_data(tmp_path / "s_data.hdf5", _both(_events()), image_shape=(H, W))
    for cam in layout.CAMERAS:
        for axis, table in _maps(H, W, 1.0).items():
            _write_txt(calib / f"{cam}_{axis}_map.txt", table)
    with MVSECRecording(p) as rec:
        assert rec.rect_maps("left") is None  # not beside the data file
    with MVSECRecording(p, rect_dir=calib) as rec:
        assert rec.rect_maps("left")[0][0, 0] == pytest.approx(1.0)
    _raises(tmp_path / "nocalib", "folder not found", data=p, rect_dir=tmp_path / "nocalib")


def test_txt_map_wrong_shape(tmp_path):
    p = write_data(tmp_path / "s_data.hdf5", _both(_events()), image_shape=(H, W))
    for axis, table in _maps(H - 1, W).items():
        _write_txt(tmp_path / f"left_{axis}_map.txt", table)
    _raises(tmp_path, f"left rectification map is {H - 1}x{W}", data=p)


def test_txt_map_missing_partner_and_garbage(tmp_path):
    p = write_data(tmp_path / "s_data.hdf5", _both(_events()), image_shape=(H, W))
    _write_txt(tmp_path / "left_x_map.txt", _maps(H, W)["x"])
    _raises(tmp_path / "left_x_map.txt", "left y not found", data=p)
    (tmp_path / "left_y_map.txt").write_text("1 2 3\n4 five 6\n")
    _raises(tmp_path / "left_y_map.txt", "not a number", data=p)


# -- event windows ---------------------------------------------------------------
def test_events_between_matches_brute_force(tmp_path, monkeypatch):
    monkeypatch.setattr(mvsec, "INDEX_SAMPLES", 16)
    monkeypatch.setattr(mvsec, "SEARCH_MAX_BLOCK", 32)
    rng = np.random.default_rng(3)
    ev = random_events(rng, 6000, height=H, width=W, duration=1.0, ticks=900)  # many equal timestamps
    p = write_data(tmp_path / "s_data.hdf5", {"left": ev, "right": ev[:10]})
    t = ev[:, 2]
    queries = [
        (t[0], t[-1]),
        (t[0] - 1, t[0]),
        (t[-1], t[-1] + 1),
        (t[0] - 2, t[0] - 1),
        (t[-1] + 1, t[-1] + 2),
        (t[100], t[100]),
        (t[200], t[100]),
        (t[0] - 1, t[-1] + 1),
    ]
    for _ in range(60):
        a, b = np.sort(rng.choice(t, 2))
        queries.append((a, b))
        queries.append((a - 1e-7, b + 1e-7))
    with MVSECRecording(p) as rec:
        assert rec.event_count("left") == 6000 and rec.event_count("right") == 10
        assert rec.time_range() == (t[0], t[-1])
        for t0, t1 in queries:
            got = rec.events_between("left", t0, t1)
            want = ev[(t > t0) & (t <= t1)]
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "max_samples,max_block,chunks",
    [(1, 1, None), (4, 3, None), (1024, 1 << 18, None), (7, 1000, None), (1024, 5, (16, 2)), (50, 40, (100, 2))],
)
def test_sorted_column_searchsorted(tmp_path, max_samples, max_block, chunks):
    rng = np.random.default_rng(max_samples)
    t = np.sort(rng.integers(0, 50, 777)).astype(np.float64)
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f.create_dataset("d", data=np.stack([t, -t], axis=1), chunks=chunks, compression="gzip" if chunks else None)
        col = SortedColumn(f["d"], 0, max_samples=max_samples, max_block=max_block, max_chunk_samples=4)
        if chunks:  # index samples sit on chunk starts, few chunks touched
            assert len(col.rows) <= 6 and np.all(col.rows[:-1] % chunks[0] == 0)
        for v in np.concatenate([np.arange(-2, 53, 0.5), t[:5], t[-5:]]):
            for side in ("left", "right"):
                assert col.searchsorted(v, side) == np.searchsorted(t, v, side), (v, side)
        f["e"] = np.zeros((0, 4))
        assert SortedColumn(f["e"], 2).searchsorted(1.0) == 0


def test_camera_name_and_closed(tmp_path):
    p = _data(tmp_path)
    rec = MVSECRecording(p)
    with pytest.raises(SnncError, match="unknown camera 'middle'"):
        rec.events_between("middle", 0, 1)
    rec.close()
    rec.close()
    with pytest.raises(SnncError, match="closed"):
        rec.event_count("left")


# -- summarize -------------------------------------------------------------------
def test_summarize(tmp_path):
    rng = np.random.default_rng(1)
    ev_l = random_events(rng, 1000, height=H, width=W, duration=2.0)
    ev_r = random_events(rng, 500, height=H, width=W, duration=2.0)
    ev_l[0, 2], ev_l[-1, 2] = T0, T0 + 2.0
    p = write_data(tmp_path / "s_data.hdf5", {"left": ev_l, "right": ev_r}, image_shape=(H, W))
    fb, scale = layout.FB_INDOOR_FLYING, layout.DISPARITY_SCALE
    depth = np.full((5, H, W), np.nan, np.float32)
    depth[:, :10, :] = scale * fb / 20.0  # scaled disparity 20 on the top half
    depth[:, 10:12, :] = scale * fb / 70.0  # disparity 70: beyond 64 bins
    depth[0, 0, 0] = -1.0
    write_gt(tmp_path / "s_gt.hdf5", depth, T0 + 0.5 * np.arange(5))
    with MVSECRecording(p) as rec:
        s = summarize(rec, max_depth_frames=3, disparity_bins=64)
    assert s["duration_s"] == pytest.approx(2.0)
    assert s["cameras"]["left"]["events"] == 1000
    assert s["cameras"]["left"]["rate_hz"] == pytest.approx(500.0)
    assert s["cameras"]["right"]["rate_hz"] == pytest.approx(250.0)
    d = s["depth"]
    assert d["frames"] == 5 and d["frames_sampled"] == 3
    assert d["rate_hz"] == pytest.approx(2.0)
    assert d["depth_min_m"] == pytest.approx(scale * fb / 70.0, rel=1e-6)
    assert d["depth_max_m"] == pytest.approx(scale * fb / 20.0, rel=1e-6)
    n_valid = 3 * 12 * W - 1  # frame 0 has the -1 pixel
    assert d["valid_fraction"] == pytest.approx(n_valid / (3 * H * W))
    hist = d["disparity_hist"]
    assert hist["counts"][20] == 3 * 10 * W - 1 and sum(hist["counts"]) == hist["counts"][20]
    assert hist["overflow"] == 3 * 2 * W
    assert d["disparity_max"] == 70.0


def test_summarize_without_gt_or_events(tmp_path):
    p = write_data(tmp_path / "s_data.hdf5", _both(np.zeros((0, 4))))
    with MVSECRecording(p) as rec:
        s = summarize(rec)
    assert s["depth"] is None and s["cameras"]["left"]["events"] == 0
    assert math.isnan(s["duration_s"]) and math.isnan(s["cameras"]["left"]["rate_hz"])


def test_txt_maps_several_scenes(tmp_path):
    for scene, dx in (("indoor_flying", 1.0), ("outdoor_day", 5.0)):
        for cam in layout.CAMERAS:
            for axis, table in _maps(H, W, dx).items():
                _write_txt(tmp_path / f"{scene}_{cam}_{axis}_map.txt", table)
    p = write_data(tmp_path / "indoor_flying2_data.hdf5", _both(_events()))
    with MVSECRecording(p) as rec:  # the scene prefix of the data file decides
        assert rec.rect_maps("left")[0][0, 0] == pytest.approx(1.0)
    q = write_data(tmp_path / "other_data.hdf5", _both(_events()))
    _raises(tmp_path, "several rectification maps", "indoor_flying_left_x_map.txt", data=q)
