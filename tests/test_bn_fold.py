"""BatchNorm folding: the folded copy spikes identically, step by step, and has no BN left."""

from __future__ import annotations

import pytest
import torch

from snnc.errors import SnncError
from snnc.models.build import build_model
from snnc.models.fold import batchnorm_layers, fold_bn
from snnc.models.layers import ConvBN

from _export_util import record_spikes

F64 = torch.float64


def trained_bn(net: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """Give every BN non-trivial affine parameters and running statistics, then eval()."""
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, ConvBN) and m.bn is not None:
            with torch.no_grad():
                m.bn.weight.copy_(0.5 + torch.rand(m.bn.weight.shape, generator=g, dtype=F64))
                m.bn.bias.copy_(0.2 * torch.randn(m.bn.bias.shape, generator=g, dtype=F64))
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(x + 0.3 * torch.randn(x.shape, generator=g, dtype=F64))
    return net.eval()


CASES = {
    "spikedhs-cla": ({"filter_multiplier": 4}, lambda: torch.rand(4, 2, 3, 16, 16, dtype=F64)),
    "spikedhs-stereo": (
        {"feature_filter_multiplier": 4, "matching_filter_multiplier": 2, "disparities": 6},
        lambda: torch.randint(-1, 2, (3, 2, 2, 5, 18, 24)).to(F64),
    ),
}


@pytest.mark.parametrize("preset", sorted(CASES))
def test_folded_preset_spikes_identically(preset):
    torch.manual_seed(0)
    overrides, make_x = CASES[preset]
    x = make_x()
    net = trained_bn(build_model(preset, **overrides).to(F64), x)
    n_bn = len(batchnorm_layers(net))
    folded = fold_bn(net)
    assert batchnorm_layers(folded) == [] and len(batchnorm_layers(net)) == n_bn > 10  # original untouched
    assert not any(isinstance(m, ConvBN) and m.bn is not None for m in folded.modules())
    y, spikes = record_spikes(net, x)
    y_f, spikes_f = record_spikes(folded, x)
    active = 0
    for name in spikes:
        assert len(spikes[name]) == len(spikes_f[name]) == x.shape[0]
        for t, (a, b) in enumerate(zip(spikes[name], spikes_f[name], strict=False)):
            assert torch.equal(a, b), f"{name} differs at step {t}"
        active += int(sum(s.sum() for s in spikes[name]) > 0)
    assert active >= 0.8 * len(spikes)  # folding is tested on layers that actually fire
    scale = y.abs().max()
    assert torch.allclose(y_f, y, rtol=1e-5, atol=1e-5 * float(scale))
    # float32 also agrees on the outputs to 1e-5 relative of their range
    y32 = net.float()(x.float()).detach()
    y32_f = fold_bn(net).float()(x.float()).detach()
    assert torch.allclose(y32_f, y32, rtol=1e-5, atol=1e-4 * float(y32.abs().max()))


def test_stray_batchnorm_is_refused():
    net = build_model("spikedhs-cla", filter_multiplier=2)
    net.extra = torch.nn.BatchNorm2d(4)
    with pytest.raises(SnncError, match=r"cannot fold BatchNorm outside a ConvBN: extra"):
        fold_bn(net)


def test_fold_keeps_the_genotype_and_the_parameters_count_shrinks():
    net = build_model("spikedhs-cla", filter_multiplier=2)
    folded = fold_bn(net)
    assert folded.genotype == net.genotype and folded is not net
    n = sum(p.numel() for p in net.parameters())
    n_f = sum(p.numel() for p in folded.parameters())
    n_bn = sum(m.bn.weight.numel() for m in net.modules() if isinstance(m, ConvBN) and m.bn is not None)
    assert n_f == n - n_bn  # gamma, beta -> one bias per channel
