"""Malformed inputs as a user meets them: every one is a one-line ``snnc: error:`` with exit 2, or a documented
fallback.

Subprocess calls (``run_snnc(..., subprocess=True)``) cover one representative per command; the many
variants go through :func:`snnc.cli.main` in-process (same error path, no
interpreter start-up) or through the library functions the commands call.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnc.data import layout
from snnc.errors import SnncError

from _mvsec_h5 import T0, random_events, write_data, write_gt, write_recording
from _stream_util import small_stereo_json
from cli_helpers import assert_user_error, run_snnc

H, W = 48, 64


class _Proc:
    """A completed-process look-alike for :func:`assert_user_error` from an in-process run."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def snnc_inproc(capsys, monkeypatch, *args) -> _Proc:
    """``snnc ARGS`` through :func:`snnc.cli.main` in this process (exit code and captured output)."""
    from snnc.cli import main

    monkeypatch.delenv("SNNC_DEBUG", raising=False)
    capsys.readouterr()
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return _Proc(code, out.out, out.err)


def _events(n: int = 200, seed: int = 0) -> np.ndarray:
    return random_events(np.random.default_rng(seed), n, height=H, width=W)


def _both(ev_left, ev_right=None) -> dict:
    return {"left": ev_left, "right": _events(seed=1) if ev_right is None else ev_right}


# --------------------------------------------------------------------------- HDF5 recordings
@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("malformed_good")
    return write_recording(tmp, "good", n=400, n_depth=4, height=H, width=W)


def test_truncated_hdf5_subprocess_data_info_and_stream(good, tmp_path):
    bad = tmp_path / "trunc_data.hdf5"
    raw = good.read_bytes()
    bad.write_bytes(raw[: len(raw) // 3])
    assert_user_error(run_snnc("data", "info", bad, subprocess=True), "trunc_data.hdf5")
    out = tmp_path / "never.h5"
    assert_user_error(
        run_snnc("stream", bad, "--model", "spikedhs-stereo", "--out", out, subprocess=True), "trunc_data.hdf5"
    )
    assert not out.exists()  # no half-written output


@pytest.mark.parametrize(
    "kind", ["truncated-header", "bad-object-header", "bad-symbol-table", "damaged-btree", "text", "empty"]
)
def test_corrupt_hdf5_data_info(kind, good, tmp_path, capsys, monkeypatch):
    bad = tmp_path / f"{kind}_data.hdf5"
    raw = bytearray(good.read_bytes())
    if kind == "truncated-header":
        bad.write_bytes(bytes(raw[:512]))
    elif kind in _DAMAGE:
        start, stop = _DAMAGE[kind]
        raw[start:stop] = b"\xff" * (stop - start)  # signature intact, metadata overwritten
        bad.write_bytes(bytes(raw))
    elif kind == "text":
        bad.write_text("x,y,t,p\n1,2,3,1\n")
    else:
        bad.write_bytes(b"")
    fragment = {
        "bad-object-header": "corrupt or truncated",
        "bad-symbol-table": "corrupt or truncated",
        "text": "not an HDF5 file",
    }.get(kind, "")
    assert_user_error(snnc_inproc(capsys, monkeypatch, "data", "info", bad), f"{kind}_data.hdf5", fragment)


#: byte ranges of a small h5py file overwritten to damage its metadata (the superblock signature survives)
_DAMAGE = {"bad-object-header": (96, 2048), "bad-symbol-table": (48, 96), "damaged-btree": (800, 1600)}


def _write_case(tmp: Path, case: str) -> tuple[Path, str]:
    """A broken ``*_data.hdf5`` and a fragment the error message must contain."""
    path = tmp / f"{case}_data.hdf5"
    left_key = layout.events_key("left")
    if case == "missing-left":
        write_data(path, {"left": None, "right": _events()}, image_shape=(H, W))
        return path, left_key
    if case == "missing-all":
        with h5py.File(path, "w") as f:
            f.create_group("davis")
        return path, "missing dataset"
    if case == "strings":
        with h5py.File(path, "w") as f:
            f.create_dataset(left_key, data=np.array([["a", "b", "c", "d"]] * 3, dtype="S1"))
            f.create_dataset(layout.events_key("right"), data=_events())
        return path, "dtype"
    if case == "shape-1d":
        write_data(path, _both(_events()[:, 2].copy()), image_shape=(H, W))
        return path, "shape"
    if case == "shape-3cols":
        write_data(path, _both(_events()[:, :3].copy()), image_shape=(H, W))
        return path, "columns"
    if case in ("nan-t", "inf-t"):
        ev = _events()
        ev[50, 2] = np.nan if case == "nan-t" else np.inf
        write_data(path, _both(ev), image_shape=(H, W))
        return path, "non-finite"
    if case == "backwards":
        ev = _events()
        ev[100:, 2] -= 0.5
        write_data(path, _both(ev), image_shape=(H, W))
        return path, "not sorted"
    raise AssertionError(case)


BROKEN = ["missing-left", "missing-all", "strings", "shape-1d", "shape-3cols", "nan-t", "inf-t", "backwards"]


@pytest.mark.parametrize("case", BROKEN)
def test_broken_events_data_info(case, tmp_path, capsys, monkeypatch):
    path, fragment = _write_case(tmp_path, case)
    assert_user_error(snnc_inproc(capsys, monkeypatch, "data", "info", path), path.name, fragment)


@pytest.mark.parametrize("case", ["strings", "backwards"])
def test_broken_events_stream_writes_nothing(case, tmp_path, capsys, monkeypatch):
    path, fragment = _write_case(tmp_path, case)
    out = tmp_path / "X.h5"
    proc = snnc_inproc(capsys, monkeypatch, "stream", path, "--model", "spikedhs-stereo", "--out", out)
    assert_user_error(proc, path.name, fragment)
    assert not out.exists() and not list(tmp_path.glob("*X.h5*"))


def test_nan_in_xy_columns_is_an_error_not_a_crash(tmp_path, capsys, monkeypatch):
    ev = _events()
    ev[40:190:7, 0] = np.nan  # x, spread over the streamed windows (rows outside them are never read)
    ev[45:190:7, 1] = np.inf  # y
    path = write_data(tmp_path / "nanxy_data.hdf5", _both(ev), image_shape=(H, W))
    gt = np.full((3, H, W), 2.0, np.float32)
    write_gt(tmp_path / "nanxy_gt.hdf5", gt, T0 + np.array([0.2, 0.5, 0.9]))
    proc = snnc_inproc(
        capsys,
        monkeypatch,
        "stream",
        path,
        "--model",
        str(small_stereo_json(tmp_path)),
        "--frames",
        "2",
        "--json",
        "--no-energy",
        "--threads",
        "1",
    )
    assert_user_error(proc, "nanxy_data.hdf5", "NaN or inf")


def test_zero_events_recording(tmp_path, capsys, monkeypatch):
    empty = np.zeros((0, 4), np.float64)
    path = write_data(tmp_path / "zero_data.hdf5", {"left": empty, "right": empty}, image_shape=(H, W))
    info = snnc_inproc(capsys, monkeypatch, "data", "info", path, "--json")
    assert info.returncode == 0, info.stderr  # documented: a summary with 0 events, no time range
    doc = json.loads(info.stdout)
    assert [doc["cameras"][c]["events"] for c in layout.CAMERAS] == [0, 0]
    assert doc["duration_s"] is None or not np.isfinite(doc["duration_s"])
    out = tmp_path / "zero_out.h5"
    proc = snnc_inproc(capsys, monkeypatch, "stream", path, "--model", "spikedhs-stereo", "--out", out)
    assert_user_error(proc, "zero_data.hdf5", "no events")
    assert not out.exists()


def test_gt_depth_all_nan_streams_with_no_valid_frames(tmp_path):
    rng = np.random.default_rng(3)
    data = write_data(
        tmp_path / "nangt_data.hdf5",
        {c: random_events(rng, 600, height=H, width=W) for c in layout.CAMERAS},
        image_shape=(H, W),
    )
    write_gt(tmp_path / "nangt_gt.hdf5", np.full((3, H, W), np.nan, np.float32), T0 + np.array([0.3, 0.6, 0.9]))
    out = tmp_path / "nangt_out.h5"
    proc = run_snnc(
        "stream", data, "--model", small_stereo_json(tmp_path), "--json", "--no-energy", "--threads", "1", "--out", out
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["frames"] == 3 and summary["clock"] == "gt"
    assert summary["frames_with_gt"] == 0
    for name in ("mean_depth_error", "one_pixel_accuracy"):
        assert summary[name] is None or not np.isfinite(summary[name])
    with h5py.File(out, "r") as f:
        assert f["disparity"].shape == (3, H, W)
        assert np.all(f["n_valid"][()] == 0)


# --------------------------------------------------------------------------- genotype JSON fuzzing
_PRESET = json.loads((Path(__file__).resolve().parents[1] / "snnc/presets/spikedhs-stereo.json").read_text())
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _check_genotype_outcome(d) -> None:
    from snnc.models.genotype import genotype_from_dict

    try:
        g = genotype_from_dict(d, "fuzz.json")
    except SnncError as err:
        msg = str(err)
        assert msg and "\n" not in msg
        return
    assert hasattr(g, "family") and hasattr(g, "to_dict")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json_values)
def test_genotype_from_random_json(value):
    _check_genotype_outcome(value)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(_PRESET)), _json_values, st.booleans())
def test_genotype_from_mutated_preset(field, value, delete):
    d = json.loads(json.dumps(_PRESET))
    if delete:
        d.pop(field)
    else:
        d[field] = value
    _check_genotype_outcome(d)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["feature_cell", "matching_cell", "neuron"]), st.text(max_size=6), _json_values)
def test_genotype_from_mutated_nested_field(section, key, value):
    d = json.loads(json.dumps(_PRESET))
    sub = d[section]
    target = key if (key in sub or not sub) else sorted(sub)[len(key) % len(sub)]
    sub[target] = value
    _check_genotype_outcome(d)


def test_genotype_json_file_cli(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad_genotype.json"
    bad.write_text('{"family": "spikedhs-stereo", "disparities": "many"')  # truncated JSON
    assert_user_error(snnc_inproc(capsys, monkeypatch, "info", bad), "bad_genotype.json")
    bad.write_text(json.dumps({**_PRESET, "disparities": -3}))
    assert_user_error(snnc_inproc(capsys, monkeypatch, "info", bad), "bad_genotype.json", "disparities")


# --------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict:
    """Checkpoints whose weights belong to another architecture, and .pt files that are not checkpoints."""
    from snnc.models.build import build_model
    from snnc.models.genotype import load_genotype
    from snnc.models.loading import save_network

    tmp = tmp_path_factory.mktemp("malformed_ckpt")
    small = load_genotype(str(small_stereo_json(tmp)))
    model = build_model(small)
    wider = build_model(load_genotype(str(small_stereo_json(tmp, feature_filter_multiplier=3))))
    mismatched = tmp / "other_arch.pt"
    torch.save({"genotype": small.to_dict(), "model": wider.state_dict()}, mismatched)
    cls = tmp / "classifier.pt"
    save_network(build_model(load_genotype("sequential-dvs")), cls)
    rnd = tmp / "random.pt"
    rnd.write_bytes(np.random.default_rng(0).bytes(4096))
    lst = tmp / "list.pt"
    lst.write_bytes(pickle.dumps([1, 2, 3]))
    tlist = tmp / "torch_list.pt"
    torch.save([torch.zeros(2)], tlist)
    nokeys = tmp / "nokeys.pt"
    torch.save({"weights": model.state_dict()}, nokeys)
    return {
        "mismatched": mismatched,
        "classifier": cls,
        "random": rnd,
        "list": lst,
        "torch_list": tlist,
        "nokeys": nokeys,
        "tmp": tmp,
    }


def test_checkpoint_of_other_architecture_export_subprocess(ckpts, tmp_path):
    out = tmp_path / "net.onnx"
    err = assert_user_error(
        run_snnc("export", ckpts["mismatched"], "--to", "onnx", "--out", out, subprocess=True),
        "other_arch.pt",
        "another architecture",
    )
    assert "shape" in err
    assert not out.exists()


def test_checkpoint_of_other_architecture_stream(ckpts, good, tmp_path):
    """In-process: ``stream``'s subprocess representative is the truncated recording above (same loader as export)."""
    out = tmp_path / "X.h5"
    assert_user_error(
        run_snnc("stream", good, "--model", ckpts["mismatched"], "--out", out),
        "other_arch.pt",
        "another architecture",
    )
    assert not out.exists()


def test_classifier_checkpoint_streamed(ckpts, good, tmp_path, capsys, monkeypatch):
    out = tmp_path / "X.h5"
    proc = snnc_inproc(capsys, monkeypatch, "stream", good, "--model", ckpts["classifier"], "--out", out)
    assert_user_error(proc, "stereo")
    assert not out.exists()


@pytest.mark.parametrize("name", ["random", "list", "torch_list", "nokeys"])
@pytest.mark.parametrize("command", ["export", "stream"])
def test_pt_that_is_not_a_checkpoint(name, command, ckpts, good, tmp_path, capsys, monkeypatch):
    path = ckpts[name]
    out = tmp_path / ("net.onnx" if command == "export" else "X.h5")
    if command == "export":
        proc = snnc_inproc(capsys, monkeypatch, "export", path, "--to", "onnx", "--out", out)
    else:
        proc = snnc_inproc(capsys, monkeypatch, "stream", good, "--model", path, "--out", out)
    assert_user_error(proc, path.name)
    assert not out.exists()


# --------------------------------------------------------------------------- NIR / ONNX files not ours
def test_nir_files_not_ours(tmp_path):
    from snnc.export.nir_reader import read_nir

    plain = tmp_path / "plain.nir"
    with h5py.File(plain, "w") as f:
        f.create_dataset("data", data=np.arange(4))
    text = tmp_path / "text.nir"
    text.write_text("not hdf5")
    onnx_as_nir = tmp_path / "model.nir"
    onnx_as_nir.write_bytes(b"\x08\x07\x12\x04snnc")
    foreign = tmp_path / "foreign.nir"
    import nir

    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([2])),
            "cubalif": nir.CubaLIF(
                tau_syn=np.ones(2), tau_mem=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)
            ),
            "output": nir.Output(output_type=np.array([2])),
        },
        edges=[("input", "cubalif"), ("cubalif", "output")],
    )
    nir.write(str(foreign), graph)
    for path, fragment in (
        (plain, "not a NIR file"),
        (text, "not a NIR file"),
        (onnx_as_nir, "not a NIR file"),
        (foreign, "CubaLIF"),
    ):
        with pytest.raises(SnncError) as info:
            read_nir(path)
        msg = str(info.value)
        assert path.name in msg and fragment in msg and "\n" not in msg


def test_onnx_file_not_ours_in_partition_manifest(tmp_path):
    """A partition manifest whose rest piece is a foreign / broken ONNX file (PartitionedNet reads ONNX)."""
    import onnx
    from onnx import TensorProto, helper

    from snnc.export.partition import PartitionedNet

    # a foreign but valid ONNX model without snnc metadata, and a broken one
    node = helper.make_node("Relu", ["a"], ["b"])
    g = helper.make_graph(
        [node],
        "foreign",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(g), str(tmp_path / "foreign.onnx"))
    (tmp_path / "broken.onnx").write_bytes(b"garbage" * 10)
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"format": "nope"}))
    with pytest.raises(SnncError, match="not an snnc partition manifest"):
        PartitionedNet(manifest)
    manifest.write_text("{not json")
    with pytest.raises(SnncError, match="cannot read partition manifest"):
        PartitionedNet(manifest)


# --------------------------------------------------------------------------- energy
def test_energy_digits_model_on_stereo_data_subprocess(good):
    assert_user_error(run_snnc("energy", "snasnet-cifar10", "--data", good, "--frames", "1", subprocess=True), "stereo")


def test_energy_stereo_model_on_digits(capsys, monkeypatch):
    assert_user_error(
        snnc_inproc(capsys, monkeypatch, "energy", "spikedhs-stereo", "--data", "digits"),
        "stereo network cannot run on digits",
    )


@pytest.mark.parametrize("family", [[], {}, ["spikedhs-stereo"], 3])
def test_genotype_family_of_wrong_type(family):
    """Regression: an unhashable 'family' (a list) used to raise TypeError from the dict lookup."""
    from snnc.models.genotype import genotype_from_dict

    with pytest.raises(SnncError, match="'family' must be a string"):
        genotype_from_dict({**_PRESET, "family": family}, "fam.json")
