"""snnc.neurons: the one spiking-neuron implementation used everywhere.

Pure step functions with explicit state (:mod:`.dynamics`), a validated
hyper-parameter record (:mod:`.spec`), the surrogate-gradient spike function
(:mod:`.surrogate`) and an ``nn.Module`` wrapper (:mod:`.module`).
"""

from snnc.neurons.dynamics import (
    STATE_FIELDS,
    State,
    init_state,
    leak_factor,
    neuron_sequence,
    neuron_step,
    state_fields,
    state_size,
)
from snnc.neurons.module import Neuron
from snnc.neurons.spec import NEURON_TYPES, NeuronSpec
from snnc.neurons.surrogate import SURROGATES, spike_fn, surrogate_derivative

__all__ = [
    "NEURON_TYPES",
    "SURROGATES",
    "Neuron",
    "NeuronSpec",
    "STATE_FIELDS",
    "State",
    "init_state",
    "leak_factor",
    "neuron_sequence",
    "neuron_step",
    "spike_fn",
    "state_fields",
    "state_size",
    "surrogate_derivative",
]
