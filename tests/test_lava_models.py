"""snnc's Conv ProcessModel convolves like Lava's own fixed-point Conv model (lava.proc.conv.utils.conv)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lava.proc.conv.utils")

from lava.proc.conv import utils

from snnc.export.lava_models import conv_gemm, exact_dtype

CASES = [  # (input (X, Y, C), out channels, kernel (x, y), stride, padding, dilation, groups)
    ((9, 7, 3), 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((10, 8, 4), 6, (3, 3), (2, 2), (1, 1), (1, 1), 2),
    ((11, 6, 4), 4, (3, 2), (1, 2), (2, 0), (2, 1), 1),
    ((8, 8, 6), 6, (1, 1), (1, 1), (0, 0), (1, 1), 6),  # depthwise 1x1 (an identity skip)
    ((7, 9, 6), 12, (3, 3), (1, 1), (1, 1), (1, 1), 3),
    ((6, 5, 2), 3, (5, 3), (1, 1), (2, 1), (1, 1), 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("graded", [False, True])
def test_conv_gemm_equals_lavas_conv(case, graded):
    shape, out_c, k, s, p, d, g = case
    rng = np.random.default_rng(len(shape) + out_c + graded)
    x = rng.integers(-127, 128, size=shape) if graded else rng.random(shape) < 0.3
    w = rng.integers(-128, 128, size=(out_c, *k, shape[2] // g)).astype(np.int32)
    want = utils.conv(x, w, k, s, p, d, g)
    dtype = exact_dtype(w, 127 if graded else 1)
    got = conv_gemm(x, w, k, s, p, d, g, dtype=dtype)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)


def test_exact_dtype_bounds_the_partial_sums():
    w = np.full((2, 3, 3, 16), 127, dtype=np.int32)  # 144 * 127 = 18 288 per output
    assert exact_dtype(w, 1) is np.float32
    assert exact_dtype(w, 2**10) is np.float64  # 18 288 * 1024 > 2**24
    assert exact_dtype(w, 2**50) is None  # beyond float64's integers: Lava's own conv
