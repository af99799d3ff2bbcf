"""depth_to_disparity and the MVSEC metrics on constructed cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from snnc.data import layout
from snnc.data.disparity import depth_to_disparity, disparity_to_depth
from snnc.data.metrics import METRIC_NAMES, MetricAccumulator, aggregate, format_metrics, frame_metrics
from snnc.errors import SnncError

FB, S = layout.FB_INDOOR_FLYING, layout.DISPARITY_SCALE


def _depth_for(scaled_disp):
    """Depth whose scaled disparity is ``scaled_disp`` (NaN passes through)."""
    return S * FB / np.asarray(scaled_disp, dtype=np.float64)


# -- depth_to_disparity -----------------------------------------------------------
def test_depth_to_disparity_valid_mask_and_values():
    depth = np.array([[S * FB / 10, np.nan, np.inf], [0.0, -1.0, S * FB / 2.4]], dtype=np.float32)
    disp, valid = depth_to_disparity(depth)
    assert disp.dtype == np.float32 and valid.dtype == bool
    assert valid.tolist() == [[True, False, False], [False, False, True]]
    assert disp.tolist() == [[10.0, 0.0, 0.0], [0.0, 0.0, 2.0]]
    raw, valid2 = depth_to_disparity(depth, rounding=False)
    assert raw[1, 2] == pytest.approx(2.4, rel=1e-6) and valid2.tolist() == valid.tolist()
    unscaled, _ = depth_to_disparity(depth, scale=1.0, rounding=False)
    assert unscaled[0, 0] == pytest.approx(10 / S, rel=1e-6)


def test_depth_to_disparity_rounding_rule_far_and_max():
    disp, _ = depth_to_disparity(np.array([2.0, 2.0 / 3.0]), fb=5.0, scale=1.0)  # 2.5 -> 2, 7.5 -> 8 (to even)
    assert disp.tolist() == [2.0, 8.0]
    disp, valid = depth_to_disparity(np.array([3 * S * FB]), rounding=True)  # 0.33 rounds to 0: no depth
    assert not valid[0] and disp[0] == 0
    _, valid = depth_to_disparity(np.array([3 * S * FB]), rounding=False)
    assert valid[0]
    disp, valid = depth_to_disparity(_depth_for([37.0, 38.0]), max_disparity=37)
    assert valid.tolist() == [True, False] and disp.tolist() == [37.0, 0.0]
    with pytest.raises(SnncError, match="positive"):
        depth_to_disparity(np.ones(2), scale=0.0)


def test_disparity_to_depth_roundtrip():
    d = np.array([7.0, 14.0, 0.0, -3.0])
    z = disparity_to_depth(d)
    assert z[0] == pytest.approx(FB) and z[1] == pytest.approx(FB / 2) and np.isinf(z[2:]).all()
    back, valid = depth_to_disparity(z)
    assert back.tolist() == [7.0, 14.0, 0.0, 0.0] and valid.tolist() == [True, True, False, False]


# -- metrics ------------------------------------------------------------------------
def _frame_a():
    gt = _depth_for([[14.0, 21.0], [28.0, np.nan]])  # unscaled 2, 3, 4, invalid
    pred = S * np.array([[2.0, 4.0], [5.5, 100.0]])  # errors 0, 1, 1.5 (last pixel is not valid)
    return pred, gt


def test_frame_metrics_known_answer():
    pred, gt = _frame_a()
    m = frame_metrics(pred, gt, fb=FB, scale=S)
    depth_errs = [0.0, FB / 3 - FB / 4, FB / 4 - FB / 5.5]
    assert m["n_valid"] == 3 and m["n_clamped"] == 0
    assert m["mean_disparity_error"] == pytest.approx(2.5 / 3)
    assert m["one_pixel_accuracy"] == pytest.approx(2 / 3)  # error exactly 1 px counts as correct
    assert m["mean_depth_error"] == pytest.approx(np.mean(depth_errs))
    assert m["median_depth_error"] == pytest.approx(np.median(depth_errs))


def test_frame_metrics_no_valid_pixel_is_none():
    gt = np.array([[np.nan, np.inf], [0.0, -2.0]])
    assert frame_metrics(np.ones((2, 2)), gt) is None
    assert frame_metrics(np.ones(2), _depth_for([40.0, 50.0]), max_disparity=37) is None


def test_nonpositive_prediction_is_clamped_not_inf():
    gt = _depth_for([7.0, 7.0])  # unscaled 1 px, depth fB
    m = frame_metrics(np.array([0.0, -7.0]), gt)
    assert m["n_clamped"] == 2
    assert m["mean_disparity_error"] == pytest.approx(1.5)  # uses the unclamped prediction
    assert m["one_pixel_accuracy"] == pytest.approx(0.5)
    assert m["mean_depth_error"] == pytest.approx(S * FB - FB)  # depth of 1/scale px minus fB
    m = frame_metrics(np.array([0.0, 7.0]), gt, min_pred_disparity=0.5)
    assert m["mean_depth_error"] == pytest.approx((2 * FB - FB) / 2) and m["n_clamped"] == 1


def test_round_gt_switch():
    gt = np.array([FB / 2.3])  # scaled 16.1 -> rounded 16
    pred = np.array([16.1])
    assert frame_metrics(pred, gt, round_gt=False)["mean_disparity_error"] == pytest.approx(0.0, abs=1e-9)
    assert frame_metrics(pred, gt, round_gt=True)["mean_disparity_error"] == pytest.approx(2.3 - 16 / 7)


def test_frame_metrics_errors():
    with pytest.raises(SnncError, match="shape"):
        frame_metrics(np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(SnncError, match="NaN or inf"):
        frame_metrics(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))


def test_aggregate_skips_invalid_frames():
    pred, gt = _frame_a()
    a = frame_metrics(pred, gt)
    c = frame_metrics(np.array([[0.0]]), _depth_for([[7.0]]))
    res = aggregate([a, None, c])
    assert res["frames_used"] == 2 and res["frames_skipped"] == 1 and res["frames_total"] == 3
    assert res["no_valid_frames"] is False
    assert res["mean_disparity_error"] == pytest.approx((2.5 / 3 + 1.0) / 2)
    assert res["one_pixel_accuracy"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert res["mean_depth_error"] == pytest.approx((a["mean_depth_error"] + (S - 1) * FB) / 2)
    assert res["n_valid_pixels"] == 4 and res["n_clamped_pixels"] == 1


def test_all_invalid_gives_nan_and_flag():
    for frames in ([None, None], []):
        res = aggregate(frames)
        assert res["no_valid_frames"] is True and res["frames_used"] == 0
        assert all(math.isnan(res[name]) for name in METRIC_NAMES)
    assert "undefined" in format_metrics(aggregate([None]))[0]


def test_accumulator_streams_like_aggregate():
    rng = np.random.default_rng(0)
    acc = MetricAccumulator(fb=FB, scale=S)
    frames = []
    for i in range(6):
        gt = rng.uniform(1.0, 8.0, (5, 6))
        gt[rng.random((5, 6)) < 0.3] = np.nan
        if i == 3:
            gt[:] = np.nan
        pred = depth_to_disparity(gt)[0] + rng.normal(0, 4, gt.shape)
        frames.append(acc.update(pred, gt))
    assert frames[3] is None
    res, want = acc.result(), aggregate(frames)
    for key in want:
        assert res[key] == pytest.approx(want[key])
    assert res["frames_used"] == 5
    lines = format_metrics(res)
    assert lines[0].startswith("mean depth error") and lines[-1].endswith("5 of 6")
