"""``snnc export --to nir --for CONSUMER``: what each library's stock NIR importer can run.

snnc's plain NIR export is already what SpikingJelly 2.0 and snnTorch 1.0 run bit-exact
for feed-forward networks (summed edges instead of junction nodes, Flatten dims counted from
the end, dt implied by ``r = tau / dt``). For them ``--for`` also spells one-step feedback
(SNASNet's Delay nodes) the way nirtorch, which both build on, runs cycles
(:func:`nirtorch_feedback_spelling`). ``--for`` checks a graph against one consumer's importer and refuses, in
one line naming the node and the consumer, what that importer cannot run correctly; a file
that passes runs in the consumer with the same spikes as in snnc (``tests/test_nir_interop.py``).

What each importer lacks (measured with its stock importer, nir 1.0.8):

============  ===========================================================================
spikingjelly  no Delay (feedback: spelled as nirtorch cycles), Scale or SumPool2d node; LIF
              needs ``r`` in {1, tau/dt} and ``tau/dt > 1`` (no binary neuron)
snntorch      as SpikingJelly, and dt fixed at 1e-4 s; IF becomes a leaky neuron
norse         ignores LIF ``r`` (scales the input by dt/tau), no AvgPool2d, runs DAGs
              depth-first: chains are spelled with ``r`` folded into the weights before each
              neuron and AvgPool2d as SumPool2d (:func:`norse_spelling`); DAGs are refused
sinabs        multi-spike neurons with subtractive reset (snnc: one spike, reset to 0),
              tau read as steps: refused at the first neuron
rockpool      no Conv2d, AvgPool2d, Flatten, Scale or Delay; reads ``tau_mem``, which
              nir.LIF lacks
============  ===========================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snnc.errors import SnncError

__all__ = ["TARGETS", "SNNTORCH_DT", "target_blocker", "check_target"]

#: Consumers ``--for`` accepts.
TARGETS: tuple[str, ...] = ("spikingjelly", "snntorch", "norse", "sinabs", "rockpool")
#: The time step snnTorch 1.0's importer assumes (hard-coded).
SNNTORCH_DT = 1e-4

_FEEDBACK = (
    "a feedback loop (Delay): {c}'s importer has no Delay node, and nirtorch, which it builds on, "
    "breaks cycles at the first multi-input node instead of at the delay"
)


def _uniform(a: Any) -> float | None:
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    return float(arr[0]) if arr.size and np.all(arr == arr[0]) else None


def _lif_blocker(node: Any, dt: float, consumer: str) -> str | None:
    tau, r = _uniform(node.tau), _uniform(node.r)
    if tau is None or r is None:
        return "a LIF with parameters that vary across neurons"
    steps = tau / dt
    if not steps > 1.0 + 1e-9:
        return f"a binary neuron (tau = dt): {consumer}'s importer needs tau/dt > 1"
    if not np.isclose(r, steps, rtol=1e-6):
        return f"a neuron input gain (r = {r:g}, not tau/dt = {steps:g}): {consumer} scales the input differently"
    return None


def target_blocker(node: Any, consumer: str, dt: float) -> str | None:
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
    if consumer == "norse":  # after norse_spelling: r folded into weights, AvgPool2d as SumPool2d
        if kind == "IF" or (kind == "LIF" and _uniform(node.r) != 1.0):
            return "a LIF/IF neuron with r != 1: norse.torch.from_nir ignores r (its LIF scales the input by dt/tau)"
        if kind in ("AvgPool2d", "Scale", "Delay"):
            return f"a {kind} node, which norse's importer does not map (it fails with a KeyError)"
        return None
    if consumer == "sinabs":
        if kind in ("LIF", "IF"):
            return (
                "a LIF/IF neuron: sinabs.from_nir builds multi-spike neurons with subtractive reset "
                "(snnc: one spike per step, reset to zero) and reads tau as time steps"
            )
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
        raise SnncError(
            f"cannot export for snntorch with dt = {dt:g} s: its importer fixes dt at "
            f"{SNNTORCH_DT:g} s (pass --dt {SNNTORCH_DT:g})"
        )
    outputs = [n for n, node in ngraph.nodes.items() if type(node).__name__ == "Output"]
    if len(outputs) > 1:
        raise SnncError(
            f"cannot export for {consumer}: the graph has {len(outputs)} Output nodes "
            f"({', '.join(outputs[:3])}...) and nirtorch, which {consumer}'s importer builds on, "
            f"loops forever on more than one"
        )
    for name, node in ngraph.nodes.items():
        why = target_blocker(node, consumer, dt)
        if why is not None:
            raise SnncError(f"cannot export node {name!r} for {consumer}: {why}")


#: Consumers whose importer is nirtorch's ``nir_to_torch`` (feedback spelled without Delay nodes).
NIRTORCH_BASED: tuple[str, ...] = ("spikingjelly", "snntorch")


def nirtorch_feedback_spelling(ngraph: Any, consumer: str, dt: float) -> Any:
    """The graph with its one-step Delay nodes replaced by nirtorch's own cycle semantics.

    nirtorch's ``nir_to_torch`` walks the nodes in file order (``nir.read`` lists them by
    name) and, at a node with several inputs, takes an input that is not computed yet in
    this step but lies on a cycle through the node from the previous step's value. So a
    feedback edge ``b -> Delay(dt) -> c`` becomes the edge ``b -> c`` when, in the walk,
    ``c`` comes after all its forward inputs and before ``b``, ``c`` has another input and
    ``c`` reaches ``b`` again. The nodes are renamed ``n0000_<name>`` .. in such an order
    (``snnc.name`` metadata keeps the original name).

    Raises:
        SnncError: a delay other than one step, or feedback that cannot be spelled so
            (named with the node and the consumer).
    """
    from graphlib import CycleError, TopologicalSorter

    import nir

    def refuse(name: str, why: str) -> SnncError:
        return SnncError(f"cannot export node {name!r} for {consumer}: {why}")

    kinds = {n: type(node).__name__ for n, node in ngraph.nodes.items()}
    delays = [n for n, k in kinds.items() if k == "Delay"]
    if not delays:
        return ngraph
    preds: dict[str, list[str]] = {n: [] for n in ngraph.nodes}
    succs: dict[str, list[str]] = {n: [] for n in ngraph.nodes}
    for src, dst in ngraph.edges:
        preds[dst].append(src)
        succs[src].append(dst)
    forward = [(s, d) for s, d in ngraph.edges if s not in delays and d not in delays]
    feedback: list[tuple[str, str]] = []
    for name in delays:
        steps = _uniform(ngraph.nodes[name].delay)
        if steps is None or not np.isclose(steps, dt, rtol=1e-6):
            raise refuse(name, "a delay of more than one time step (nirtorch's cycles delay by exactly one)")
        if any(kinds[s] == "Delay" for s in preds[name]):
            raise refuse(name, "a delay fed by another delay")
        feedback += [(s, d) for s in preds[name] for d in succs[name]]
    edges = forward + feedback
    if len(set(edges)) != len(edges):
        raise refuse(feedback[0][1], "a node that receives the same tensor through a delay and directly")
    inputs: dict[str, set[str]] = {n: set() for n in ngraph.nodes if n not in delays}
    out_of: dict[str, set[str]] = {n: set() for n in inputs}
    for s, d in edges:
        inputs[d].add(s)
        out_of[s].add(d)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            cur = todo.pop()
            if cur == goal:
                return True
            if cur not in seen:
                seen.add(cur)
                todo += list(out_of[cur])
        return False

    for b, c in feedback:
        if len(inputs[c]) < 2:
            raise refuse(c, "a node fed only by a feedback loop (nirtorch delays only multi-input nodes' inputs)")
        if not reaches(c, b):
            raise refuse(c, f"feedback from {b!r} that does not return to it (nirtorch sees no cycle)")
    order_deps: dict[str, set[str]] = {n: {s for s, d in forward if d == n} for n in inputs}
    for b, c in feedback:
        order_deps[b].add(c)  # the consumer first: it must read b before b is computed in the step
    try:
        order = list(TopologicalSorter(order_deps).static_order())
    except CycleError:
        raise refuse(feedback[0][1], "feedback whose consumers cannot all run before its sources") from None
    rename = {n: f"n{i:04d}_{n}" for i, n in enumerate(order)}
    nodes = {}
    for n in order:
        node = ngraph.nodes[n]
        meta = dict(node.metadata or {}) if isinstance(getattr(node, "metadata", None), dict) else {}
        meta["snnc.name"] = n
        node.metadata = meta
        nodes[rename[n]] = node
    metadata = dict(ngraph.metadata or {})
    metadata["snnc.feedback"] = "one-step feedback spelled as nirtorch cycles (no Delay nodes)"
    try:
        return nir.NIRGraph(
            nodes=nodes, edges=[(rename[s], rename[d]) for s, d in edges], metadata=metadata, type_check=True
        )
    except (ValueError, AssertionError, NotImplementedError) as err:
        raise SnncError(f"internal: NIR rejected the {consumer} spelling: {err}") from None


def norse_spelling(ngraph: Any, dt: float) -> Any:
    """A chain spelled for ``norse.torch.from_nir``: what its importer drops, folded into weights.

    * LIF ``r``, which Norse ignores (its LIF integrates ``dt/tau`` of the raw input): the
      Conv2d / Affine / Linear node feeding the neuron gets its weight and bias multiplied by
      ``r`` and the neuron is written with ``r = 1`` (the same network; the membrane
      potentials then differ from snnc's only by float rounding);
    * AvgPool2d, which Norse does not map: a SumPool2d (Norse's LPPool2d of order 1) and the
      next Conv2d / Affine / Linear weight (through a Flatten) divided by the kernel area.

    Raises:
        SnncError: a construct this cannot fold (named with the node): a node with several
            inputs or consumers (Norse runs DAGs depth-first, not in order), an IF neuron, a
            neuron not fed by a weight node, a padded pool, a pool not followed by weights.
    """
    import nir

    def refuse(name: str, why: str) -> SnncError:
        return SnncError(f"cannot export node {name!r} for norse: {why}")

    preds: dict[str, list[str]] = {n: [] for n in ngraph.nodes}
    succs: dict[str, list[str]] = {n: [] for n in ngraph.nodes}
    for src, dst in ngraph.edges:
        preds[dst].append(src)
        succs[src].append(dst)
    for name in ngraph.nodes:
        if len(preds[name]) > 1 or len(succs[name]) > 1:
            raise refuse(
                name,
                "a node with several inputs or consumers: norse's importer runs a graph "
                "depth-first, not in dependency order, and returns the last node it walked",
            )
    nodes = dict(ngraph.nodes)
    weighted = ("Conv2d", "Affine", "Linear")

    def scaled(name: str, factor: float, bias_too: bool) -> Any:
        node = nodes[name]
        kind = type(node).__name__
        w = np.asarray(node.weight, dtype=np.float32) * np.float32(factor)
        if kind == "Linear":
            return nir.Linear(weight=w)
        b = np.asarray(node.bias, dtype=np.float32) * (np.float32(factor) if bias_too else np.float32(1.0))
        if kind == "Affine":
            return nir.Affine(weight=w, bias=b)
        return nir.Conv2d(
            input_shape=node.input_shape,
            weight=w,
            stride=node.stride,
            padding=node.padding,
            dilation=node.dilation,
            groups=node.groups,
            bias=b,
        )

    for name, node in ngraph.nodes.items():
        kind = type(node).__name__
        if kind == "IF":
            raise refuse(name, "an IF neuron (norse's IAF ignores r)")
        if kind == "LIF":
            r = _uniform(node.r)
            src = preds[name][0] if preds[name] else None
            if r is None or src is None or type(nodes[src]).__name__ not in weighted:
                raise refuse(name, "a neuron whose input gain r cannot be folded into a Conv2d/Affine/Linear before it")
            nodes[src] = scaled(src, r, bias_too=True)
            nodes[name] = nir.LIF(
                tau=node.tau,
                r=np.ones_like(node.r),
                v_leak=node.v_leak,
                v_threshold=node.v_threshold,
                v_reset=node.v_reset,
                metadata=node.metadata,
            )
        elif kind == "AvgPool2d":
            if np.any(np.asarray(node.padding) != 0):
                raise refuse(name, "a padded AvgPool2d (norse's sum pool has no padding)")
            nxt = succs[name][0] if succs[name] else None
            if nxt is not None and type(nodes[nxt]).__name__ == "Flatten":
                nxt = succs[nxt][0] if succs[nxt] else None
            if nxt is None or type(nodes[nxt]).__name__ not in weighted:
                raise refuse(name, "an AvgPool2d not followed by a Conv2d/Affine/Linear to fold its 1/k^2 into")
            area = float(np.prod(np.asarray(node.kernel_size).reshape(-1)))
            area = area * area if np.asarray(node.kernel_size).size == 1 else area
            nodes[nxt] = scaled(nxt, 1.0 / area, bias_too=False)
            nodes[name] = nir.SumPool2d(kernel_size=node.kernel_size, stride=node.stride, padding=node.padding)
    try:
        return nir.NIRGraph(
            nodes=nodes, edges=list(ngraph.edges), metadata=dict(ngraph.metadata or {}), type_check=True
        )
    except (ValueError, AssertionError, NotImplementedError) as err:
        raise SnncError(f"internal: NIR rejected the norse spelling: {err}") from None
