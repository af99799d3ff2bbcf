"""Does a trained stereo network match the two views, or predict from one view alone?

Evaluates a run folder's checkpoint on its held-out (tail) frames and on the
first training windows, with the input unchanged and with the right view
replaced (by the left view, by zeros, swapped with the left, shifted by 3 px).
A network that matches collapses when the right view is replaced by the left;
one that learned monocular cues does not. Prints 1PA / mean disparity error
per variant and the constant-median baseline.

    .venv/bin/python benchmarks/stereo_view_ablation.py RUN_DIR REC_data.hdf5 [...]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from snnc.data.metrics import MetricAccumulator
from snnc.models.stereo import estimate_disparity
from snnc.train.checkpoint import load_model
from snnc.train.data_stereo import StereoData
from snnc.train.task_stereo import StereoTask


def _same(x: torch.Tensor) -> torch.Tensor:
    x[:, :, 1] = x[:, :, 0]
    return x


def _zero(x: torch.Tensor) -> torch.Tensor:
    x[:, :, 1] = 0
    return x


def _swap(x: torch.Tensor) -> torch.Tensor:
    return x[:, :, [1, 0]].contiguous()


def _shift3(x: torch.Tensor) -> torch.Tensor:
    right = x[:, :, 1].clone()
    x[:, :, 1] = 0
    x[:, :, 1, ..., :-3] = right[..., 3:]
    return x


VARIANTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "unchanged": lambda x: x,
    "right := left": _same,
    "right := 0": _zero,
    "views swapped": _swap,
    "right shifted 3 px": _shift3,
}


def main() -> None:
    torch.set_num_threads(1)
    run, data = Path(sys.argv[1]), sys.argv[2:]
    config = json.loads((run / "config.json").read_text())
    model = load_model(run / "checkpoint.pt").eval()
    sd = StereoData(
        data,
        burn_in=config["burn_in"],
        steps=config["steps"],
        split=config["split"],
        test_fraction=config["test_fraction"],
        crop=config["crop"],
        downscale=config["downscale"],
        max_disparity=(model.disparities - 1) * model.disp_step,
        fb=config["fb"],
        progress=False,
    )
    task = StereoTask(sd, model.disparities, model.disp_step, 4, torch.device("cpu"))

    def evaluate(transform: Callable[[torch.Tensor], torch.Tensor], windows: list) -> tuple[float, float]:
        acc = MetricAccumulator(fb=sd.fb, scale=sd.scale, max_disparity=sd.max_disparity)
        for i in range(0, len(windows), 4):
            batch = sd.batch(windows[i : i + 4])
            with torch.no_grad():
                cost = model(transform(batch.x.clone()))[sd.burn_in :]
            pred = estimate_disparity(cost, delta=2, disp_step=model.disp_step).numpy()
            for s in range(pred.shape[0]):
                for b in range(pred.shape[1]):
                    acc.update(pred[s, b], batch.depth[s, b].numpy())
        r = acc.result()
        return r["one_pixel_accuracy"], r["mean_disparity_error"]

    print(f"{'input':20s} {'held-out 1PA':>12s} {'MDispE px':>10s} {'train 1PA':>10s} {'MDispE px':>10s}")
    for name, transform in VARIANTS.items():
        t1, te = evaluate(transform, sd.test_windows)
        r1, re_ = evaluate(transform, sd.train_windows[:60])
        print(f"{name:20s} {t1:12.3f} {te:10.3f} {r1:10.3f} {re_:10.3f}", flush=True)
    base = task.baseline()
    print(f"{'constant median':20s} {base['one_pixel_accuracy']:12.3f} {base['mean_disparity_error']:10.3f}")


if __name__ == "__main__":
    main()
