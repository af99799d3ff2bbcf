"""``snnc stream --model MANIFEST``: a partition manifest streams from its own files, like the checkpoint.

The manifest is written by ``snnc export --to nir --partition``; the stream runs its front NIR in
snnc's NIR runtime and its rest ONNX in onnxruntime and must give the checkpoint's disparities
and metrics (torch backend) frame by frame. A ``.json`` is a manifest by its ``format`` field only.
"""

from __future__ import annotations

import json

import pytest

from snnc.data.synth import synthesize

from _stream_util import active_checkpoint, small_stereo_json
from cli_helpers import assert_user_error, expect_ok, run_snnc

pytestmark = pytest.mark.slow  # a stereo net exported and streamed twice (~30 s on a busy machine)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    tmp = tmp_path_factory.mktemp("stream-manifest")
    data, _ = synthesize(tmp / "tiny_data.hdf5", frames=4, height=48, width=64, progress=False)
    ckpt = active_checkpoint(tmp)
    manifest = tmp / "part.json"
    expect_ok(run_snnc("export", ckpt, "--to", "nir", "--partition", "--out", manifest, "--input-shape", "1,2,5,48,64"))
    return {"data": data, "ckpt": ckpt, "manifest": manifest, "tmp": tmp}


def _stream(data, *args):
    return json.loads(expect_ok(run_snnc("stream", data, "--json", "--threads", "1", *args)))


def test_manifest_streams_like_its_checkpoint(files):
    want = _stream(files["data"], "--model", files["ckpt"])
    got = _stream(files["data"], "--model", files["manifest"])
    assert got["frames"] == want["frames"] == 4
    assert got["backend"] == "hybrid" and got["energy_count"] == "off" and got["energy_j_per_frame"] is None
    assert got["model"].startswith("spikedhs-stereo (partition manifest part.json")
    assert [p["part"] for p in got["placement"]] == ["front", "rest"]
    for key in ("mean_disparity_error", "mean_depth_error", "one_pixel_accuracy"):
        assert got[key] == pytest.approx(want[key], abs=1e-4), key
    assert want["ac_per_frame"] > 0  # the checkpoint fires: the disparities compared are not flat


def test_manifest_errors(files):
    data, manifest = files["data"], files["manifest"]
    assert_user_error(
        run_snnc("stream", data, "--model", manifest, "--backend", "onnx"), "part.json", "partition manifest"
    )
    genotype = small_stereo_json(files["tmp"])  # a .json without the manifest's format: a genotype
    assert json.loads(genotype.read_text())["family"] == "spikedhs-stereo"
    expect_ok(run_snnc("stream", data, "--model", genotype, "--frames", "1", "--json", "--no-energy"))
    rest = manifest.with_name("part.rest.onnx")
    rest.write_bytes(rest.read_bytes() + b"\0")  # a stale piece is refused, naming it
    assert_user_error(run_snnc("stream", data, "--model", manifest), "part.rest.onnx", "stale or partial")
