"""``format_energy``: the energies people read keep their significant digits at any scale."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snnc.energy.units import format_energy

SCALE = {"J": 1.0, "mJ": 1e-3, "µJ": 1e-6, "nJ": 1e-9, "pJ": 1e-12, "fJ": 1e-15}


@pytest.mark.parametrize(
    ("joules", "text"),
    [
        (6.70234e-3, "6.702 mJ"),  # the paper's SpikeDHS-Stereo figure
        (1.2634e-8, "12.63 nJ"),  # the quick demo's net: "0.0000 mJ" before
        (7.98765e-5, "79.88 µJ"),
        (9.99996e-4, "1.000 mJ"),  # rounds up into the next prefix
        (0.3, "300.0 mJ"),
        (-4.2e-6, "-4.200 µJ"),
        (0.0, "0 J"),
        (None, "-"),
        (math.nan, "-"),
        (math.inf, "-"),
    ],
)
def test_examples(joules, text):
    assert format_energy(joules) == text


def test_the_largest_prefix_takes_what_rounds_past_it():
    assert format_energy(995.0, 2) == "1000 J" and format_energy(1234.6) == "1235 J"


@given(st.floats(min_value=1e-15, max_value=999.0, allow_nan=False), st.integers(min_value=2, max_value=6))
def test_reads_back_within_the_digits_it_keeps(joules, digits):
    value, unit = format_energy(joules, digits).split(" ")
    back = float(value) * SCALE[unit]
    # J is the largest prefix: a value that rounds up to 1000 J stays in J ("1000 J" at 2 digits for 995 J)
    assert 1 <= abs(float(value)) < 1000 or (unit == "J" and abs(float(value)) == 1000)
    whole = len(str(int(abs(float(value)))))  # a mantissa of 100-999 keeps its 3 whole digits
    assert len(value.replace("-", "").replace(".", "").lstrip("0")) == max(digits, whole)
    assert back == pytest.approx(joules, rel=0.5 * 10 ** (1 - digits) + 1e-12)
