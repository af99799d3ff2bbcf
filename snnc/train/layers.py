"""Finding and replacing neuron layers of a network by name (shared by DGS, TPS and HNS).

Neuron layers are named as in :meth:`snnc.models.base.SpikingNet.neurons`
(``stem.neuron``, ``trellis.cells.5.nodes.0``...). Two short aliases follow
the papers: ``s1`` is the first stem layer (the first neuron layer of the
network: ``stem.neuron`` in SpikeDHS-CLA, ``feature.stem0.neuron`` in
SpikeDHS-Stereo) and ``c5`` the first node of cell 5 (cells counted from 0,
so with the 8-cell path ``[0,0,1,1,1,2,2,2]`` it is the second reduction
cell, where the paper puts its auxiliary head).
"""

from __future__ import annotations

from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.models.base import SpikingNet
from snnc.models.cells import SpikingCell, SpikingConv
from snnc.models.layers import ConvBN

__all__ = ["resolve_layer", "replace_module", "synaptic_weights"]


def _shown(names: list[str]) -> str:
    return ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")


def resolve_layer(model: SpikingNet, name: str) -> str:
    """The neuron layer name for ``name`` (a layer name or the alias ``s1`` / ``c5``).

    Raises:
        SnncError: unknown name, or an alias the network does not have.
    """
    names = [n for n, _ in model.neurons()]
    if name in names:
        return name
    if name == "s1":
        if not names:
            raise SnncError("the network has no neuron layers")
        return names[0]
    if name == "c5":
        for candidate in ("trellis.cells.5.nodes.0", "matching.trellis.cells.5.nodes.0"):
            if candidate in names:
                return candidate
        raise SnncError("layer alias 'c5' (first node of cell 5) needs a network with at least 6 cells")
    raise SnncError(f"unknown neuron layer {name!r} (use s1, c5 or one of: {_shown(names)})")


def replace_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Put ``module`` at the dotted path ``name`` of ``model`` (works inside ModuleList/Dict)."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def synaptic_weights(model: SpikingNet, name: str) -> dict[str, Tensor]:
    """The convolution weights whose outputs form the input current of neuron layer ``name``.

    Supported: a :class:`~snnc.models.cells.SpikingConv` neuron (its one conv)
    and a node of a :class:`~snnc.models.cells.SpikingCell` with membrane
    mixing (every conv edge into the node). Returns ``{parameter name: weight}``.

    Raises:
        SnncError: the layer is fed by something else (no weights to search on).
    """
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    params: dict[str, Tensor] = dict(model.named_parameters())
    if isinstance(parent, SpikingConv) and child == "neuron":
        key = f"{parent_name}.conv.conv.weight"
        return {key: params[key]}
    cell_name, _, nodes = parent_name.rpartition(".")
    if nodes == "nodes" and cell_name:
        cell = model.get_submodule(cell_name)
        if isinstance(cell, SpikingCell):
            if cell.mixing != "mm":
                raise SnncError(f"DGS on cell node {name!r} needs membrane mixing (mm); this cell mixes at spikes")
            node = int(child)
            out = {}
            for k, edge in enumerate(cell.genotype.edges):
                op = cell.ops[k]
                if edge.dst == node and isinstance(op, ConvBN):
                    key = f"{cell_name}.ops.{k}.conv.weight"
                    out[key] = params[key]
            if out:
                return out
    raise SnncError(f"cannot find the convolution feeding neuron layer {name!r} (DGS needs a conv->neuron layer)")
