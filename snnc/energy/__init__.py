"""Operation counts and (in later issues) 45 nm energy of snnc networks.

:mod:`snnc.energy.ops` is the single counting pass: forward hooks on every
synaptic layer give dense synaptic ops, optional bias ops and fan-out
synaptic events, and the input firing rate, per layer.
"""
from snnc.energy.ops import FANOUT_MODES, LayerOps, OpsRecorder, OpsReport, count_ops

__all__ = ["FANOUT_MODES", "LayerOps", "OpsRecorder", "OpsReport", "count_ops"]
