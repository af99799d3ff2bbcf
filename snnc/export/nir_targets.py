"""``snnc export --to nir --for CONSUMER``: what each library's stock NIR importer can run.

snnc's plain NIR export is already what SpikingJelly 2.0 and snnTorch 1.0 run bit-exact
(summed edges instead of junction nodes, Flatten dims counted from the end, dt implied by
``r = tau / dt``). ``--for`` checks a graph against one consumer's importer and refuses, in
one line naming the node and the consumer, what that importer cannot run correctly; a file
that passes runs in the consumer with the same spikes as in snnc (``tests/test_nir_interop.py``).

What each importer lacks (measured with its stock importer, nir 1.0.8):

============  ===========================================================================
spikingjelly  no Delay (feedback), Scale or SumPool2d node; LIF needs ``r`` in {1, tau/dt}
              and ``tau/dt > 1`` (no binary neuron)
snntorch      as SpikingJelly, and dt fixed at 1e-4 s; IF becomes a leaky neuron
norse         ignores LIF ``r`` (scales the input by dt/tau), no AvgPool2d, runs DAGs
              depth-first: not exact for any snnc network (refused at the first neuron)
sinabs        multi-spike neurons with subtractive reset (snnc: one spike, reset to 0),
              tau read as steps: refused at the first neuron
rockpool      no Conv2d, AvgPool2d, Flatten, Scale or Delay; reads ``tau_mem``, which
              nir.LIF lacks
============  ===========================================================================
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from snnc.errors import SnncError

__all__ = ["TARGETS", "SNNTORCH_DT", "target_blocker", "check_target"]

#: Consumers ``--for`` accepts.
TARGETS: tuple[str, ...] = ("spikingjelly", "snntorch", "norse", "sinabs", "rockpool")
#: The time step snnTorch 1.0's importer assumes (hard-coded).
SNNTORCH_DT = 1e-4

_FEEDBACK = ("a feedback loop (Delay): {c}'s importer has no Delay node, and nirtorch, which it builds on, "
             "breaks cycles at the first multi-input node instead of at the delay")


def _uniform(a: Any) -> Optional[float]:
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    return float(arr[0]) if arr.size and np.all(arr == arr[0]) else None


def _lif_blocker(node: Any, dt: float, consumer: str) -> Optional[str]:
    tau, r = _uniform(node.tau), _uniform(node.r)
    if tau is None or r is None:
        return "a LIF with parameters that vary across neurons"
    steps = tau / dt
    if not steps > 1.0 + 1e-9:
        return f"a binary neuron (tau = dt): {consumer}'s importer needs tau/dt > 1"
    if not np.isclose(r, steps, rtol=1e-6):
        return f"a neuron input gain (r = {r:g}, not tau/dt = {steps:g}): {consumer} scales the input differently"
    return None


def target_blocker(node: Any, consumer: str, dt: float) -> Optional[str]:
    """Why ``consumer``'s stock importer cannot run NIR ``node`` exactly (a phrase), or ``None``."""
    kind = type(node).__name__
    if kind in ("Input", "Output"):
        return None
    if consumer in ("spikingjelly", "snntorch"):
        if kind == "Delay":
            return _FEEDBACK.format(c=consumer)
        if kind in ("Scale", "SumPool2d"):
            return f"a {kind} node, which {consumer}'s importer does not map"
        if kind == "IF" and consumer == "snntorch":
            return "an IF neuron: snntorch's importer builds a leaky neuron with beta 0.9 from it"
        if kind == "LIF":
            return _lif_blocker(node, dt, consumer)
        return None
    if consumer == "norse":
        if kind in ("LIF", "IF"):
            return ("a LIF/IF neuron: norse.torch.from_nir ignores r (its LIF scales the input by dt/tau), so "
                    "no snnc neuron runs with the same membrane potentials")
        if kind in ("AvgPool2d", "Scale", "Delay"):
            return f"a {kind} node, which norse's importer does not map (it fails with a KeyError)"
        return None
    if consumer == "sinabs":
        if kind in ("LIF", "IF"):
            return ("a LIF/IF neuron: sinabs.from_nir builds multi-spike neurons with subtractive reset "
                    "(snnc: one spike per step, reset to zero) and reads tau as time steps")
        if kind in ("Linear", "AvgPool2d", "Scale", "Delay"):
            return f"a {kind} node, which sinabs' importer does not map"
        return None
    if consumer == "rockpool":
        if kind in ("Conv2d", "AvgPool2d", "Flatten", "Scale", "Delay", "SumPool2d"):
            return f"a {kind} node, which rockpool's from_nir cannot convert"
        if kind == "LIF":
            return "a LIF neuron: rockpool's from_nir reads node.tau_mem, which nir.LIF does not have"
        return None
    raise SnncError(f"unknown NIR consumer {consumer!r} for --for (expected one of {', '.join(TARGETS)})")


def check_target(ngraph: Any, consumer: str, dt: float) -> None:
    """Refuse a NIR graph that ``consumer``'s stock importer cannot run with snnc's spikes.

    Raises:
        SnncError: unknown consumer, a dt the consumer cannot use, or the first node (in
            graph order) it cannot run, named with the construct and the consumer.
    """
    if consumer not in TARGETS:
        raise SnncError(f"unknown NIR consumer {consumer!r} for --for (expected one of {', '.join(TARGETS)})")
    if consumer == "snntorch" and not np.isclose(dt, SNNTORCH_DT, rtol=1e-9):
        raise SnncError(f"cannot export for snntorch with dt = {dt:g} s: its importer fixes dt at "
                        f"{SNNTORCH_DT:g} s (pass --dt {SNNTORCH_DT:g})")
    outputs = [n for n, node in ngraph.nodes.items() if type(node).__name__ == "Output"]
    if len(outputs) > 1:
        raise SnncError(f"cannot export for {consumer}: the graph has {len(outputs)} Output nodes "
                        f"({', '.join(outputs[:3])}...) and nirtorch, which {consumer}'s importer builds on, "
                        f"loops forever on more than one")
    for name, node in ngraph.nodes.items():
        why = target_blocker(node, consumer, dt)
        if why is not None:
            raise SnncError(f"cannot export node {name!r} for {consumer}: {why}")
