"""Energy per operation: the AC / MAC costs that turn op counts into joules.

The papers (and ``spec/energy.md``) use Horowitz, "Computing's energy problem
(and what we can do about it)", ISSCC 2014, table for a 45 nm process at
0.9 V: a 32-bit floating-point add costs 0.9 pJ and a multiply 3.7 pJ, so an
accumulate (AC, spike-driven synaptic op) is 0.9 pJ and a multiply-accumulate
(MAC) 3.7 + 0.9 = 4.6 pJ. The same table gives other number formats of that
45 nm process; they are offered as alternatives (``--costs``). No other
process node is listed because we have no published per-op numbers for one
that we could cite; pass explicit ``ac_pj`` / ``mac_pj`` for your own.

Published per-op energies of neuromorphic chips ship as package data
(``snnc/energy/cost_tables.json``, each entry with its citation) and join the
table: ``loihi`` (Davies et al., IEEE Micro 2018, Table 2: synaptic op
23.6 pJ, neuron update 52 pJ, or 81 pJ in a step where the neuron fires).
A table may give a neuron update energy; otherwise a neuron update is
costed from its operations (:data:`snnc.energy.models.NEURON_OPS`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from snnc.errors import SnncError

__all__ = ["EnergyCosts", "COST_TABLE", "DEFAULT_COSTS", "resolve_costs"]

_HOROWITZ = "Horowitz, ISSCC 2014, 45 nm 0.9 V operation-energy table"


@dataclass(frozen=True)
class EnergyCosts:
    """Energy of one accumulate (AC) and one multiply-accumulate (MAC), in picojoules.

    Attributes:
        name: short key (``45nm-fp32``...).
        ac_pj: energy of one AC (an add).
        mac_pj: energy of one MAC (a multiply plus an add).
        source: where the numbers come from.
        neuron_update_pj: energy of one neuron update (leak, compare, reset) in a step
            where the neuron does not fire; ``None``: costed from its ops at AC/MAC.
        neuron_spike_pj: energy of a neuron update in a step where it fires
            (``None``: ``neuron_update_pj``).
    """

    name: str
    ac_pj: float
    mac_pj: float
    source: str
    neuron_update_pj: float | None = None
    neuron_spike_pj: float | None = None

    def __post_init__(self) -> None:
        for what, v in (
            ("AC", self.ac_pj),
            ("MAC", self.mac_pj),
            ("neuron update", self.neuron_update_pj),
            ("neuron spike", self.neuron_spike_pj),
        ):
            if v is None and what.startswith("neuron"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise SnncError(f"{what} energy must be a non-negative number of pJ, got {v!r}")

    @property
    def ac_j(self) -> float:
        """AC energy in joules."""
        return self.ac_pj * 1e-12

    @property
    def mac_j(self) -> float:
        """MAC energy in joules."""
        return self.mac_pj * 1e-12

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return asdict(self)


#: Per-op energies; ``45nm-fp32`` is the papers' model (AC 0.9 pJ, MAC 4.6 pJ).
COST_TABLE: dict[str, EnergyCosts] = {
    "45nm-fp32": EnergyCosts("45nm-fp32", 0.9, 3.7 + 0.9, f"{_HOROWITZ}: fp32 add 0.9, mult 3.7 pJ"),
    "45nm-fp16": EnergyCosts("45nm-fp16", 0.4, 1.1 + 0.4, f"{_HOROWITZ}: fp16 add 0.4, mult 1.1 pJ"),
    "45nm-int32": EnergyCosts("45nm-int32", 0.1, 3.1 + 0.1, f"{_HOROWITZ}: int32 add 0.1, mult 3.1 pJ"),
    "45nm-int8": EnergyCosts("45nm-int8", 0.03, 0.2 + 0.03, f"{_HOROWITZ}: int8 add 0.03, mult 0.2 pJ"),
}
DEFAULT_COSTS: EnergyCosts = COST_TABLE["45nm-fp32"]


def _packaged_tables() -> dict[str, EnergyCosts]:
    """The cost tables shipped as package data (``cost_tables.json``), by name."""
    text = (resources.files("snnc.energy") / "cost_tables.json").read_text(encoding="utf-8")
    out: dict[str, EnergyCosts] = {}
    for entry in json.loads(text)["tables"]:
        costs = EnergyCosts(
            str(entry["name"]),
            float(entry["ac_pj"]),
            float(entry["mac_pj"]),
            str(entry["source"]),
            entry.get("neuron_update_pj"),
            entry.get("neuron_spike_pj"),
        )
        out[costs.name] = costs
    return out


COST_TABLE.update(_packaged_tables())


def resolve_costs(name: str | None = None, ac_pj: float | None = None, mac_pj: float | None = None) -> EnergyCosts:
    """A table entry (default ``45nm-fp32``) with ``ac_pj`` / ``mac_pj`` overriding it when given.

    Raises:
        SnncError: unknown table name or invalid energy.
    """
    key = name or DEFAULT_COSTS.name
    if key not in COST_TABLE:
        raise SnncError(f"unknown energy cost table {key!r} (expected one of {', '.join(COST_TABLE)})")
    base = COST_TABLE[key]
    if ac_pj is None and mac_pj is None:
        return base
    return EnergyCosts(
        f"{base.name} (custom)",
        base.ac_pj if ac_pj is None else float(ac_pj),
        base.mac_pj if mac_pj is None else float(mac_pj),
        f"user-given AC/MAC energies over {base.name}",
        base.neuron_update_pj,
        base.neuron_spike_pj,
    )
