"""Data-parallel training and search on 2 gloo ranks (CPU): ranks agree, and agree with one process."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from _dist_jobs import HNS, PLAIN, TPS_DGS, _inputs, every_job, search_jobs, train_jobs
from _dist_util import run_ranks
from snnc.errors import SnncError
from snnc.train.distributed import Shard

from cli_helpers import ROOT, run_snnc, run_snnc_in_process

#: Tests that start 2 processes (~20-90 s each on the shared 2 cores, more under load).
slow = pytest.mark.slow


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


# --------------------------------------------------------------------------- pure helpers
def test_shard_bounds_cover_the_batch_and_weights_average_to_one():
    for n in (2, 25, 50, 51):
        parts = [Shard(r, 2).bounds(n) for r in range(2)]
        assert parts[0][0] == 0 and parts[0][1] == parts[1][0] and parts[1][1] == n
        assert sum(Shard(r, 2).weight(n) for r in range(2)) / 2 == pytest.approx(1.0)
    assert Shard(0, 1).weight(7) == 1.0
    with pytest.raises(SnncError, match="global batch and must split evenly over the 2 processes"):
        Shard(0, 2).check_batch(51)


def test_failure_line_names_the_rank_that_was_killed_not_the_ones_stopped():
    from types import SimpleNamespace

    from snnc.train.launch import _failure_line

    def failed(**codes):
        return SimpleNamespace(failures={int(r[1:]): SimpleNamespace(exitcode=c) for r, c in codes.items()})

    assert _failure_line(failed(r0=3, r1=-9)) == "rank 1 was killed by signal 9"
    assert _failure_line(failed(r0=143, r1=1)) == "rank 1 exited with code 1"
    assert _failure_line(failed(r0=2, r1=2)) == ""  # they printed their own line


# --------------------------------------------------------------------------- one process group for every rank check
@pytest.fixture(scope="module")
def on_two_ranks(tmp_path_factory):
    """One start of two ranks for the training, search and stereo jobs: :func:`_dist_jobs.every_job`. The data
    is written here, before the ranks start, and the modules the jobs import are imported here, once: the ranks
    are forked from this process (:func:`_dist_util.run_ranks`), and this process runs the same jobs next."""
    import importlib

    import matplotlib

    from snnc.data.synth import synthesize

    matplotlib.use("Agg")  # what the run files' plots select
    for name in ("torch._dynamo", "matplotlib.pyplot", "snnc.train.trainer", "snnc.nas.snasnet_search"):
        importlib.import_module(name)  # torch._dynamo: every optimizer's first construction imports it
    root = tmp_path_factory.mktemp("ddp")
    _inputs(root / "two")
    recording = root / "tiny_data.hdf5"
    synthesize(recording, frames=8, height=24, width=36, progress=False)  # 3 training windows: batches 2 + 1
    runs = [("plain", PLAIN), ("tps", TPS_DGS), ("hns", HNS)]
    return root, run_ranks(every_job, root / "two", runs, str(recording))


# --------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def trained(on_two_ranks, tmp_path_factory):
    """Two ranks train three runs (plain, TPS + DGS, HNS); one process trains the plain and TPS + DGS runs."""
    root, ranks = on_two_ranks
    single = train_jobs(tmp_path_factory.mktemp("ddp_one"), [("plain", PLAIN), ("tps", TPS_DGS)])
    return root, [r["train"] for r in ranks], single


@slow
def test_every_rank_holds_the_same_parameters_and_batchnorm_buffers(trained):
    _, ranks, _ = trained
    for run in range(3):
        a, b = ranks[0][run], ranks[1][run]
        assert (a["world"], b["world"]) == (2, 2)
        _same_state(a["state"], b["state"])  # weights and BN running mean/var/count, bit for bit
        assert any(k.endswith("running_var") for k in a["state"])


@slow
def test_architecture_parameters_and_decisions_agree(trained):
    _, ranks, _ = trained
    for run in (1, 2):  # TPS + DGS, HNS
        a, b = ranks[0][run], ranks[1][run]
        assert a["alphas"].keys() == b["alphas"].keys()
        for k in a["alphas"]:
            assert torch.equal(a["alphas"][k], b["alphas"][k]), k
        assert a["mix"]["records"] == b["mix"]["records"] and a["mix"]["records"]
        assert a["genotype"] == b["genotype"]
    assert ranks[0][1]["dgs"] == ranks[1][1]["dgs"] and len(ranks[0][1]["dgs"]) == 2


@slow
def test_rank0_writes_the_run_with_world_size(trained):
    root, ranks, _ = trained
    assert ranks[1][0]["metrics"] is None  # only rank 0 finishes the run
    metrics = json.loads((root / "two" / "plain" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["batch_size"] == 50 and metrics["batch_size_per_rank"] == 25
    assert metrics == json.loads(json.dumps(ranks[0][0]["metrics"]))
    assert (root / "two" / "plain" / "folded.pt").is_file()


@slow
def test_two_ranks_match_one_process_at_the_same_global_batch(trained):
    """Same global batches, global-batch BatchNorm, weighted shard losses: the same training up to float
    summation order (parameters within 1e-3 after 2 epochs, accuracy within 1 point)."""
    _, ranks, single = trained
    for run in (0, 1):
        two, one = ranks[0][run], single[run]
        assert one["world"] == 1
        diff = _max_diff(two["state"], one["state"])
        assert diff < 1e-3, diff
        assert abs(two["metrics"]["test_accuracy"] - one["metrics"]["test_accuracy"]) <= 0.01
    assert ranks[0][1]["genotype"] == single[1]["genotype"]  # same TPS/DGS decisions


# --------------------------------------------------------------------------- search
@pytest.fixture(scope="module")
def searched(on_two_ranks, tmp_path_factory):
    """Two ranks and one process run the same SNASNet search (10 candidates) and bi-level steps."""
    _, ranks = on_two_ranks
    single = search_jobs(tmp_path_factory.mktemp("search_one"))
    return [r["search"] for r in ranks], single


@slow
def test_snasnet_sharded_search_has_the_single_process_winner(searched):
    ranks, single = searched
    assert ranks[0]["snasnet"]["scored"] == ranks[1]["snasnet"]["scored"] == 10
    assert ranks[0]["snasnet"]["best"] == ranks[1]["snasnet"]["best"] == single["snasnet"]["best"]
    assert ranks[0]["snasnet"]["scores"] == single["snasnet"]["scores"]  # every score, in order


@slow
def test_bilevel_alphas_agree_on_every_rank_after_every_step(searched):
    ranks, single = searched
    a, b = ranks[0]["bilevel"], ranks[1]["bilevel"]
    assert len(a["alphas"]) == len(b["alphas"]) == 6
    for x, y in zip(a["alphas"], b["alphas"], strict=True):
        assert torch.equal(x, y)
    _same_state(a["weights"], b["weights"])
    assert float((a["alphas"][-1] - single["bilevel"]["alphas"][-1]).abs().max()) < 1e-4


# --------------------------------------------------------------------------- the CLI: --nproc and torchrun
def _subset(tmp_path, n_train=125):
    return _inputs(tmp_path, n_train)


@slow
def test_nproc_batch_that_does_not_split_is_one_error_line(tmp_path):
    arch, data = _subset(tmp_path)
    r = run_snnc(
        "train",
        "--arch",
        arch,
        "--data",
        data,
        "--epochs",
        "1",
        "--steps",
        "2",
        "--batch-size",
        "51",
        "--threads",
        "1",
        "--quiet",
        "--nproc",
        "2",
        "--out",
        tmp_path / "run",
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "snnc: error: --batch-size 51 is the global batch and must split evenly over the 2 processes "
        "(use a multiple of 2)"
    ]


def _rank_pids(out: str, rank: int) -> list[int]:
    """Processes of a launched run on ``out`` whose environment says RANK=rank."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if out.encode() in cmd and f"RANK={rank}".encode() in env and b"TORCHELASTIC_RUN_ID" in b"".join(env):
            pids.append(int(entry))
    return pids


def _kill_rank_after_first_checkpoint(out: str, checkpoint: Path, done: threading.Event, killed: list) -> None:
    """Wait for ``checkpoint`` (polling every 0.1 s), then SIGKILL the one process of rank 1; ``killed`` gets
    its pid, or a string saying why nothing was killed. Stops when ``done`` is set (the run ended first)."""
    deadline = time.time() + 400
    while not checkpoint.exists():
        if done.is_set() or time.time() > deadline:
            killed.append("no checkpoint before the run ended" if done.is_set() else "no checkpoint within 400 s")
            return
        time.sleep(0.1)
    victims = _rank_pids(out, 1)
    if len(victims) != 1:
        killed.append(f"rank 1 processes: {victims}")
        return
    os.kill(victims[0], signal.SIGKILL)
    killed.append(victims[0])


@slow
def test_kill_of_a_rank_then_resume_finishes_the_run(tmp_path):
    """SIGKILL rank 1 after the first checkpoint: the launcher stops rank 0 and says so in one line;
    --resume (2 processes again) continues from rank 0's checkpoint to the end.

    The launcher runs in this process (as the --resume does; its ranks are real processes), a thread
    kills rank 1: one Python start fewer than a launcher subprocess, the same launcher code and output."""
    arch, data = _subset(tmp_path, n_train=325)  # 7 batches an epoch: the kill lands before the 6th epoch ends
    out = str(tmp_path / "run")
    args = [
        "train",
        "--arch",
        str(arch),
        "--data",
        str(data),
        "--epochs",
        "6",
        "--steps",
        "2",
        "--batch-size",
        "50",
        "--lr",
        "0.1",
        "--threads",
        "1",
        "--quiet",
        "--nproc",
        "2",
        "--out",
        out,
    ]
    ended, killed = threading.Event(), []
    killer = threading.Thread(
        target=_kill_rank_after_first_checkpoint, args=(out, tmp_path / "run" / "checkpoint.pt", ended, killed)
    )
    killer.start()
    try:
        run = run_snnc_in_process(*args)  # in-process launcher, two rank processes
    finally:
        ended.set()
        killer.join()
    assert len(killed) == 1 and isinstance(killed[0], int), (killed, run)
    assert run.returncode == 2, run
    last = run.stderr.strip().splitlines()[-1]  # the launcher's own (the ranks wrote to file descriptor 2)
    assert last.startswith("snnc: error: distributed run failed: rank 1 was killed by signal 9"), run
    done = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["epoch"]
    assert 1 <= done < 6
    r = run_snnc("train", "--out", out, "--resume", "--nproc", "2", "--quiet")  # in-process launcher
    assert r.returncode == 0, r.stderr
    assert f"resuming after epoch {done}" in r.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs"] == 6
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5, 6]


@slow
def test_torchrun_runs_python_m_snnc_train(tmp_path, capfd, monkeypatch):
    """The stock launcher with snnc as its module: world_size 2 in metrics.json.

    ``torchrun`` is the console script of :func:`torch.distributed.run.main`; it runs here in this process (the
    ranks it starts, ``python -m snnc train``, are real processes): one Python start fewer than the script."""
    from torch.distributed.run import main as torchrun

    arch, data = _subset(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.chdir(ROOT)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    capfd.readouterr()
    try:
        torchrun(
            [
                "--nproc-per-node",
                "2",
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                "127.0.0.1:0",
                "--local-addr",
                "127.0.0.1",
                "-m",
                "snnc",
                "train",
                "--arch",
                str(arch),
                "--data",
                str(data),
                "--epochs",
                "1",
                "--steps",
                "2",
                "--batch-size",
                "50",
                "--threads",
                "1",
                "--quiet",
                "--out",
                str(tmp_path / "run"),
            ]
        )
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    stdout, stderr = capfd.readouterr()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["world_size"] == 2, stderr[-3000:]
    assert stdout.count("final: test accuracy") == 1  # rank 0 prints, rank 1 stays quiet


@slow
def test_stereo_training_on_two_ranks_keeps_them_equal(on_two_ranks):
    """Stereo batches split along their window dimension (x is (T, B, ...)); one window per rank."""
    ranks = [r["stereo"] for r in on_two_ranks[1]]
    assert ranks[0]["world"] == 2 and ranks[1]["metrics"] is None
    _same_state(ranks[0]["state"], ranks[1]["state"])
    assert ranks[0]["metrics"]["world_size"] == 2 and "one_pixel_accuracy" in ranks[0]["metrics"]
