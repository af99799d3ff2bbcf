"""Frames per second of the SpikeDHS-Stereo preset on CPU, fixed-window and streaming.

One frame = one depth frame = one left/right SBT stack pair (2 x 5 x H x W),
which is one network time step in both modes:

* fixed window: ``model(x_seq)`` on a window of ``--window`` stacks (training
  uses 8 = 2 burn-in + 6 labelled); frames/s = window / seconds (the paper's
  FPS measurement, appendix 10.5);
* streaming: ``model.step(x_t, state)`` once per frame, state carried.

Forward runs under ``no_grad`` in eval mode (and once more with BN folded, the
deployed network). Forward+backward: fixed window = loss over the window and
one backward; streaming = one backward per frame with the state detached
(truncated BPTT of one step). Prints seconds per frame and frames/s.

    .venv/bin/python benchmarks/bench_stereo_forward.py [--height 260 --width 346 --window 8 --frames 8]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from snnc.models.build import build_model
from snnc.models.fold import fold_bn
from snnc.models.stereo import subpixel_cross_entropy


def sbt(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Random sparse SBT stacks in {-1, 0, 1} (about 10 % events), shaped (T, 1, 2, 5, H, W)."""
    g = torch.Generator().manual_seed(seed)
    events = torch.rand(frames, 1, 2, 5, height, width, generator=g) < 0.1
    sign = torch.randint(0, 2, events.shape, generator=g).float() * 2 - 1
    return events.float() * sign


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def window_forward(net, x):
    with torch.no_grad():
        return timed(lambda: net(x)) / x.shape[0]


def stream_forward(net, x):
    with torch.no_grad():
        state = net.init_state(x[0])

        def run():
            nonlocal state
            for t in range(x.shape[0]):
                _, state = net.step(x[t], state)

        return timed(run) / x.shape[0]


def window_backward(net, x, gt, valid):
    def run():
        loss = subpixel_cross_entropy(net(x), gt, valid)
        loss.backward()

    net.zero_grad(set_to_none=True)
    return timed(run) / x.shape[0]


def stream_backward(net, x, gt, valid):
    state = net.init_state(x[0])

    def run():
        nonlocal state
        for t in range(x.shape[0]):
            cost, state = net.step(x[t], tuple(s.detach() for s in state))
            subpixel_cross_entropy(cost, gt[t], valid[t]).backward()

    net.zero_grad(set_to_none=True)
    return timed(run) / x.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=260)
    parser.add_argument("--width", type=int, default=346)
    parser.add_argument("--window", type=int, default=8, help="stacks per fixed window")
    parser.add_argument("--frames", type=int, default=8, help="frames streamed")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    parser.add_argument("--no-backward", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = build_model("spikedhs-stereo")
    n_params = sum(p.numel() for p in net.parameters())
    x_win = sbt(args.window, args.height, args.width)
    x_str = sbt(args.frames, args.height, args.width, seed=1)
    print(
        f"SpikeDHS-Stereo ({n_params / 1e6:.3f} M params, D = {net.disparities}) on CPU, "
        f"{torch.get_num_threads()} threads, input 2 x 5 x {args.height} x {args.width}"
    )
    net.eval()
    with torch.no_grad():
        net.step(x_win[0], net.init_state(x_win[0]))  # warm-up (shape probe, kernels)
    rows = [
        (f"forward, fixed window T={args.window}", window_forward(net, x_win)),
        (f"forward, streaming ({args.frames} frames)", stream_forward(net, x_str)),
    ]
    folded = fold_bn(net)
    rows.append(("forward, streaming, BN folded", stream_forward(folded, x_str)))
    if not args.no_backward:
        net.train()
        gt = torch.rand(max(args.window, args.frames), 1, args.height, args.width) * 37
        valid = torch.rand(gt.shape) > 0.3
        rows.append(
            (
                f"forward+backward, fixed window T={args.window}",
                window_backward(net, x_win, gt[: args.window], valid[: args.window]),
            )
        )
        rows.append(
            (
                "forward+backward, streaming (TBPTT 1)",
                stream_backward(net, x_str, gt[: args.frames], valid[: args.frames]),
            )
        )
    base = rows[0][1]
    print(f"{'mode':42s} {'s/frame':>9s} {'frames/s':>9s} {'vs window fwd':>14s}")
    for name, seconds in rows:
        print(f"{name:42s} {seconds:9.3f} {1 / seconds:9.3f} {seconds / base:13.2f}x")
    print(f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
