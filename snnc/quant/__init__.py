"""snnc.quant: the int8 network (``--precision int8``), the same integers on every backend.

* :mod:`.fields` — the integer fields a checkpoint's ``int8`` entry holds, input quantisation;
* :mod:`.int8` — post-training quantisation of an export graph, and the integer graph;
* :mod:`.bounds` — overflow refusal (worst-case bounds from the weights);
* :mod:`.calibrate` — input calibration and one-call PTQ of a network;
* :mod:`.head` — the float head on the host (output scale, stereo resampling);
* :mod:`.module` — an int8 network as a torch module (window forward) for evaluation;
* :mod:`.network` — a command's int8 fields: from the checkpoint, or PTQ now;

The integer neuron itself is :mod:`snnc.neurons.integer`; the specification is ``docs/INT8.md``.
"""

from snnc.quant.bounds import check_int_graph, value_bounds
from snnc.quant.calibrate import calibrate_input, int8_graph, quantize_network
from snnc.quant.fields import INT8_FORMAT, QuantFields, quantize_input
from snnc.quant.head import apply_head
from snnc.quant.int8 import apply_int8, float_relaxation, int_neuron_of, nir_form, quantize_graph
from snnc.quant.module import Int8Network

__all__ = [
    "INT8_FORMAT",
    "Int8Network",
    "QuantFields",
    "apply_head",
    "apply_int8",
    "calibrate_input",
    "check_int_graph",
    "float_relaxation",
    "int8_graph",
    "int_neuron_of",
    "nir_form",
    "quantize_graph",
    "quantize_input",
    "quantize_network",
    "value_bounds",
]
