"""What counting energy from Lava's own spikes costs the int8 Lava stream (``LavaBackend`` with int8 fields).

Streams one synthetic recording (``snnc data synth``) through the trained zoo model ``stereo-synth`` at int8
with ``--backend lava`` in three modes, alternated in one run (``--rounds`` times each, the same frames):

* ``spikes``: energy from the values the backend has (the default now): one more ``Extractor`` per feature
  layer the integer graph's ActivityPlan reads, and the host GraphModule's node values;
* ``reference``: what ran before: only the cut is read back and the engine counts the **float** network on
  the same frames (its reference pass; ``activity_meter`` returns None);
* ``off``: no energy (only the cut read back).

Prints per mode the median frames/s of the pipeline (``fps``) and of the backend (``infer_fps``), the
per-frame backend and counting times, and the difference ``spikes - off`` of the backend's time per frame:
what the extra Extractors (and ``step_nodes`` on the host) cost. With 6 frames and Lava's latency of 8,
every frame of the default recording is answered in the flush (14 Lava steps).

Usage: ``nice .venv/bin/python benchmarks/bench_lava_energy.py --frames 6 --height 32 --width 48 --rounds 3``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def _modes() -> dict[str, tuple[bool, type]]:
    from snnc.runtime.lava_backend import LavaBackend

    class ReferencePass(LavaBackend):
        """The backend before Lava's own spikes were counted: no meter of its own, so the engine's reference pass."""

        def activity_meter(self, **_: Any) -> None:
            return None

    return {"spikes": (True, LavaBackend), "reference": (True, ReferencePass), "off": (False, LavaBackend)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--height", type=int, default=32)
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from snnc.data.mvsec import MVSECRecording
    from snnc.data.synth import synthesize
    from snnc.energy.costs import resolve_costs
    from snnc.quant.network import network_fields
    from snnc.runtime.engine import StreamEngine
    from snnc.runtime.frames import frame_times
    from snnc.runtime.model import load_network

    tmp = Path(tempfile.mkdtemp(prefix="bench-lava-energy-"))
    data, _ = synthesize(tmp / "b_data.hdf5", frames=args.frames, height=args.height, width=args.width, progress=False)
    net = load_network("stereo-synth")
    costs = resolve_costs("45nm-int8")
    results: dict[str, list[dict[str, float]]] = {m: [] for m in _modes()}
    with MVSECRecording(data) as rec:
        fields = network_fields(net.model, (1, 2, 5, rec.height, rec.width), net.meta)
        times = frame_times(rec)[0]
        for r in range(args.rounds):
            order = list(_modes().items())
            if r % 2:
                order.reverse()
            for mode, (energy, cls) in order:
                backend = cls(net.model, torch.device("cpu"), fields=fields)
                engine = StreamEngine(net, backend, energy=energy, costs=costs)
                t0 = time.perf_counter()
                try:
                    for _ in engine.run(rec, times, with_gt=False):
                        pass
                finally:
                    backend.close()
                s = engine.summary
                results[mode].append(
                    {
                        "fps": s.fps,
                        "infer_fps": s.infer_fps,
                        "infer_ms": 1e3 * s.infer_s / s.frames,
                        "energy_ms": 1e3 * s.energy_s / s.frames,
                        "wall_s": time.perf_counter() - t0,
                        "ac": s.per_frame(s.ac),
                        "processes": float(backend.boundary.get("lava_processes") or 0),
                    }
                )
                print(f"round {r} {mode:9s} " + " ".join(f"{k} {v:.4g}" for k, v in results[mode][-1].items()))
    print(f"\n{args.frames} frames {args.height}x{args.width}, {args.rounds} rounds, medians:")
    med = {m: {k: statistics.median(x[k] for x in rows) for k in rows[0]} for m, rows in results.items()}
    for mode, row in med.items():
        print(f"{mode:9s} " + " ".join(f"{k} {v:.4g}" for k, v in row.items()))
    extra = med["spikes"]["infer_ms"] - med["off"]["infer_ms"]
    print(f"backend time per frame, spikes - off: {extra:+.1f} ms ({extra / med['off']['infer_ms']:+.1%})")
    print(f"fps spikes / reference: {med['spikes']['fps'] / med['reference']['fps']:.3f}")


if __name__ == "__main__":
    main()
