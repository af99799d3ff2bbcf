"""snnc train on a tiny synthetic MVSEC recording: windows, metrics, baseline, folding, DGS on the stem."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snnc.data.synth import synthesize
from snnc.errors import SnncError
from snnc.train import load_model, train
from snnc.train.config import TrainConfig
from snnc.train.data_stereo import FrameTransform, StereoData

from _train_util import load, quiet_log

METRIC_KEYS = ("mean_disparity_error", "mean_depth_error", "median_depth_error", "one_pixel_accuracy")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("stereo") / "tiny_data.hdf5"
    synthesize(path, frames=14, height=32, width=48, progress=False)
    return path


@pytest.fixture(scope="module")
def stereo_run(tmp_path_factory):
    """Two epochs with DGS on an 8-frame 24x36 recording (3 training windows, 2 test frames)."""
    root = tmp_path_factory.mktemp("stereo_run")
    recording = root / "small_data.hdf5"
    synthesize(recording, frames=8, height=24, width=36, progress=False)
    out = root / "run"
    cfg = TrainConfig(
        arch="spikedhs-stereo",
        data=[str(recording)],
        out=str(out),
        epochs=2,
        steps=2,
        width=2,
        max_disparity=38,
        threads=1,
        quiet=True,
        dgs=True,
        dgs_every=1,
        dgs_iters=2,
    )
    return out, train(cfg, log=quiet_log)


def test_windows_hold_out_a_tail_with_burn_in(recording):
    data = StereoData([str(recording)], burn_in=2, steps=3, split="auto", test_fraction=0.25, progress=False)
    try:
        assert data.split == "tail"
        train_labels = {(w.rec, k) for w in data.train_windows for k in range(w.start, w.start + w.length)}
        test_labels = [(w.rec, k) for w in data.test_windows for k in range(w.start, w.start + w.length)]
        assert len(test_labels) == len(set(test_labels)) == 4  # every test frame once (14 * 0.25)
        assert not train_labels & set(test_labels)
        assert min(k for _, k in train_labels) == 2  # two burn-in stacks before
        batch = data.batch(data.train_windows[:2])
        assert tuple(batch.x.shape) == (5, 2, 2, 5, 32, 48)  # (2 + 3, B, cameras, frames, H, W)
        assert tuple(batch.disparity.shape) == (3, 2, 32, 48)
        assert set(np.unique(batch.x.numpy())) <= {-1.0, 0.0, 1.0}
        assert bool(batch.valid.any())
    finally:
        data.close()


def test_crop_and_downscale_keep_sbt_values():
    t = FrameTransform.make((64, 96), [4, 8, 41, 67], 2)
    assert t.out_size == (20, 33)  # 41x67 trimmed to 40x66, halved
    stack = np.zeros((5, 64, 96), dtype=np.int8)
    stack[0, 4:6, 8:10] = [[1, 1], [-1, 0]]
    stack[1, 4:6, 8:10] = [[-1, -1], [0, 0]]
    out = t.sbt(stack)
    assert out.shape == (5, 20, 33) and out[0, 0, 0] == 1 and out[1, 0, 0] == -1 and out[2, 0, 0] == 0
    with pytest.raises(SnncError, match="does not fit"):
        FrameTransform.make((64, 96), [40, 0, 40, 96], 1)


def test_stereo_metrics_and_baseline(stereo_run):
    out, _metrics = stereo_run
    saved = json.loads((out / "metrics.json").read_text())
    for key in METRIC_KEYS:
        assert np.isfinite(saved[key]), key
        assert np.isfinite(saved["baseline"][key]), key
    assert 0.0 <= saved["one_pixel_accuracy"] <= 1.0
    assert saved["baseline"]["frames_used"] == saved["frames_used"] > 0
    assert saved["baseline"]["predicted_disparity"] > 0
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2 and all(k in json.loads(rows[-1]) for k in (*METRIC_KEYS, "train_loss"))
    assert (out / "learning_curve.png").is_file()


def test_stereo_folded_network_and_dgs_on_first_stem(stereo_run):
    out, metrics = stereo_run
    assert metrics["fold_check"]["exact"]
    assert load(out / "folded.pt")["folded"] is True
    folded = load_model(out / "folded.pt")
    assert folded.genotype.disparities == 20 and folded.genotype.time_steps == 4
    records = [json.loads(line) for line in (out / "dgs.jsonl").read_text().splitlines()]
    assert [r["layer"] for r in records] == ["feature.stem0.neuron"] * 2
    assert records[0]["candidates"] == [2.6, 2.8, 3.0, 3.2, 3.4]
    b = records[-1]["chosen_b"]
    genotype = json.loads((out / "genotype.json").read_text())
    assert genotype["neuron_layers"].get("feature.stem0.neuron", genotype["neuron"])["b"] == b
    assert dict(folded.neurons())["feature.stem0.neuron"].spec.b == b
