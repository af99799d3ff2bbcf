"""Data-parallel training and search on 2 gloo ranks (CPU): ranks agree, and agree with one process."""
from __future__ import annotations

import json

import pytest
import torch

from snnc.errors import SnncError
from snnc.train.distributed import Shard
from _dist_jobs import HNS, PLAIN, TPS_DGS, search_jobs, train_jobs
from _dist_util import run_ranks
from _spikedhs_util import single_thread  # noqa: F401  (one intra-op thread for the module)

pytestmark = pytest.mark.slow  # each fixture starts 2 processes (~10-30 s on the shared 2 cores)


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


# --------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two ranks train three runs (plain, TPS + DGS, HNS); one process trains the plain and TPS + DGS runs."""
    root = tmp_path_factory.mktemp("ddp")
    runs = [("plain", PLAIN), ("tps", TPS_DGS), ("hns", HNS)]
    ranks = run_ranks(train_jobs, root / "two", runs)
    single = train_jobs(root / "one", runs[:2])
    return root, ranks, single


def test_every_rank_holds_the_same_parameters_and_batchnorm_buffers(trained):
    _, ranks, _ = trained
    for run in range(3):
        a, b = ranks[0][run], ranks[1][run]
        assert (a["world"], b["world"]) == (2, 2)
        _same_state(a["state"], b["state"])  # weights and BN running mean/var/count, bit for bit
        assert any(k.endswith("running_var") for k in a["state"])


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


def test_rank0_writes_the_run_with_world_size(trained):
    root, ranks, _ = trained
    assert ranks[1][0]["metrics"] is None  # only rank 0 finishes the run
    metrics = json.loads((root / "two" / "plain" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["batch_size"] == 50 and metrics["batch_size_per_rank"] == 25
    assert metrics == json.loads(json.dumps(ranks[0][0]["metrics"]))
    assert (root / "two" / "plain" / "folded.pt").is_file()


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
def searched(tmp_path_factory):
    """Two ranks and one process run the same SNASNet search (10 candidates) and bi-level steps."""
    root = tmp_path_factory.mktemp("search")
    ranks = run_ranks(search_jobs, root / "two")
    single = search_jobs(root / "one")
    return ranks, single


def test_snasnet_sharded_search_has_the_single_process_winner(searched):
    ranks, single = searched
    assert ranks[0]["snasnet"]["scored"] == ranks[1]["snasnet"]["scored"] == 10
    assert ranks[0]["snasnet"]["best"] == ranks[1]["snasnet"]["best"] == single["snasnet"]["best"]
    assert ranks[0]["snasnet"]["scores"] == single["snasnet"]["scores"]  # every score, in order


def test_bilevel_alphas_agree_on_every_rank_after_every_step(searched):
    ranks, single = searched
    a, b = ranks[0]["bilevel"], ranks[1]["bilevel"]
    assert len(a["alphas"]) == len(b["alphas"]) == 6
    for x, y in zip(a["alphas"], b["alphas"]):
        assert torch.equal(x, y)
    _same_state(a["weights"], b["weights"])
    assert float((a["alphas"][-1] - single["bilevel"]["alphas"][-1]).abs().max()) < 1e-4
