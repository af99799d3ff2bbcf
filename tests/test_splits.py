"""Standard indoor_flying splits 1 and 3 (DDES protocol)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from snnc.data.splits import TEST_FILTERS, TRAIN_FILTERS, split_indices
from snnc.errors import SnncError


@pytest.mark.parametrize("split,sizes", [(1, (3110, 200, 861)), (3, (2600, 200, 1343))])
def test_sizes(split, sizes):
    parts = [split_indices(split, part) for part in ("train", "val", "test")]
    assert tuple(len(p) for p in parts) == sizes
    train, val, test = parts
    assert not set(val) & set(test)
    test_seq = {1: "indoor_flying1", 3: "indoor_flying3"}[split]
    assert {s for s, _ in val + test} == {test_seq}
    assert sorted(k for _, k in val + test) == list(TEST_FILTERS[test_seq])
    assert test_seq not in {s for s, _ in train}
    assert len(set(train)) == len(train)


def test_train_order_and_filters():
    train = split_indices(1, "train")
    assert train[0] == ("indoor_flying2", 160) and train[1419] == ("indoor_flying2", 1579)
    assert train[1420] == ("indoor_flying3", 125) and train[-1] == ("indoor_flying3", 1814)
    train3 = split_indices(3, "train")
    assert [k for s, k in train3 if s == "indoor_flying1"] == list(TRAIN_FILTERS["indoor_flying1"])


def test_python_shuffle_reproduces_ddes_code():
    # DDES: random.seed(0); random.shuffle(examples) on the frames in order.
    state = random.getstate()
    try:
        random.seed(0)
        frames = list(range(140, 1201))
        random.shuffle(frames)
    finally:
        random.setstate(state)
    assert [k for _, k in split_indices(1, "val")] == frames[:200]
    assert [k for _, k in split_indices(1, "test")] == frames[200:]
    assert frames[:5] == [194, 1061, 877, 165, 419]  # pinned: must never change
    assert [k for _, k in split_indices(3, "val")][:5] == [492, 843, 87, 227, 1507]


def test_numpy_shuffle_semantics():
    frames = list(range(140, 1201))
    np.random.RandomState(0).shuffle(frames)  # the legacy global seed(0) + shuffle sequence
    val = [k for _, k in split_indices(1, "val", shuffle="numpy")]
    assert val == frames[:200]
    assert val != [k for _, k in split_indices(1, "val")]
    assert len(split_indices(3, "test", shuffle="numpy")) == 1343


def test_bad_arguments():
    with pytest.raises(SnncError, match="unknown split 2"):
        split_indices(2, "train")
    with pytest.raises(SnncError, match="part 'dev'"):
        split_indices(1, "dev")
    with pytest.raises(SnncError, match="shuffle"):
        split_indices(1, "val", shuffle="torch")
