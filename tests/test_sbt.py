"""SBT encoding: vectorised == reference, window edges, rectification rounding, sbt_pair."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.data import layout
from snnc.data.mvsec import MVSECRecording
from snnc.data.sbt import encode_sbt, encode_sbt_reference, frame_boundaries, sbt_pair
from snnc.errors import SnncError

from _mvsec_h5 import T0, random_events, write_data, write_gt

H, W = 12, 16


def _both(events, t_end, **kw):
    """encode_sbt == reference, on the events as given and sorted / reversed by time
    (exercising both the sorted-slice and the unsorted path)."""
    ref = encode_sbt_reference(events, t_end, **kw)
    assert ref.dtype == np.int8
    events = np.asarray(events)
    order = np.argsort(events[:, 2], kind="stable") if len(events) else np.arange(0)
    for variant in (events, events[order], events[order[::-1]]):
        fast = encode_sbt(variant, t_end, **kw)
        assert fast.dtype == np.int8
        np.testing.assert_array_equal(fast, ref)
    return fast


def _random_maps(rng, h, w, out_h, out_w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    xmap = xx * (out_w / w) + rng.normal(0, 1.5, (h, w))
    ymap = yy * (out_h / h) + rng.normal(0, 1.5, (h, w))
    # exact halves (rounding-rule sensitive), pixels mapped outside, NaNs
    xmap[0, :4] = [0.5, 1.5, -0.5, 2.5]
    ymap[0, :4] = [2.5, 3.5, 1.0, -0.49]
    xmap[1, 1], ymap[2, 2] = out_w + 0.2, np.nan
    return xmap.astype(np.float32), ymap.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_matches_reference_random(seed):
    rng = np.random.default_rng(seed)
    n = 6000
    t_end, window = T0 + 0.07, 0.05
    ev = np.stack(
        [
            rng.integers(-2, W + 2, n).astype(np.float64),  # some raw pixels off the sensor
            rng.integers(-2, H + 2, n).astype(np.float64),
            t_end - 0.06 + rng.random(n) * 0.07,  # some before / after the window
            rng.choice([-1.0, 1.0], n),
        ],
        axis=1,
    )
    ev[:50, 2] = t_end - window  # excluded edge
    ev[50:100, 2] = t_end  # included edge
    for kw in (
        {},
        {"rect_maps": _random_maps(rng, H, W, H, W)},
        {"rect_maps": _random_maps(rng, H, W, H + 3, W - 2), "height": H + 3, "width": W - 2},
    ):
        kw = {"height": H, "width": W, **kw}
        out = _both(ev, t_end, window=window, n_frames=5, **kw)
        assert out.shape == (5, kw["height"], kw["width"])
        assert set(np.unique(out)) <= {-1, 0, 1} and np.abs(out).sum() > 0
    _both(ev, t_end, window=0.03, n_frames=3, height=H, width=W)


def test_rect_table_cache_never_serves_stale_maps():
    """The per-maps lookup table is cached (the stream encodes every window with the same maps); maps changed in
    place, replaced by other maps, or given for another frame size get their own table, equal to a fresh build."""
    rng = np.random.default_rng(7)
    n = 3000
    t_end = T0 + 0.05
    ev = np.stack(
        [
            rng.integers(0, W, n).astype(np.float64),
            rng.integers(0, H, n).astype(np.float64),
            t_end - 0.05 + rng.random(n) * 0.05,
            rng.choice([-1.0, 1.0], n),
        ],
        axis=1,
    )
    xmap, ymap = _random_maps(rng, H, W, H, W)
    maps = (xmap, ymap)
    first = _both(ev, t_end, height=H, width=W, rect_maps=maps)
    again = _both(ev, t_end, height=H, width=W, rect_maps=maps)  # served by the cache
    np.testing.assert_array_equal(again, first)
    xmap[:] = xmap[:, ::-1]  # in place: same arrays (same ids), other values
    flipped = _both(ev, t_end, height=H, width=W, rect_maps=maps)
    assert not np.array_equal(flipped, first)
    ymap[3, 3] = np.nan  # a single entry changed in place
    _both(ev, t_end, height=H, width=W, rect_maps=maps)
    other = _random_maps(rng, H, W, H, W)
    _both(ev, t_end, height=H, width=W, rect_maps=other)
    _both(ev, t_end, height=H + 2, width=W + 1, rect_maps=other)  # another frame size, the same maps
    _both(ev, t_end, height=H, width=W, rect_maps=(other[0].astype(np.float64), other[1]))  # another dtype
    for _ in range(6):  # more maps than the cache keeps, each a new pair of arrays
        _both(ev, t_end, height=H, width=W, rect_maps=_random_maps(rng, H, W, H, W))


def test_window_edges():
    t_end, window, n = T0 + 1.0, 0.05, 5
    edges = frame_boundaries(t_end, window, n)
    assert edges[0] == t_end - window and edges[-1] == t_end and len(edges) == n + 1
    # one event per edge, each at its own pixel
    ev = np.array([[i, 0, edges[i], 1.0] for i in range(n + 1)])
    out = _both(ev, t_end, window=window, n_frames=n, height=2, width=n + 1)
    assert out[:, 0, 0].tolist() == [0] * n  # t == t_end - window: excluded
    for i in range(1, n + 1):  # t == edges[i]: the end of frame i-1 (inclusive)
        col = out[:, 0, i]
        assert col[i - 1] == 1 and np.count_nonzero(col) == 1
    just_after = np.array(
        [
            [0, 1, np.nextafter(edges[0], np.inf), -1.0],
            [1, 1, np.nextafter(edges[2], np.inf), -1.0],
            [2, 1, np.nextafter(t_end, np.inf), -1.0],
        ]
    )
    out = _both(just_after, t_end, window=window, n_frames=n, height=2, width=n + 1)
    assert out[0, 1, 0] == -1 and out[2, 1, 1] == -1 and np.count_nonzero(out[:, 1, 2]) == 0


def test_sign_of_polarity_sum_and_01_polarity():
    ev = np.array(
        [
            [1, 1, 0.5, 1],
            [1, 1, 0.6, 1],
            [1, 1, 0.7, -1],  # +1
            [2, 1, 0.5, 1],
            [2, 1, 0.6, -1],  # 0
            [3, 1, 0.5, 0],
            [3, 1, 0.6, 0],
            [3, 1, 0.7, 1],
        ],
        dtype=np.float64,
    )  # {0,1}: 0 is OFF
    out = _both(ev, 1.0, window=1.0, n_frames=1, height=3, width=4)
    assert out[0, 1, 1:].tolist() == [1, 0, -1]


def test_rectification_rounding_half_away_from_zero():
    xmap = np.array([[0.5, 1.49, -0.5, -0.4, 3.5]], np.float32)
    ymap = np.array([[0.0, 0.0, 0.0, 0.5, 0.0]], np.float32)
    ev = np.array([[x, 0, 0.5, 1] for x in range(5)], dtype=np.float64)
    out = _both(ev, 1.0, window=1.0, n_frames=1, height=2, width=5, rect_maps=(xmap, ymap))
    # 0.5->1, 1.49->1, -0.5->-1 (dropped), (-0.4, 0.5)->(0, 1), 3.5->4
    assert out[0].tolist() == [[0, 1, 0, 0, 1], [1, 0, 0, 0, 0]]


def test_empty_window_is_zeros():
    out = _both(np.zeros((0, 4)), T0, height=H, width=W)
    assert out.shape == (5, H, W) and not out.any()
    ev = np.array([[1, 1, T0 - 1.0, 1.0]])
    assert not _both(ev, T0, height=H, width=W).any()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("col", [0, 2, 3])
def test_nonfinite_events_raise(bad, col):
    ev = np.array([[1, 1, 0.5, 1], [2, 2, 0.6, 1]], dtype=np.float64)
    ev[1, col] = bad
    for fn in (encode_sbt, encode_sbt_reference):
        with pytest.raises(SnncError, match=r"NaN or inf.*row 1"):
            fn(ev, 1.0, height=3, width=3, source="rec_data.hdf5")


def test_bad_arguments():
    ev = np.zeros((1, 4))
    with pytest.raises(SnncError, match=r"\(N, 4\)"):
        encode_sbt(np.zeros((3, 5)), 1.0)
    with pytest.raises(SnncError, match="window"):
        encode_sbt(ev, 1.0, window=0.0)
    with pytest.raises(SnncError, match="n_frames"):
        encode_sbt(ev, 1.0, n_frames=0)
    with pytest.raises(SnncError, match="rectification maps"):
        encode_sbt(ev, 1.0, rect_maps=(np.zeros((2, 2)), np.zeros((2, 3))))


def test_sbt_pair_from_recording(tmp_path):
    rng = np.random.default_rng(7)
    ev_l = random_events(rng, 4000, height=H, width=W, duration=0.5)
    ev_r = random_events(rng, 3000, height=H, width=W, duration=0.5)
    ts = T0 + np.array([0.02, 0.1, 0.25, 0.49])
    ev_l[100, 2] = ts[1]  # an event exactly at the depth timestamp
    ev_l = ev_l[np.argsort(ev_l[:, 2], kind="stable")]
    maps = {"left": {"x": _random_maps(rng, H, W, H, W)[0], "y": _random_maps(rng, H, W, H, W)[1]}}
    p = write_data(
        tmp_path / "r_data.hdf5",
        {"left": ev_l, "right": ev_r},
        image_shape=(H, W),
        rect_maps={
            "left": maps["left"],
            "right": {
                "x": np.mgrid[0:H, 0:W][1].astype(np.float32) + 0.6,
                "y": np.mgrid[0:H, 0:W][0].astype(np.float32),
            },
        },
    )
    write_gt(tmp_path / "r_gt.hdf5", np.ones((4, H, W), np.float32), ts)
    with MVSECRecording(p) as rec:
        for k in range(4):
            left, right = sbt_pair(rec, k)
            kw = {"height": H, "width": W}
            want_l = encode_sbt_reference(ev_l, ts[k], rect_maps=rec.rect_maps("left"), **kw)
            want_r = encode_sbt_reference(ev_r, ts[k], rect_maps=rec.rect_maps("right"), **kw)
            np.testing.assert_array_equal(left, want_l)
            np.testing.assert_array_equal(right, want_r)
        assert np.abs(left).sum() > 0
        with pytest.raises(SnncError, match="out of range"):
            sbt_pair(rec, 4)


def test_sbt_pair_needs_gt(tmp_path):
    ev = random_events(np.random.default_rng(0), 10, height=H, width=W)
    p = write_data(tmp_path / "n_data.hdf5", {"left": ev, "right": ev})
    with MVSECRecording(p) as rec, pytest.raises(SnncError, match="no ground-truth"):
        sbt_pair(rec, 0)


def test_default_shape_is_mvsec():
    out = encode_sbt(np.array([[345, 259, 1.0, 1]]), 1.0)
    assert out.shape == (5, layout.HEIGHT, layout.WIDTH) and out[4, 259, 345] == 1
