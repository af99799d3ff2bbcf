"""The int8 host head: its bilinear-per-bin resize is PyTorch's trilinear resize bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from snnc.quant import apply_head


def meta(size, scale=0.0173, index=0):
    return {"output_scale": scale, "head": {"size": list(size), "mode": "trilinear", "index": index}}


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((1, 1, 33, 87, 116), (33, 260, 346)),  # the published net at full resolution
        ((1, 1, 33, 44, 58), (33, 130, 173)),  # half resolution
        ((2, 1, 9, 20, 30), (9, 61, 97)),  # odd ratios, a batch
        ((1, 1, 3, 90, 80), (3, 40, 89)),  # downsampling, 3 bins
        ((1, 1, 5, 20, 20), (5, 64, 65)),  # just past the separable kernel's threshold
        ((1, 1, 5, 20, 20), (5, 64, 64)),  # at it: the trilinear form itself
        ((2, 1, 9, 7, 5), (9, 29, 13)),  # small outputs: the trilinear form itself
        ((1, 1, 1, 2, 3), (1, 5, 7)),
    ],
)
def test_same_depth_resize_equals_torch_trilinear(shape, size):
    g = torch.Generator().manual_seed(sum(shape))
    for y in (torch.randint(-3000, 3000, shape, generator=g).float(), torch.randn(shape, generator=g) * 50):
        for scale in (0.0173, 1.0, 3.1e-5):
            fast = apply_head(meta(size, scale), y)
            literal = apply_head(meta(size, scale), y, literal=True)
            stock = F.interpolate(y.float() * scale, size=size, mode="trilinear", align_corners=False)[:, 0]
            assert torch.equal(literal, stock)
            assert fast.shape == stock.shape
            assert torch.equal(fast, stock), float((fast - stock).abs().max())
            assert torch.equal(fast.view(torch.int32), stock.view(torch.int32))  # the same bits, signed zeros too


def test_depth_change_and_non_finite_input_take_the_trilinear_form():
    y = torch.randn(1, 1, 5, 6, 7)
    grown = apply_head(meta((9, 12, 14), 1.0), y)  # the disparity axis resized: no shortcut
    assert torch.equal(grown, F.interpolate(y, size=(9, 12, 14), mode="trilinear", align_corners=False)[:, 0])
    y[0, 0, 2, 3, 3] = float("inf")  # 0 * inf is NaN in the trilinear form: the shortcut would hide it
    same = apply_head(meta((5, 12, 14), 1.0), y)
    stock = F.interpolate(y, size=(5, 12, 14), mode="trilinear", align_corners=False)[:, 0]
    assert torch.equal(same.isnan(), stock.isnan()) and bool(same.isnan().any())
    assert torch.equal(same.nan_to_num(), stock.nan_to_num())


def test_head_without_resize_only_scales():
    y = torch.randint(-5, 5, (2, 10)).float()
    assert torch.equal(apply_head({"output_scale": 0.5, "head": None}, y), y * 0.5)
