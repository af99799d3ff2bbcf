"""The install step's lava source fix is applied, and Lava really simulates."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import patch_lava


def test_patch_rewrites_instance_defaults_idempotently() -> None:
    src = (
        "from dataclasses import dataclass, InitVar\n"
        "@dataclass\nclass A:\n    x: ByteEncoder = ByteEncoder()\n    core: CoreEncoder = CoreEncoder()\n"
    )
    once, n1 = patch_lava.patch_source(src)
    twice, n2 = patch_lava.patch_source(once)
    assert n1 == 2 and n2 == 0 and once == twice
    assert "x: ByteEncoder = field(default_factory=ByteEncoder)" in once
    assert "core: CoreEncoder = field(default_factory=CoreEncoder)" in once
    assert "from dataclasses import dataclass, field, InitVar" in once


def test_installed_lava_is_patched() -> None:
    text = patch_lava.var_model_path().read_text()
    _, remaining = patch_lava.patch_source(text)
    assert remaining == 0
    assert "default_factory=ByteEncoder" in text
    import lava.magma.compiler.var_model  # noqa: F401  (raises on 3.11 without the fix)


@pytest.mark.lava
def test_lava_simulates_integrate_and_fire() -> None:
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    steps = 12
    src = Source(data=np.ones((2, steps)))
    dense = Dense(weights=np.diag([0.3, 0.55]))
    lif = LIF(shape=(2,), du=1.0, dv=0.0, vth=1.0, bias_mant=0)  # IF neurons, current = input
    sink = Sink(shape=(2,), buffer=steps)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    try:
        lif.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        out = sink.data.get()
    finally:
        lif.stop()
    # Hand computation: v accumulates w each step, spikes when v > 1 and resets to 0;
    # w=0.3 fires every 4th step, w=0.55 every 2nd; Lava's dense->LIF->sink path adds one step.
    expected = np.zeros((2, steps))
    expected[0, [4, 8]] = 1
    expected[1, [2, 4, 6, 8, 10]] = 1
    np.testing.assert_array_equal(out, expected)
    assert importlib.util.find_spec("lava.lib.dl.netx") is not None
