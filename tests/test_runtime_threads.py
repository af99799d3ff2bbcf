"""Thread count 0 means torch's count for every runtime snnc starts (one thread setting per process)."""

from __future__ import annotations

import pytest
import torch

from snnc.export.ort_options import runtime_threads, session_options


@pytest.mark.parametrize("n", [1, 2])
def test_zero_follows_torch_and_a_given_count_wins(n):  # conftest gives the next test one thread again
    torch.set_num_threads(n)
    assert runtime_threads(0) == runtime_threads(None) == n
    assert runtime_threads(3) == 3
    opts = session_options(0)
    assert opts.intra_op_num_threads == n
    if n > 1:  # spinning off whenever more than one thread
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_openvino_gets_the_same_count():
    pytest.importorskip("openvino")
    from snnc.runtime.openvino_backend import openvino_config

    torch.set_num_threads(1)
    assert openvino_config(0)["INFERENCE_NUM_THREADS"] == 1
    assert openvino_config(2)["INFERENCE_NUM_THREADS"] == 2
