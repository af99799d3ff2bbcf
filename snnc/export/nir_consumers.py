"""Run a NIR file through other libraries' **stock** NIR importers and compare with snnc.

The interop tests (``tests/test_nir_interop.py``) and ``benchmarks/interop_matrix.py``
use this module to load one NIR file with each consumer's own importer, step the
imported module over ``T`` steps with its state carried from step to step, record
every neuron layer's spikes (forward hooks on the modules the importer built for the
NIR LIF/IF nodes) and compare them with snnc's own run of the same file
(:func:`snnc.export.nir_reader.import_nir`).

Consumers (:data:`CONSUMERS`) and how each is driven:

==============  =================================================================  =======================
consumer        importer (stock)                                                   stepping
==============  =================================================================  =======================
spikingjelly    ``spikingjelly.activation_based.nir_exchange.import_from_nir(g,dt)`` ``y, s = m(x, s)``
snntorch        ``snntorch.import_nir.import_from_nir(g)`` (dt fixed at 1e-4)       ``y, s = m(x, s)``
norse           ``norse.torch.from_nir(g, dt=dt)``                                 ``y, s = m(x, s)``
sinabs          ``sinabs.from_nir(g, batch_size=B, num_timesteps=1)``              ``y, s = m(x, s)``
rockpool        ``rockpool.nn.modules.from_nir(g)``                                ``y, s = m(x, s)``
nirtorch        ``nirtorch.nir_to_torch(g, {})`` (its default node map)            ``y, s = m(x, s)``
==============  =================================================================  =======================

Nothing here changes a consumer: what they get wrong shows up as an import error,
a time-out (``nirtorch`` loops forever on graphs with several ``Output`` nodes) or
spike mismatches. Results are :class:`ConsumerRun` records; :func:`compare` turns a
run and snnc's reference into :class:`Agreement` numbers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import signal
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "CONSUMERS",
    "ConsumerRun",
    "Agreement",
    "available",
    "neuron_node_names",
    "run_consumer",
    "run_reference",
    "compare",
]

#: The consumers this module drives, in table order.
CONSUMERS: tuple[str, ...] = ("spikingjelly", "snntorch", "norse", "sinabs", "rockpool", "nirtorch")

_MODULES = {
    "spikingjelly": "spikingjelly.activation_based.nir_exchange",
    "snntorch": "snntorch.import_nir",
    "norse": "norse.torch",
    "sinabs": "sinabs",
    "rockpool": "rockpool.nn.modules",
    "nirtorch": "nirtorch",
}


@dataclass
class ConsumerRun:
    """What one consumer did with one NIR file.

    Attributes:
        consumer: one of :data:`CONSUMERS`.
        imported: the stock importer returned a module.
        ran: all ``T`` steps ran.
        error: one line (exception type and message, or ``timed out``) when not ``ran``.
        outputs: the module's output at every step.
        spikes: per NIR neuron node found in the imported module, its spikes at every step (keyed by
            the snnc layer name: a node's ``snnc.name`` metadata where a consumer spelling renamed it).
    """

    consumer: str
    imported: bool = False
    ran: bool = False
    error: str | None = None
    outputs: list[Tensor] = field(default_factory=list)
    spikes: dict[str, list[Tensor]] = field(default_factory=dict)


@dataclass
class Agreement:
    """A consumer's run against snnc's reference run.

    Attributes:
        layers: neuron layers compared (those the consumer's module exposes).
        layers_total: neuron layers of the graph.
        spike_mismatches: spike values that differ over all compared layers and steps.
        spikes_seen: spikes in snnc's reference over the compared layers (how much was compared).
        output_max_diff: largest absolute output difference over all steps.
        prediction_agreement: fraction of samples whose class (argmax of the output summed
            over steps) agrees; ``None`` when the output is not a class score vector.
    """

    layers: int
    layers_total: int
    spike_mismatches: int
    spikes_seen: int
    output_max_diff: float
    prediction_agreement: float | None


def available(consumer: str) -> bool:
    """Whether ``consumer``'s package is importable here."""
    import importlib

    try:
        with _quiet():
            importlib.import_module(_MODULES[consumer])
    except Exception:
        return False
    return True


def neuron_node_names(path: Path) -> list[str]:
    """Names of the LIF / IF nodes of a NIR file, in file order."""
    import nir

    graph = nir.read(str(path))
    return [n for n, node in graph.nodes.items() if type(node).__name__ in ("LIF", "IF", "CubaLIF")]


def _original_names(path: Path) -> dict[str, str]:
    """``file node name -> snnc layer name`` for files whose nodes were renamed (``snnc.name`` metadata)."""
    import nir

    graph = nir.read(str(path))
    out = {}
    for name, node in graph.nodes.items():
        meta = getattr(node, "metadata", None)
        out[name] = str(meta["snnc.name"]) if isinstance(meta, dict) and "snnc.name" in meta else name
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the consumers' prints, warnings and log lines."""
    level = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(level)


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise ``TimeoutError`` after ``seconds`` (main thread only; elsewhere no limit)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"timed out after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _import(consumer: str, path: Path, dt: float, batch_size: int) -> Any:
    """The consumer's stock importer on the file (raises whatever it raises)."""
    import nir

    graph = nir.read(str(path))
    if consumer == "spikingjelly":
        from spikingjelly.activation_based.nir_exchange import import_from_nir

        return import_from_nir(graph, dt=dt)
    if consumer == "snntorch":
        from snntorch.import_nir import import_from_nir

        return import_from_nir(graph)
    if consumer == "norse":
        import norse.torch

        return norse.torch.from_nir(graph, dt=dt)
    if consumer == "sinabs":
        import sinabs

        return sinabs.from_nir(graph, batch_size=batch_size, num_timesteps=1)
    if consumer == "rockpool":
        from rockpool.nn.modules import from_nir

        return from_nir(graph)
    if consumer == "nirtorch":
        import nirtorch

        return nirtorch.nir_to_torch(graph, {})
    raise ValueError(f"unknown consumer {consumer!r} (known: {', '.join(CONSUMERS)})")


def _find_module(module: nn.Module, name: str) -> nn.Module | None:
    """The submodule an importer built for NIR node ``name`` (nirtorch sanitises ``.`` to ``_``)."""
    import keyword

    modules: dict[str, nn.Module] = dict(module.named_modules())
    for key in (name, name.replace(".", "_"), "nir_node_" + name if keyword.iskeyword(name) else None):
        if key is not None and key in modules:
            return modules[key]
    return None


def _first_tensor(out: Any) -> Tensor | None:
    while isinstance(out, (tuple, list)) and out:
        out = out[0]
    return out if isinstance(out, Tensor) else None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def run_consumer(
    consumer: str,
    path: Path,
    inputs: Sequence[Tensor],
    dt: float,
    time_limit_s: float = 60.0,
    neuron_names: Sequence[str] | None = None,
) -> ConsumerRun:
    """Import ``path`` with ``consumer``'s stock importer and step it over ``inputs``.

    Args:
        consumer: one of :data:`CONSUMERS`.
        path: a NIR file.
        inputs: the graph input at every step, each ``(B, ...)`` (batch first).
        dt: seconds per step, passed to importers that take one.
        time_limit_s: limit for import + all steps together (a hanging importer becomes ``timed out``).
        neuron_names: NIR neuron nodes whose spikes to record (default: all LIF/IF nodes).

    Returns:
        A :class:`ConsumerRun`; failures are recorded in it, never raised.
    """
    result = ConsumerRun(consumer)
    names = list(neuron_names) if neuron_names is not None else neuron_node_names(path)
    hooks: list[Any] = []
    try:
        with _quiet(), _time_limit(time_limit_s), torch.no_grad():
            module = _import(consumer, path, dt, int(inputs[0].shape[0]))
            result.imported = True
            if hasattr(module, "eval"):
                module.eval()
            current: dict[str, Tensor | None] = {}
            for name in names:
                sub = _find_module(module, name)
                if sub is None:
                    continue
                result.spikes[name] = []
                hooks.append(
                    sub.register_forward_hook(
                        lambda _m, _i, out, name=name: current.__setitem__(name, _first_tensor(out))
                    )
                )
            state = None
            for x in inputs:
                current.clear()
                out = module(x, state)
                if isinstance(out, tuple) and len(out) >= 2:
                    y, state = out[0], out[1]
                else:
                    y = out
                y_t = _first_tensor(y)
                if y_t is None:
                    raise TypeError(f"the imported module returned {type(y).__name__}, not a tensor")
                result.outputs.append(y_t.detach().clone())
                for name in result.spikes:
                    got = current.get(name)
                    if got is not None:
                        result.spikes[name].append(got.detach().clone())
            original = _original_names(path)
            result.spikes = {original.get(n, n): s for n, s in result.spikes.items() if len(s) == len(inputs)}
            result.ran = True
    except (Exception, TimeoutError) as err:
        result.error = _one_line(err)
    finally:
        for h in hooks:
            h.remove()
    return result


def run_reference(path: Path, inputs: Sequence[Tensor], dt: float | None = None) -> ConsumerRun:
    """snnc's own run of the file (:func:`~snnc.export.nir_reader.import_nir`), as a :class:`ConsumerRun`."""
    from snnc.export.nir_reader import import_nir

    gm = import_nir(path, dt)
    result = ConsumerRun("snnc", imported=True)
    neurons = gm.neuron_nodes()
    result.spikes = {n: [] for n in neurons}
    out_name = gm.output_names[0]
    state = gm.init_state(inputs[0])
    with torch.no_grad():
        for x in inputs:
            values, state = gm.step_nodes(x, state)
            result.outputs.append(values[out_name])
            for n in neurons:
                result.spikes[n].append(values[n])
    result.ran = True
    return result


def _reshape_like(t: Tensor, ref: Tensor) -> Tensor | None:
    return t.reshape(ref.shape) if t.numel() == ref.numel() else None


def compare(run: ConsumerRun, ref: ConsumerRun, classify: bool = True) -> Agreement | None:
    """Spike and output agreement of a consumer's run with snnc's (``None`` when it did not run).

    A layer or output whose element count differs from snnc's counts as entirely mismatched
    (every reference element).
    """
    if not run.ran:
        return None
    mismatches = seen = 0
    for name, ref_steps in ref.spikes.items():
        if name not in run.spikes:
            continue
        for got, want in zip(run.spikes[name], ref_steps, strict=True):
            seen += int(want.sum())
            shaped = _reshape_like(got, want)
            mismatches += int(want.numel()) if shaped is None else int((shaped != want).sum())
    max_diff = 0.0
    agreement: float | None = None
    maybe = [_reshape_like(o, r) for o, r in zip(run.outputs, ref.outputs, strict=False)]
    outs = [o for o in maybe if o is not None]
    if len(outs) != len(maybe) or len(outs) != len(ref.outputs):
        max_diff = float("inf")
        agreement = 0.0 if classify else None
    else:
        for o, r in zip(outs, ref.outputs, strict=True):
            max_diff = max(max_diff, float((o.float() - r.float()).abs().max()))
        if classify:
            got = torch.stack(outs).sum(0).reshape(outs[0].shape[0], -1).argmax(1)
            want = torch.stack(ref.outputs).sum(0).reshape(outs[0].shape[0], -1).argmax(1)
            agreement = float((got == want).float().mean())
    return Agreement(
        layers=len([n for n in ref.spikes if n in run.spikes]),
        layers_total=len(ref.spikes),
        spike_mismatches=mismatches,
        spikes_seen=seen,
        output_max_diff=max_diff,
        prediction_agreement=agreement,
    )
