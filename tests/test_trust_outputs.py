"""Outputs are all or nothing (issue 14): signals, full and read-only disks, sets, --force, input == output, locks.

Each test asserts the message, the exit code and the files left. The disk tests
mount a small tmpfs (root only; skipped with the reason otherwise).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from snnc.errors import SnncError
from snnc.fileio import atomic_output, write_failure
from snnc.outputs import LEDGER_NAME, OutputLock, is_recorded
from snnc.signals import Terminated

from _export_util import SMALL_STEREO, small_genotype, write_genotype
from _stream_util import small_stereo_json
from cli_helpers import ROOT, assert_user_error, expect_ok, run_snnc

TRAIN_ARGS = ("--steps", "2", "--batch-size", "30", "--threads", "1", "--quiet")


def _temps(folder: Path) -> list[Path]:
    """Temporary output files snnc may have left (``.NAME.XXXX.tmp``) and lock files."""
    return [p for p in folder.rglob(".*") if p.name.endswith(".tmp") or p.name.endswith(".snnc-lock")]


def _popen(*args: object) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("SNNC_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "snnc", *map(str, args)],
        cwd=str(ROOT),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended early ({proc.returncode}): {out[-2000:]} {err[-2000:]}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("timed out waiting for the process")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def tiny_train(tmp_path_factory) -> tuple[str, ...]:
    """``snnc train`` arguments of a tiny classifier on a 60-image digits subset (about a second per epoch)."""
    from _train_util import digits_subset, tiny_genotype

    folder = tmp_path_factory.mktemp("tiny")
    data = digits_subset(folder / "digits", n_train=60, n_test=30)
    arch = tiny_genotype(folder / "tiny.json", filter_multiplier=2)
    return ("train", "--arch", str(arch), "--data", str(data), *TRAIN_ARGS)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> dict[str, Path]:
    """A small MVSEC-layout pair (8 depth frames, 32 x 48, random events; plain h5py), a small stereo genotype and a
    small classifier genotype (what these tests export: the write paths, not a network, are under test)."""
    from _mvsec_h5 import write_recording

    folder = tmp_path_factory.mktemp("rec")
    data = write_recording(folder, "rec", n=4000, n_depth=8, height=32, width=48, duration=0.8)
    return {
        "data": data,
        "gt": folder / "rec_gt.hdf5",
        "model": small_stereo_json(folder),
        "cla": write_genotype(small_genotype("spikedhs-cla", filter_multiplier=2), folder / "cla.json"),
        "seq": write_genotype(small_genotype("sequential-dvs", image_size=16), folder / "seq.json"),
    }


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory) -> Path:
    """400 frames (20 s): a stream of it runs far longer than the wait for its temporary file."""
    from _mvsec_h5 import write_recording

    return write_recording(
        tmp_path_factory.mktemp("long"), "long", n=40000, n_depth=400, height=32, width=48, duration=20.0
    )


# ------------------------------------------------------------------------------------------- signals
@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_termination_signal_removes_the_temporary_file_and_exits_128_plus_n(
    recording, long_recording, tmp_path, sig, code
):
    """``stream --out`` holds a temporary results file while it runs; the signal removes it."""
    out = tmp_path / "results.h5"
    proc = _popen(
        "stream",
        long_recording,
        "--model",
        recording["model"],
        "--out",
        out,
        "--quiet",
        "--threads",
        "1",
        "--no-energy",
    )
    _wait_for(
        lambda: any(p.name.startswith(".results.h5.") and p.name.endswith(".tmp") for p in tmp_path.iterdir()), proc
    )
    proc.send_signal(sig)
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == code, (proc.returncode, stdout[-1000:], err)
    assert err.strip().splitlines() == [f"snnc: terminated ({signal.Signals(sig).name})"], err
    assert sorted(tmp_path.iterdir()) == [], sorted(tmp_path.iterdir())  # no .tmp, no lock, no results.h5


def test_an_interrupt_inside_atomic_output_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(Terminated), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise Terminated(signal.SIGTERM)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


# ------------------------------------------------------------------------------------------- disks
def _mount_tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (full / read-only disk tests)")
    path.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")


@pytest.fixture
def full_disk(tmp_path) -> Iterator[Path]:
    """A 256 KiB tmpfs filled up to a few KiB."""
    fs = tmp_path / "full"
    _mount_tmpfs(fs, "256k")
    try:
        free = os.statvfs(fs).f_bavail * os.statvfs(fs).f_frsize
        (fs / "filler").write_bytes(b"\0" * (free - 8192))
        yield fs
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=False)


@pytest.fixture
def read_only_disk(tmp_path) -> Iterator[Path]:
    fs = tmp_path / "ro"
    _mount_tmpfs(fs, "1m")
    try:
        (fs / "keep.txt").write_text("kept")
        res = subprocess.run(["mount", "-o", "remount,ro", str(fs)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot remount the tmpfs read-only: {res.stderr.strip()}")
        yield fs
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=False)


@pytest.mark.slow
def test_stream_out_on_a_full_disk_is_one_line_not_a_segfault(recording, full_disk):
    out = full_disk / "r.h5"
    proc = run_snnc(
        "stream",
        recording["data"],
        "--model",
        recording["model"],
        "--out",
        out,
        "--quiet",
        "--threads",
        "1",
        "--no-energy",
        subprocess=True,
        timeout=300,
    )
    assert_user_error(proc, str(out), "cannot write", "No space left on device")
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


@pytest.mark.slow
def test_png_dir_on_a_full_disk(recording, full_disk):
    pngs = full_disk / "pngs"
    proc = run_snnc(
        "stream",
        recording["data"],
        "--model",
        recording["model"],
        "--png-dir",
        pngs,
        "--quiet",
        "--threads",
        "1",
        "--no-energy",
        "--frames",
        "8",
    )
    assert_user_error(proc, str(pngs / "frame_"), "No space left on device")
    assert not _temps(full_disk)


@pytest.mark.slow
def test_export_and_train_on_a_full_disk(full_disk, tiny_train, recording):
    for fmt, source, name in (
        ("onnx", recording["cla"], "net.onnx"),  # 150 KB
        ("nir", recording["cla"], "net.nir"),  # 1.6 MB
        ("lava", recording["seq"], "net.h5"),  # 300 KB: each far more than the 8 KiB left
    ):
        proc = run_snnc("export", source, "--to", fmt, "--out", full_disk / name, subprocess=fmt != "onnx")
        assert_user_error(proc, str(full_disk / name), "No space left on device")  # HDF5 writers: no segfault
    out = full_disk / "net.onnx"
    run = full_disk / "run"
    proc = run_snnc(*tiny_train, "--epochs", "1", "--out", run)
    assert_user_error(proc, str(run), "No space left on device")
    assert not _temps(full_disk) and not out.exists()


def test_read_only_disk(recording, read_only_disk, tiny_train):
    ro = read_only_disk
    for args, target in (
        (
            (
                "stream",
                recording["data"],
                "--model",
                recording["model"],
                "--out",
                ro / "r.h5",
                "--quiet",
                "--no-energy",
            ),
            ro / "r.h5",
        ),
        (("export", "spikedhs-cla", "--to", "onnx", "--out", ro / "n.onnx"), ro / "n.onnx"),
        ((*tiny_train, "--epochs", "1", "--out", ro / "run"), ro / "run"),
        (
            ("data", "synth", ro / "s_data.hdf5", "--frames", "1", "--height", "16", "--width", "16", "--quiet"),
            ro / "s_data.hdf5",
        ),
    ):
        assert_user_error(run_snnc(*args), str(target), "Read-only file system")
    assert sorted(p.name for p in ro.iterdir()) == ["keep.txt"]


def test_write_failure_reads_errno_from_h5py_and_torch_messages(tmp_path):
    h5_text = OSError("Can't close file (file write failed: errno = 28, error message = 'No space left on device')")
    assert write_failure(h5_text, tmp_path / "x.h5") == os.strerror(errno.ENOSPC)
    assert write_failure(OSError(errno.EROFS, "ro"), tmp_path / "x") == os.strerror(errno.EROFS)
    assert write_failure(ValueError("a bug, not the disk"), tmp_path / "x") is None
    other = OSError(errno.EACCES, "denied", str(tmp_path / "some_input.h5"))
    assert write_failure(other, tmp_path / "out.h5") is None  # an input's problem is not a write failure


# ------------------------------------------------------------------------------------------- sets
@pytest.mark.slow
def test_a_partition_set_renamed_half_way_is_refused_on_read(tmp_path, monkeypatch):
    from snnc.export.lower import lower
    from snnc.export.partition import PartitionedNet, write_partition
    from snnc.models.build import build_model
    from snnc.models.fold import fold_bn

    def graph(seed: int):
        import torch

        torch.manual_seed(seed)
        net = fold_bn(build_model(small_genotype("spikedhs-stereo", **SMALL_STEREO)).eval()).eval()
        return lower(net, (1, 2, 5, 24, 36))

    manifest = tmp_path / "net.json"
    doc = write_partition(graph(0), manifest)
    assert {"size", "sha256"} <= set(doc["pieces"][1]) and doc["set_id"]
    PartitionedNet(manifest)  # the complete set reads
    real_replace = os.replace

    def failing_replace(src, dst):  # the manifest (renamed last) cannot be renamed: pieces new, manifest old
        if Path(dst) == manifest:
            raise OSError(errno.EIO, "Input/output error", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(SnncError, match="cannot write: Input/output error"):
        write_partition(graph(1), manifest)
    monkeypatch.setattr(os, "replace", real_replace)
    assert json.loads(manifest.read_text()) == doc and not _temps(tmp_path)
    with pytest.raises(SnncError, match="stale or partial") as info:
        PartitionedNet(manifest)
    assert "net.front.nir" in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "net.front.nir").unlink()
    with pytest.raises(SnncError, match="missing"):
        PartitionedNet(manifest)


def test_a_synth_pair_renamed_half_way_is_refused_on_open(tmp_path, monkeypatch):
    from snnc.data.mvsec import MVSECRecording
    from snnc.data.synth import synthesize

    small = {"frames": 2, "height": 16, "width": 24, "progress": False}
    data, gt = synthesize(tmp_path / "p_data.hdf5", seed=0, **small)
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == data:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(SnncError, match=r"p_data.hdf5: cannot write: No space left on device"):
        synthesize(data, seed=1, force=True, **small)
    monkeypatch.setattr(os, "replace", real_replace)
    assert not _temps(tmp_path)
    with pytest.raises(SnncError, match="stale or partial") as info:
        MVSECRecording(data)
    assert str(gt) in str(info.value)


# ------------------------------------------------------------------------------------------- --force
def test_train_force_keeps_a_users_file_named_like_a_run_file(tmp_path, tiny_train):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("my numbers")
    (run / "notes.txt").write_text("mine")
    assert_user_error(
        run_snnc(*tiny_train, "--epochs", "1", "--out", run, "--force"),
        str(run / "metrics.csv"),
        "was not written by snnc",
    )
    assert (run / "metrics.csv").read_text() == "my numbers"
    (run / "metrics.csv").unlink()
    expect_ok(run_snnc(*tiny_train, "--epochs", "1", "--out", run, "--force"))
    assert is_recorded(run / "checkpoint.pt") and is_recorded(run / "metrics.csv")
    expect_ok(run_snnc(*tiny_train, "--epochs", "1", "--out", run, "--force"))  # its own files: replaced
    assert (run / "notes.txt").read_text() == "mine" and not _temps(tmp_path)
    (run / "folded.pt").write_bytes(b"edited by the user")
    assert_user_error(
        run_snnc(*tiny_train, "--epochs", "1", "--out", run, "--force"), str(run / "folded.pt"), "changed since"
    )
    assert (run / "folded.pt").read_bytes() == b"edited by the user"


def test_demo_force_keeps_a_users_files_in_train_and_artefact_names(tmp_path):
    out = tmp_path / "demo"
    (out / "train").mkdir(parents=True)
    (out / "train" / "my_notes.txt").write_text("mine")
    (out / "results.h5").write_text("not a demo result")
    (out / "earlier.txt").write_text("x")
    assert_user_error(run_snnc("demo", "--out", out, "--quick", "--force"), "was not written by snnc")
    assert (out / "train" / "my_notes.txt").read_text() == "mine"
    assert (out / "results.h5").read_text() == "not a demo result"
    assert sorted(p.name for p in out.iterdir()) == ["earlier.txt", "results.h5", "train"]


def test_search_never_overwrites_its_log_and_plot_without_force(tmp_path):
    out = tmp_path / "arch.json"
    log, plot = tmp_path / "arch.search.jsonl", tmp_path / "arch.search.png"
    log.write_text("user log")
    plot.write_bytes(b"user png")
    args = ("search", "--method", "snasnet", "--data", "digits", "--candidates", "2", "--out", out)
    assert_user_error(run_snnc(*args), str(log), "exists", "--force")
    assert_user_error(run_snnc(*args, "--force"), str(log), "was not written by snnc")
    assert log.read_text() == "user log" and plot.read_bytes() == b"user png" and not out.exists()


def test_export_partition_and_synth_force_keep_user_files(tmp_path):
    genotype = write_genotype(small_genotype("spikedhs-stereo", **SMALL_STEREO), tmp_path / "g.json")
    (tmp_path / "net.front.nir").write_bytes(b"user file")
    assert_user_error(
        run_snnc(
            "export",
            genotype,
            "--to",
            "nir",
            "--partition",
            "--out",
            tmp_path / "net.json",
            "--input-shape",
            "1,2,5,24,36",
            "--force",
        ),
        str(tmp_path / "net.front.nir"),
        "was not written by snnc",
    )
    assert (tmp_path / "net.front.nir").read_bytes() == b"user file" and not (tmp_path / "net.json").exists()
    (tmp_path / "s_gt.hdf5").write_bytes(b"real ground truth")
    synth = ("data", "synth", tmp_path / "s_data.hdf5", "--frames", "1", "--height", "16", "--width", "16", "--quiet")
    assert_user_error(run_snnc(*synth, "--force"), str(tmp_path / "s_gt.hdf5"), "was not written by snnc")
    assert (tmp_path / "s_gt.hdf5").read_bytes() == b"real ground truth" and not (tmp_path / "s_data.hdf5").exists()
    (tmp_path / "s_gt.hdf5").unlink()
    expect_ok(run_snnc(*synth))
    assert is_recorded(tmp_path / "s_gt.hdf5") and (tmp_path / LEDGER_NAME).is_file()
    expect_ok(run_snnc(*synth, "--force", "--frames", "2"))  # its own pair: replaced


# ------------------------------------------------------------------------------------------- input == output
def test_an_output_that_is_an_input_is_refused_even_with_force(recording, tmp_path):
    gt_before = recording["gt"].read_bytes()
    assert_user_error(
        run_snnc("stream", recording["data"], "--model", recording["model"], "--out", recording["gt"], "--force"),
        str(recording["gt"]),
        "is also an input",
    )
    assert recording["gt"].read_bytes() == gt_before
    ckpt = tmp_path / "x.pt"
    ckpt.write_bytes(b"a checkpoint")
    assert_user_error(run_snnc("export", ckpt, "--to", "onnx", "--out", ckpt, "--force"), str(ckpt), "is also an input")
    link = tmp_path / "hard_link.pt"
    os.link(ckpt, link)
    assert_user_error(run_snnc("export", ckpt, "--to", "onnx", "--out", link, "--force"), str(link), "is also an input")
    assert_user_error(
        run_snnc("data", "info", recording["data"], "--plot", recording["data"], "--force"), "is also an input"
    )
    assert ckpt.read_bytes() == b"a checkpoint" and recording["data"].stat().st_size > 1000
    assert not _temps(tmp_path)


# ------------------------------------------------------------------------------------------- locks
@pytest.mark.slow
def test_a_second_run_on_a_locked_output_fails_at_once(tmp_path, recording):
    out = tmp_path / "net.onnx"
    with OutputLock(out):  # what a running snnc holds beside its output
        start = time.monotonic()
        err = assert_user_error(
            run_snnc("export", recording["cla"], "--to", "onnx", "--out", out),
            str(out),
            f"is being written by another snnc run (pid {os.getpid()})",
        )
        assert time.monotonic() - start < 30, err
    assert not out.exists()
    expect_ok(run_snnc("export", recording["cla"], "--to", "onnx", "--out", out))  # released: works
    assert not _temps(tmp_path)


@pytest.mark.slow
def test_concurrent_training_runs_on_one_folder(tmp_path, tiny_train):
    run = tmp_path / "run"
    first = _popen(*tiny_train, "--epochs", "500", "--out", run)
    try:
        _wait_for(lambda: (run / "checkpoint.pt").is_file(), first)
        err = assert_user_error(
            run_snnc(*tiny_train, "--epochs", "1", "--out", run, "--force"),
            str(run),
            f"is being written by another snnc run (pid {first.pid})",
        )
        assert err
    finally:
        first.send_signal(signal.SIGTERM)
        _, first_err = first.communicate(timeout=60)
    assert first.returncode == 143 and first_err.strip().splitlines()[-1] == "snnc: terminated (SIGTERM)"
    assert not _temps(tmp_path) and is_recorded(run / "checkpoint.pt")  # the last complete epoch, recorded


def test_demo_force_removes_only_recorded_artefacts(tmp_path):
    """An earlier demo's artefacts (recorded in the ledger) go; the user's files stay; a foreign file
    under an artefact name stops the clean-up before anything is deleted."""
    from snnc.commands.demo import _prepare_out
    from snnc.outputs import record_outputs

    out = tmp_path / "demo"
    (out / "train").mkdir(parents=True)
    for name in ("results.h5", "stereo.onnx", "train/checkpoint.pt"):
        (out / name).write_bytes(b"written by an earlier demo")
    record_outputs(out, [out / "results.h5", out / "stereo.onnx", out / "train"])
    (out / "notes.txt").write_text("mine")
    (out / "stereo.onnx").write_bytes(b"edited since")  # changed: no longer snnc's
    with pytest.raises(SnncError, match="changed since"):
        _prepare_out(out, force=True)
    assert (out / "results.h5").exists() and (out / "train" / "checkpoint.pt").exists()  # nothing deleted
    (out / "stereo.onnx").unlink()
    _prepare_out(out, force=True)
    assert sorted(p.name for p in out.iterdir() if p.name != LEDGER_NAME) == ["notes.txt"]
