"""``snnc stream --model MANIFEST``: stream a partition manifest (front NIR + rest ONNX) from its files.

``snnc export --to nir --partition --out net.json`` writes ``net.front.nir``, ``net.rest.onnx``
and the manifest ``net.json`` (:mod:`snnc.export.partition`). A ``.json`` MODEL is a partition
manifest when its ``format`` field says so (:func:`is_partition_manifest`; otherwise it is a
genotype file, as :data:`snnc.models.loading.MODEL_RULE` says): its type comes from the
extension and the field, never from guessing at other content.

:func:`open_manifest` returns what the stream engine needs: a :class:`ManifestNetwork`
(family, genotype and ``disp_step`` from the manifest; no torch network, so energy is not
counted) and a :class:`ManifestBackend` that runs the pieces as written
(:class:`snnc.export.partition.PartitionedNet`: the front in snnc's NIR runtime, the rest in
onnxruntime, CPU), after checking that they are the files the manifest was written with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from snnc.errors import SnncError
from snnc.runtime.base import Backend

__all__ = ["is_partition_manifest", "ManifestNetwork", "ManifestBackend", "open_manifest"]


def is_partition_manifest(spec: str | Path | None) -> bool:
    """Whether MODEL ``spec`` is a ``.json`` file whose ``format`` is the partition manifest's."""
    from snnc.export.partition import PARTITION_FORMAT

    if spec is None or Path(spec).suffix.lower() != ".json" or not Path(spec).is_file():
        return False
    try:
        doc = json.loads(Path(spec).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False  # the genotype reader reports an unreadable file
    return isinstance(doc, dict) and doc.get("format") == PARTITION_FORMAT


@dataclass
class ManifestNetwork:
    """The network of a partition manifest, as far as the stream engine asks (duck-types ``LoadedNetwork``).

    Attributes:
        genotype: the manifest's genotype.
        source: the manifest path given.
        model: carries ``disp_step`` only (there is no torch network to count energy on).
        kind, trained: ``manifest``; the pieces hold the weights they were exported with.
    """

    genotype: Any
    source: str
    model: Any = field(default_factory=SimpleNamespace)
    kind: str = "manifest"
    trained: bool = True
    input_shape: tuple[int, ...] | None = None

    @property
    def family(self) -> str:
        """The genotype's family."""
        return str(getattr(self.genotype, "family", "?"))

    def describe(self) -> str:
        """``'spikedhs-stereo (partition manifest net.json: front NIR + rest ONNX)'``."""
        return f"{self.family} (partition manifest {Path(self.source).name}: front NIR + rest ONNX)"


class ManifestBackend(Backend):
    """Runs a partition manifest's pieces frame by frame (front NIR, then rest ONNX; CPU)."""

    name = "hybrid"

    def __init__(self, manifest: Path, threads: int = 0) -> None:
        from snnc.export.partition import PartitionedNet

        self.manifest = Path(manifest)
        self.net = PartitionedNet(self.manifest, threads=threads or 1)
        self.device = torch.device("cpu")
        self._state: Any = None

    def reset(self, x0: Tensor) -> None:
        """Both pieces at rest for frames shaped like ``x0``."""
        want = self.net.doc.get("input_shape")
        if isinstance(want, list) and tuple(want[1:]) != tuple(x0.shape[1:]):
            raise SnncError(
                f"the manifest's pieces take frames shaped {tuple(want[1:])}, but the recording gives "
                f"{tuple(x0.shape[1:])}: export the partition with --input-shape {','.join(map(str, x0.shape))}",
                self.manifest,
            )
        self._state = self.net.init_state(x0)

    def step(self, x: Tensor) -> Tensor:
        """One frame through front and rest; returns the matching cost."""
        y, self._state = self.net.step(x.cpu(), self._state)
        return y

    def placement(self) -> list[dict[str, Any]]:
        """Each piece of the manifest and where it runs."""
        runs_on = {
            "front": "neuromorphic target (NIR graph; simulated by snnc's NIR runtime on CPU)",
            "rest": "host CPU (onnxruntime)",
        }
        return [
            {
                "part": p["name"],
                "runs_on": runs_on.get(p["name"], "?"),
                "file": p["file"],
                "nodes": p.get("nodes"),
            }
            for p in self.net.doc["pieces"]
        ]


def open_manifest(manifest: Path, device: torch.device | str, threads: int = 0) -> tuple[ManifestNetwork, Backend]:
    """``(network, backend)`` streaming partition manifest ``manifest``.

    Raises:
        SnncError: a device other than the CPU, a manifest without a valid genotype, or pieces
            that are missing or not the files the manifest was written with.
    """
    from snnc.models.genotype import genotype_from_dict

    if torch.device(device).type != "cpu":
        raise SnncError(
            "a partition manifest runs its front in snnc's NIR runtime and its rest in onnxruntime on the CPU; "
            "use --device cpu",
            manifest,
        )
    backend = ManifestBackend(manifest, threads)
    genotype = genotype_from_dict(backend.net.doc.get("genotype"), manifest)
    shape = backend.net.doc.get("input_shape")
    net = ManifestNetwork(
        genotype,
        str(manifest),
        SimpleNamespace(disp_step=float(getattr(genotype, "disp_step", 2.0))),
        input_shape=tuple(int(s) for s in shape) if isinstance(shape, list) else None,
    )
    return net, backend
