"""Energies for people to read: one SI prefix per value, so that small networks do not print ``0.0000 mJ``.

Reports people read (``snnc stream``, ``snnc energy``, ``snnc demo``, the energy plot) print each
energy with :func:`format_energy`: 4 significant digits and the prefix that puts the mantissa in
``[1, 1000)`` (``6.702 mJ``, ``12.63 nJ``). Files (JSON, CSV, HDF5 attributes) keep plain numbers in
the unit their field names say.
"""

from __future__ import annotations

import math

__all__ = ["format_energy"]

_PREFIXES = ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ"), (1e-15, "fJ"))


def format_energy(joules: float | None, digits: int = 4) -> str:
    """``joules`` with ``digits`` significant digits and an SI prefix (J down to fJ): ``"6.702 mJ"``.

    ``0`` is ``"0 J"``; ``None`` and non-finite values are ``"-"`` (nothing was counted). The value is
    rounded before its prefix is chosen (999.96 µJ is ``"1.000 mJ"``); below 1 fJ it stays in fJ, from
    1000 J on in J.
    """
    if joules is None or not math.isfinite(joules):
        return "-"
    if joules == 0:
        return "0 J"
    rounded = float(f"{joules:.{digits - 1}e}")  # the significant digits first: 999.96 µJ is 1.000 mJ
    scale, unit = next(((s, u) for s, u in _PREFIXES if abs(rounded) >= s), _PREFIXES[-1])
    value = round(rounded / scale, 12)
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f} {unit}"
