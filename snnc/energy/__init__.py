"""Operation counts and 45 nm energy of snnc networks.

* :mod:`snnc.energy.ops` is the single counting pass: forward hooks on every
  synaptic layer give dense synaptic ops, optional bias ops and fan-out
  synaptic events, the input firing rate and the rate-weighted ops, per layer
  (and, on request, every neuron layer's output firing rate).
* :mod:`snnc.energy.report` turns a pass into ACs, MACs and energy per frame,
  with the same network counted as an ANN; :mod:`snnc.energy.costs` holds the
  per-op energies (Horowitz 45 nm: AC 0.9 pJ, MAC 4.6 pJ).
* :mod:`snnc.energy.models` holds the energy models over that pass (``paper``,
  ``memory``: neuron updates and memory traffic, ``lemaire``: Lemaire et al. 2022).
* :mod:`snnc.energy.meter` gives per-frame energy of a stream from that pass.
* :mod:`snnc.energy.rho` gives HNS its per-neuron-type cost ``rho``.
"""

from snnc.energy.costs import COST_TABLE, DEFAULT_COSTS, EnergyCosts, resolve_costs
from snnc.energy.meter import EnergyMeter
from snnc.energy.models import ENERGY_MODELS, LemaireConfig, MemoryConfig, NeuronEnergy
from snnc.energy.ops import FANOUT_MODES, LayerOps, NeuronActivity, OpsRecorder, OpsReport, count_ops
from snnc.energy.report import COUNT_MODES, EnergyReport, LayerEnergy, energy_report
from snnc.energy.rho import neuron_type_rho, rho_table, type_rates

__all__ = [
    "COST_TABLE",
    "COUNT_MODES",
    "DEFAULT_COSTS",
    "ENERGY_MODELS",
    "FANOUT_MODES",
    "EnergyCosts",
    "EnergyMeter",
    "EnergyReport",
    "LayerEnergy",
    "LayerOps",
    "LemaireConfig",
    "MemoryConfig",
    "NeuronEnergy",
    "NeuronActivity",
    "OpsRecorder",
    "OpsReport",
    "count_ops",
    "energy_report",
    "neuron_type_rho",
    "resolve_costs",
    "rho_table",
    "type_rates",
]
