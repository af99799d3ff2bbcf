"""NIR interop matrix: every consumer's stock importer x every exported network family.

For each network of :mod:`snnc.export.interop_cases` (digits classifier, sequential net,
SNASNet with feedback, stereo front), the script writes snnc's NIR export (plain, and with
``--for CONSUMER`` when ``--spellings`` is given), loads it with each consumer's stock importer
(:mod:`snnc.export.nir_consumers`), steps it over T steps at batch size B with state carried,
and prints one row per (consumer, network):

    imports   the stock importer returned a module
    runs      all T steps ran
    layers    neuron layers whose spikes could be compared / all neuron layers
    mism      spike values that differ from snnc's run of the same file
    spikes    spikes in snnc's run over the compared layers
    pred      prediction agreement (argmax of the summed outputs) with snnc
    note      the error (one line), or the export's refusal for that consumer

With ``--hardware`` it then prints, per network, whether it fits Speck and Xylo Audio 2 in the
vendors' words (:mod:`snnc.export.nir_hardware`: sinabs' DynapcnnNetwork conversion and core
mapping, rockpool's Xylo mapper; what needs samna is not checked).

Usage::

    .venv/bin/python benchmarks/interop_matrix.py [--batch 2] [--steps 8] [--dt 1e-4] [--spellings] [--hardware]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from snnc.errors import SnncError
from snnc.export.interop_cases import interop_cases
from snnc.export.nir_consumers import CONSUMERS, available, compare, run_consumer, run_reference
from snnc.export.nir_targets import TARGETS
from snnc.export.nir_writer import write_nir


def _write(case, path: Path, dt: float, consumer: str | None) -> str | None:
    """Write the case's NIR file (for ``consumer``'s spelling when given); the refusal text or None."""
    try:
        write_nir(case.graph, path, dt, consumer=consumer)
    except SnncError as err:
        return str(err)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--dt", type=float, default=1e-4)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per import + run (hang guard)")
    parser.add_argument(
        "--spellings", action="store_true", help="also run each consumer on the file written with --for CONSUMER"
    )
    parser.add_argument("--hardware", action="store_true", help="also check each network against Speck and Xylo")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = interop_cases(batch=args.batch, steps=args.steps)
    consumers = [c for c in CONSUMERS if available(c)]
    missing = [c for c in CONSUMERS if c not in consumers]
    print(
        f"NIR interop matrix: batch {args.batch}, {args.steps} steps, dt {args.dt:g} s"
        + (f"; not installed: {', '.join(missing)}" if missing else "")
    )
    header = (
        f"{'consumer':<13} {'export':<7} {'network':<13} {'imports':<7} {'runs':<5} {'layers':<7} "
        f"{'mism':>7} {'spikes':>7} {'pred':>5}  note"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        refs = {}
        plain = {}
        for case in cases:
            path = Path(tmp) / f"{case.name}.nir"
            plain[case.name] = _write(case, path, args.dt, None)
            if plain[case.name] is None:
                refs[case.name] = (path, run_reference(path, case.inputs))
        for consumer in consumers:
            for spelling in (None, consumer) if args.spellings and consumer in TARGETS else (None,):
                for case in cases:
                    t0 = time.time()
                    label = "plain" if spelling is None else "--for"
                    if spelling is None:
                        refusal = plain[case.name]
                        path = Path(tmp) / f"{case.name}.nir"
                    else:
                        path = Path(tmp) / f"{case.name}.{consumer}.nir"
                        refusal = _write(case, path, args.dt, consumer)
                    if refusal is not None:
                        print(
                            f"{consumer:<13} {label:<7} {case.name:<13} {'-':<7} {'-':<5} {'-':<7} {'-':>7} "
                            f"{'-':>7} {'-':>5}  refused: {refusal}"
                        )
                        continue
                    ref = refs[case.name][1]  # a consumer spelling is the same network (names kept in metadata)
                    run = run_consumer(consumer, path, case.inputs, args.dt, args.time_limit)
                    agree = compare(run, ref, case.classify)
                    if agree is None:
                        row = (
                            f"{'yes' if run.imported else 'no':<7} {'no':<5} {'-':<7} {'-':>7} {'-':>7} "
                            f"{'-':>5}  {run.error}"
                        )
                    else:
                        pred = "-" if agree.prediction_agreement is None else f"{agree.prediction_agreement:.2f}"
                        layers = f"{agree.layers}/{agree.layers_total}"
                        note = f"output max diff {agree.output_max_diff:.2g}"
                        row = (
                            f"{'yes':<7} {'yes':<5} {layers:<7} {agree.spike_mismatches:>7} "
                            f"{agree.spikes_seen:>7} {pred:>5}  {note}"
                        )
                    print(f"{consumer:<13} {label:<7} {case.name:<13} {row}  [{time.time() - t0:.1f} s]", flush=True)
    if args.hardware:
        from snnc.export.nir_hardware import check_hardware

        print("\nchip fit (the vendors' tools; building the device configuration needs samna: not checked)")
        for case in cases:
            for consumer in ("sinabs", "rockpool"):
                try:
                    line = check_hardware(case.graph, consumer, args.dt).line()
                except SnncError as err:
                    line = f"not checked: {err}"
                print(f"{case.name:<13} {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
