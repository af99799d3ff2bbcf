"""Standard MVSEC indoor_flying splits (DDES, Tulyakov et al. ICCV 2019; reused by SpikeDHS).

Frames kept per sequence are indices into ``depth_image_rect``. Split ``s``
tests on ``indoor_flying{s}``: its test-filtered frames are shuffled with seed 0,
the first 200 become validation and the rest test; the other two sequences,
train-filtered and in frame order, are the training set.

Shuffle semantics: the DDES reference code shuffles with Python's ``random``
module (``random.seed(0); random.shuffle(examples)`` on the list of frames in
order, Python 3.6), so ``shuffle='python'`` (the default) reproduces the
published validation/test membership exactly via ``random.Random(0).shuffle``
(same Mersenne Twister seeding and ``_randbelow`` Fisher-Yates in every Python
3 release since 3.2). ``shuffle='numpy'`` uses ``np.random.RandomState(0).shuffle``
(identical to ``np.random.seed(0); np.random.shuffle``) for code bases that
follow that convention; it gives other members.
"""

from __future__ import annotations

import random

import numpy as np

from snnc.errors import SnncError

SEQUENCES: tuple[str, ...] = ("indoor_flying1", "indoor_flying2", "indoor_flying3")

#: Frames used for validation/test (those of Zhu et al., "Realtime time synchronized event-based stereo").
TEST_FILTERS: dict[str, range] = {
    "indoor_flying1": range(140, 1201),
    "indoor_flying2": range(120, 1421),
    "indoor_flying3": range(73, 1616),
}
#: Frames used for training (DDES drops still frames at the ends).
TRAIN_FILTERS: dict[str, range] = {
    "indoor_flying1": range(80, 1260),
    "indoor_flying2": range(160, 1580),
    "indoor_flying3": range(125, 1815),
}
VALIDATION_SIZE: int = 200
SEED: int = 0

#: split -> (test sequence, training sequences)
SPLITS: dict[int, tuple[str, tuple[str, ...]]] = {
    1: ("indoor_flying1", ("indoor_flying2", "indoor_flying3")),
    3: ("indoor_flying3", ("indoor_flying1", "indoor_flying2")),
}
PARTS: tuple[str, ...] = ("train", "val", "test")
SHUFFLES: tuple[str, ...] = ("python", "numpy")


def shuffled_test_frames(sequence: str, *, shuffle: str = "python", seed: int = SEED) -> list[int]:
    """The test-filtered frames of ``sequence`` in shuffled order."""
    if sequence not in TEST_FILTERS:
        raise SnncError(f"unknown sequence {sequence!r}, expected one of {', '.join(SEQUENCES)}")
    frames = list(TEST_FILTERS[sequence])
    if shuffle == "python":
        random.Random(seed).shuffle(frames)
    elif shuffle == "numpy":
        arr = np.array(frames)
        np.random.RandomState(seed).shuffle(arr)
        frames = [int(v) for v in arr]
    else:
        raise SnncError(f"unknown shuffle {shuffle!r}, expected one of {', '.join(SHUFFLES)}")
    return frames


def split_indices(split: int, part: str, *, shuffle: str = "python", seed: int = SEED) -> list[tuple[str, int]]:
    """``(sequence_name, depth_index)`` pairs of ``part`` ('train', 'val' or 'test') of ``split`` (1 or 3).

    Training pairs are in sequence then frame order; validation and test pairs
    are in shuffled order (as DDES iterates them). Sizes: split 1 3110/200/861,
    split 3 2600/200/1343.
    """
    if split not in SPLITS:
        raise SnncError(f"unknown split {split!r}, expected one of {', '.join(map(str, SPLITS))}")
    if part not in PARTS:
        raise SnncError(f"unknown split part {part!r}, expected one of {', '.join(PARTS)}")
    test_seq, train_seqs = SPLITS[split]
    if part == "train":
        return [(seq, k) for seq in train_seqs for k in TRAIN_FILTERS[seq]]
    frames = shuffled_test_frames(test_seq, shuffle=shuffle, seed=seed)
    chosen = frames[:VALIDATION_SIZE] if part == "val" else frames[VALIDATION_SIZE:]
    return [(test_seq, k) for k in chosen]
