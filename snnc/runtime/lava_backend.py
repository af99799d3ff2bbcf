"""Lava backend: the netx-expressible spiking layers simulated in Lava, the rest of the network on the CPU.

What runs where (SpikeDHS-Stereo):

* **Lava** (lava-dl netx network, ``Loihi2SimCfg(select_tag='fixed_pt')``, i.e.
  Loihi's fixed-point arithmetic simulated on the CPU): the longest chain of
  conv + LIF layers from the input that netx can express — netx takes plain
  chains only (:mod:`snnc.export.lava_writer`), and the stereo net's first
  spiking layer ``feature.stem0`` already feeds two consumers (``stem1`` and
  the first cell), so the chain is exactly ``feature.stem0`` (3x3 conv of the
  SBT stacks + LIF). Its input is *signed* events (SBT in {-1, 0, 1}) while
  Loihi inputs are binary spikes: the layer takes ON and OFF events as
  separate binary channels with weights ``[w, -w]`` (exact:
  ``conv_w(x) = conv_w(x+) + conv_-w(x-)``). The left and right images (the
  shared feature net's batch of two) are placed side by side with a zero gap
  as wide as the padding, which a stride-1 convolution keeps exactly apart.
* **CPU** (snnc's export-graph runtime, :class:`snnc.export.runtime.GraphModule`,
  torch): everything after that layer — ``stem1``, the feature cells, the
  up-sampler, the cost volume, the whole 3-D matching net (netx has no 3-D
  convolution) and the read-out.

Frames are streamed into the running Lava network with an ``Injector`` and
its spikes read back with an ``Extractor``, one Lava time step per frame, so
the layer's membrane is carried across frames inside Lava. Lava's synapse
delivers one step late, so the backend has a latency of one frame
(``latency = 1``); the last frame is flushed with one extra step.

Differences from the float network (stated tolerance): weights, bias and
threshold are quantised to Loihi's 8-bit / 13-bit / 17-bit fixed point and the
leak to 12 bits (:func:`snnc.export.lava_writer.quantize_layer`), and at the
first step Lava's neuron integrates its bias once before the first frame
arrives. The layer's spikes therefore differ from torch's on a small fraction
of positions, and the difference propagates through the rest of the network.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snnc.energy.report import EnergyReport, LayerEnergy
from snnc.errors import SnncError
from snnc.export.lava_env import import_lava
from snnc.models.base import SpikingNet
from snnc.runtime.base import Backend, energy_by_part

__all__ = ["LavaBackend", "netx_prefix"]


def netx_prefix(graph: Any) -> list[str]:
    """Names of the leading chain ``input -> (conv -> lif neuron)+`` that netx can express.

    The chain stops before a node that is read by several nodes or sums several
    inputs (a DAG), or that is not a plain 2-D conv / LIF-like neuron. Returns the
    nodes after the input (empty when not even one layer qualifies).
    """
    consumers = graph.consumers()
    name = graph.inputs[0]
    chain: list[str] = []
    while True:
        users = consumers[name]
        if len(users) != 1:
            break
        conv = graph[users[0]]
        if (
            conv.op != "conv"
            or len(conv.inputs) != 1
            or conv.params["weight"].ndim != 4
            or conv.params["groups"] != 1
            or any(d != 1 for d in conv.params["dilation"])
            or any(s != 1 for s in conv.params["stride"])
        ):
            break
        nxt = consumers[users[0]]
        if len(nxt) != 1:
            break
        neuron = graph[nxt[0]]
        spiking = neuron.op == "neuron" and neuron.params["spec"].type in ("lif", "if", "binary")
        if not spiking or len(neuron.inputs) != 1:
            break
        chain += [users[0], nxt[0]]
        name = nxt[0]
        if len(consumers[name]) != 1:
            break
    return chain


class LavaBackend(Backend):
    """Runs the netx prefix in Lava and the rest on the CPU (see module docstring).

    Args:
        model: the folded stereo network.
        device: must be CPU.
        threads: unused (Lava's simulator and the CPU rest use the process's threads).
        workdir: keep the netx file here instead of a temporary folder.
    """

    name = "lava"
    latency = 1

    def __init__(
        self, model: SpikingNet, device: torch.device, *, threads: int = 0, workdir: Path | None = None
    ) -> None:
        if torch.device(device).type != "cpu":
            raise SnncError(
                "--backend lava simulates Loihi on the CPU (Lava's fixed-point simulator); use --device cpu"
            )
        if getattr(model.genotype, "family", None) != "spikedhs-stereo":
            raise SnncError("--backend lava streams stereo networks only")
        import_lava()
        self.model = model
        self.device = torch.device("cpu")
        self._tmp: str | None = None
        self._workdir = Path(workdir) if workdir is not None else None
        self._shape: tuple[int, ...] | None = None
        self._lava: Any = None
        self.lava_nodes: list[str] = []
        self.export_s = 0.0
        self.quant: dict[str, Any] = {}

    # ------------------------------------------------------------------ building
    def _build(self, shape: tuple[int, ...]) -> None:
        import time

        from snnc.export.graph import Graph
        from snnc.export.lava_writer import write_netx
        from snnc.export.lower import lower
        from snnc.export.partition import copy_nodes
        from snnc.export.runtime import GraphModule

        start = time.perf_counter()
        if shape[0] != 1:
            raise SnncError(f"--backend lava streams one recording at a time (batch 1), got input {shape}")
        graph = lower(self.model, shape)
        chain = netx_prefix(graph)
        if not chain:
            raise SnncError(
                "no layer of this network can run in Lava: netx needs a chain of 2-D conv + LIF layers from the input"
            )
        self.lava_nodes = chain
        cut = chain[-1]
        c_in, h, w = graph[graph.inputs[0]].shape
        self._pad = sum(int(graph[n].params["padding"][1]) for n in chain if graph[n].op == "conv")
        self._width = w
        wide = 2 * w + self._pad
        lg = Graph({})
        lg.add("x", "input", shape=(2 * c_in, h, wide))
        prev = "x"
        for i, name in enumerate(chain):
            node = graph[name]
            params = dict(node.params)
            if node.op == "conv" and i == 0:
                wgt = params["weight"]
                params["weight"] = np.concatenate([wgt, -wgt], axis=1)  # ON and OFF channels
            shp = (node.shape[0], h, wide) if node.op in ("conv", "neuron") else None
            prev = lg.add(name, node.op, [prev], shape=shp, **params)
        lg.add("y", "output", [prev])
        lg.check()
        if self._workdir is None:
            self._tmp = tempfile.mkdtemp(prefix="snnc-stream-lava-")
            self._workdir = Path(self._tmp)
        net_path = self._workdir / "lava_part.net"
        self.quant = write_netx(lg, net_path)
        rest = Graph(dict(graph.meta))
        rest.add(cut, "input", shape=graph[cut].shape)
        copy_nodes(rest, graph, [n for n in graph.nodes if n not in set(chain) and n not in graph.inputs])
        rest.check()
        self._rest = GraphModule(rest).eval()
        self._cut = cut
        self._cut_channels = graph[cut].shape[0]
        self._start_lava(net_path)
        self._shape = shape
        self.export_s = time.perf_counter() - start

    def _start_lava(self, net_path: Path) -> None:
        from lava.lib.dl.netx import hdf5
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
        from lava.proc.io.injector import Injector, PyLoihiInjectorModel

        self._stop_lava()
        net = hdf5.Network(net_config=str(net_path))
        inj = Injector(shape=net.inp.shape)
        ext = Extractor(shape=net.out.shape)
        inj.out_port.connect(net.inp)
        net.out.connect(ext.in_port)
        cfg = Loihi2SimCfg(
            select_tag="fixed_pt",
            exception_proc_model_map={Injector: PyLoihiInjectorModel, Extractor: PyLoihiExtractorModel},
        )
        net.create_runtime(run_cfg=cfg)
        self._lava = (net, inj, ext)

    def _stop_lava(self) -> None:
        if self._lava is not None:
            net = self._lava[0]
            try:
                net.stop()
            finally:
                with contextlib.suppress(Exception):
                    net.net_config.f.close()
            self._lava = None

    # ------------------------------------------------------------------ stepping
    def reset(self, x0: Tensor) -> None:
        """Build the Lava part and the CPU rest for ``x0``'s shape; start Lava at rest."""
        shape = tuple(int(s) for s in x0.shape)
        if self._lava is None or shape != self._shape:
            self._build(shape)
        else:
            self._start_lava(self._workdir / "lava_part.net")
        cut_shape = (2, self._cut_channels, shape[3], shape[4])
        self._rest_state = self._rest.init_state({self._cut: torch.zeros(cut_shape)})
        self._given = 0

    def _lava_step(self, x: Tensor | None) -> np.ndarray:
        """Inject one frame (None: zeros) and run one Lava step; the spikes it emits (C, H, 2W+pad)."""
        from lava.magma.core.run_conditions import RunSteps

        net, inj, ext = self._lava
        c_in = self._shape[2]
        h, w, pad = self._shape[3], self._width, self._pad
        frame = np.zeros((2 * c_in, h, 2 * w + pad), dtype=np.int32)
        if x is not None:
            sbt = x[0].numpy()  # (2 cameras, C, H, W)
            for cam, col in ((0, 0), (1, w + pad)):
                frame[:c_in, :, col : col + w] = sbt[cam] > 0
                frame[c_in:, :, col : col + w] = sbt[cam] < 0
        inj.send(frame.transpose(2, 1, 0))  # netx order (W, H, C)
        net.run(condition=RunSteps(num_steps=1))
        return np.asarray(ext.receive()).transpose(2, 1, 0)

    def _rest_step(self, spikes: np.ndarray) -> Tensor:
        """The CPU rest on one frame's Lava spikes: cost ``(1, D, H, W)``."""
        w, pad = self._width, self._pad
        both = np.stack([spikes[:, :, :w], spikes[:, :, w + pad : w + pad + w]]).astype(np.float32)
        with torch.no_grad():
            cost, self._rest_state = self._rest.step({self._cut: torch.from_numpy(both)}, self._rest_state)
        return cost

    def step(self, x: Tensor) -> Tensor | None:
        """Inject frame k; returns frame k-1's cost (None for the first frame)."""
        spikes = self._lava_step(x.cpu())
        self._given += 1
        if self._given == 1:
            return None  # Lava's output at step 0 answers no frame (the synapse delivers one step late)
        return self._rest_step(spikes)

    def flush(self) -> list[Tensor]:
        """One more Lava step (zero input) for the last frame's spikes."""
        if self._given == 0:
            return []
        return [self._rest_step(self._lava_step(None))]

    # ------------------------------------------------------------------ reporting
    def part_of(self, layer: LayerEnergy) -> str:
        """``lava`` or ``cpu`` for a counted layer."""
        from snnc.runtime.hybrid_backend import layer_node

        return "lava" if layer_node(layer.name) in self.lava_nodes else "cpu"

    def placement(self) -> list[dict[str, Any]]:
        """The Lava chain and the CPU rest."""
        layers = [n for n in self.lava_nodes if not n.endswith(".neuron")] if self.lava_nodes else []
        q = self.quant.get("layers", []) if self.quant else []
        return [
            {
                "part": "lava",
                "runs_on": "Lava (lava-dl netx, Loihi2SimCfg fixed_pt, simulated on CPU)",
                "layers": layers,
                "quantisation": [{k: v for k, v in d.items() if k != "name"} for d in q],
                "input": "SBT as binary ON/OFF channels, left|gap|right side by side",
            },
            {
                "part": "cpu",
                "runs_on": "CPU (snnc export-graph runtime, torch)",
                "detail": "everything after the Lava chain: feature cells, up-sampling, cost volume, "
                "3-D matching net (no 3-D conv in netx), read-out",
            },
        ]

    def energy_parts(self, report: EnergyReport) -> list[dict[str, Any]]:
        """Energy per frame of the Lava part and the CPU part (see :func:`energy_by_part`)."""
        return energy_by_part(report, self.part_of, {p["part"]: p["runs_on"] for p in self.placement()})

    def close(self) -> None:
        """Stop Lava and remove temporary files."""
        self._stop_lava()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
