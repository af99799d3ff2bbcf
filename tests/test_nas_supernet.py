"""SpikeDHS supernets: mixing at membrane vs at spike, explicit state, bi-level gradient routing."""

from __future__ import annotations

import torch

from snnc.models.base import StepContext
from snnc.models.genotype import PRIMITIVES
from snnc.nas.bilevel import BilevelConfig, BilevelSearch
from snnc.nas.cells import SearchCell
from snnc.nas.mixed import MixedEdge
from snnc.nas.supernet import ClassifierSupernet, StereoSupernet, classifier_path
from snnc.nas.tasks import DigitsTask
from snnc.neurons import Neuron


def count_neurons(module: torch.nn.Module) -> int:
    return sum(isinstance(m, Neuron) for m in module.modules())


def test_mm_one_neuron_per_node_ms_one_per_candidate() -> None:
    mm = SearchCell(3, 4, 4, 4, mixing="mm")
    ms = SearchCell(3, 4, 4, 4, mixing="ms")
    n_conv_ops = len(PRIMITIVES) - 1
    assert count_neurons(mm) == 3
    assert count_neurons(ms) == 3 + 9 * n_conv_ops
    bs = sorted(n.spec.b for e in ms.edges for n in e.candidates)
    assert bs == [3.0] * 9 + [5.0] * 9
    net_mm = ClassifierSupernet(nodes=4, layers=3, width=2, in_channels=1, mixing="mm")
    net_ms = ClassifierSupernet(nodes=4, layers=3, width=2, in_channels=1, mixing="ms")
    # stem + 4 nodes per cell (MM); MS adds 2 candidate neurons on each of the 14 edges per cell
    assert len(net_mm.neurons()) == 1 + 3 * 4
    assert len(net_ms.neurons()) == 1 + 3 * (4 + 14 * 2)


def test_mm_and_ms_same_weights_different_outputs() -> None:
    torch.manual_seed(0)
    mm = ClassifierSupernet(nodes=3, layers=3, width=4, in_channels=1, mixing="mm")
    ms = ClassifierSupernet(nodes=3, layers=3, width=4, in_channels=1, mixing="ms")
    ms.load_state_dict(mm.state_dict())  # MS adds parameter-free neurons only
    x = torch.rand(3, 5, 1, 8, 8)
    y_mm, y_ms = mm(x), ms(x)
    assert y_mm.shape == y_ms.shape == (3, 5, 2, 10)
    assert not torch.allclose(y_mm, y_ms)


def test_mixed_edge_membrane_mix_is_weighted_sum_of_currents() -> None:
    torch.manual_seed(1)
    edge = MixedEdge(3, 4, mixing="mm").eval()
    x = torch.rand(2, 3, 5, 5)
    w = torch.softmax(torch.randn(3), 0)
    out = edge(x, w, StepContext({}))
    conv = edge.conv(x)
    expected = w[0] * edge.skip(x) + w[1] * conv[:, :4] + w[2] * conv[:, 4:]
    assert torch.allclose(out, expected, atol=1e-6)


def test_supernet_forward_is_a_loop_of_step() -> None:
    torch.manual_seed(2)
    net = StereoSupernet(
        nodes=3, feature_layers=2, matching_layers=2, levels=2, feature_width=2, matching_width=2, disparities=3
    ).eval()
    x = (torch.rand(3, 1, 2, 5, 12, 15) > 0.8).float()
    y = net(x)
    state = net.init_state(x[0])
    steps = []
    for t in range(3):
        out, state = net.step(x[t], state)
        steps.append(out)
    assert y.shape == (3, 1, 3, 12, 15)
    assert torch.equal(y, torch.stack(steps))
    assert classifier_path(8) == (0, 0, 1, 1, 1, 2, 2, 2)


def test_alphas_get_gradients_only_in_the_arch_step() -> None:
    torch.manual_seed(3)
    net = ClassifierSupernet(nodes=3, layers=3, width=2, in_channels=1)
    task = DigitsTask(time_steps=2)
    search = BilevelSearch(net, task, BilevelConfig(epochs=2, warmup=0, batch_size=16, lr=0.05, arch_lr=0.05))
    batch = next(task.batches("A", 16, 0, 0))
    alphas0 = net.alphas.detach().clone()
    weights0 = [p.detach().clone() for p in net.weight_parameters()]

    search.weight_step(batch)
    assert net.alphas.grad is None
    assert torch.equal(net.alphas, alphas0)
    assert any(not torch.equal(p, q) for p, q in zip(net.weight_parameters(), weights0, strict=False))
    assert all(p.requires_grad for p in net.parameters())

    weights1 = [p.detach().clone() for p in net.weight_parameters()]
    search.arch_step(batch)
    assert net.alphas.grad is not None and float(net.alphas.grad.abs().sum()) > 0
    assert all(p.grad is None for p in net.weight_parameters())
    assert not torch.equal(net.alphas, alphas0)
    assert all(torch.equal(p, q) for p, q in zip(net.weight_parameters(), weights1, strict=False))


def test_stereo_betas_receive_gradients() -> None:
    torch.manual_seed(4)
    net = StereoSupernet(
        nodes=3,
        feature_layers=2,
        matching_layers=3,
        levels=3,
        feature_width=2,
        matching_width=2,
        disparities=4,
        mixing="ms",
    )
    x = (torch.rand(2, 1, 2, 5, 18, 24) > 0.8).float()
    net(x).mean().backward()
    for name in ("feature_alphas", "feature_betas", "matching_alphas", "matching_betas"):
        grad = getattr(net, name).grad
        assert grad is not None and float(grad.abs().sum()) > 0, name
    mask = net.matching_geometry.mask()
    assert torch.all(net.matching_betas.grad[~mask] == 0)  # unused trellis entries stay untouched
