"""``snnc train --qat``: quantisation-aware fine-tuning of a trained float network into an int8 network.

Recipe (``docs/INT8.md``): start from a float checkpoint (BN folded), quantise it
once (PTQ: the integer grids and scales), then train the folded network for a few
epochs with the straight-through fake quantisation of :mod:`snnc.quant.fakequant`
(weights on their int8 grids, the membrane on the integer dynamics, the input
quantised) and Adam; finally quantise the trained weights again (PTQ, now
``method = qat``) and write one network checkpoint with its int8 fields. The run
reports the held-out metrics of the float start, its PTQ int8 network, and the
QAT int8 network, all measured by the task's own ``evaluate``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from snnc.errors import SnncError
from snnc.train.config import TrainConfig, resolve_defaults

__all__ = ["run_qat"]


def _fields(model: torch.nn.Module, shape: tuple[int, ...], family: str, config: TrainConfig, method: str) -> Any:
    from snnc.models.families import family as registered_family
    from snnc.quant.network import network_fields

    sbt = registered_family(family).stereo_input  # SBT event frames need no input calibration
    fields = network_fields(model, shape, None, None if sbt else config.data[0])
    fields.method = method
    return fields


def _step_shape(task: Any, family: str) -> tuple[int, ...]:
    x = task.example_input()
    return (1, *tuple(int(s) for s in x.shape[2:]))


def run_qat(config: TrainConfig, out: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fine-tune ``config.arch`` (a float checkpoint or shipped model) with fake quantisation; write ``out``.

    Writes ``out/int8.pt`` (network checkpoint with its ``int8`` fields) and ``out/qat.json``
    (recipe and metrics). Returns the metrics.

    Raises:
        SnncError: ``--arch`` is not a trained network, or it already is an int8 network.
    """
    from snnc.fileio import write_json_atomic
    from snnc.models.fold import fold_bn
    from snnc.models.loading import open_model, save_network
    from snnc.quant import Int8Network
    from snnc.quant.fakequant import fake_quantized
    from snnc.train.setup import make_task, task_for_family

    opened = open_model(config.arch)
    if not opened.trained:
        raise SnncError("--qat fine-tunes a trained float network: give a checkpoint or a shipped model", config.arch)
    if opened.meta.get("int8") is not None:
        raise SnncError("is already an int8 checkpoint; --qat starts from a float checkpoint", config.arch)
    family = str(opened.genotype.family)
    given_lr, given_epochs = config.lr, config.epochs  # QAT's own defaults, not the training recipe's
    config = resolve_defaults(dataclasses.replace(config, task=config.task or task_for_family(family)), opened.genotype)
    torch.manual_seed(config.seed)
    device = torch.device(config.device)
    model = fold_bn(opened.model.eval()).to(device)
    for p in model.parameters():
        p.requires_grad_(True)
    task = make_task(config, opened.genotype, device)
    try:
        shape = tuple(opened.input_shape or _step_shape(task, family))
        primary = "one_pixel_accuracy" if task_for_family(family) == "stereo" else "test_accuracy"
        start = time.perf_counter()
        model.eval()
        ptq = _fields(model, shape, family, config, "ptq")
        metrics: dict[str, Any] = {
            "fp32": task.evaluate(model),
            "int8_ptq": task.evaluate(Int8Network(model, ptq).to(device)),
        }
        log(f"start: fp32 {primary} {metrics['fp32'][primary]:.4f}, int8 PTQ {metrics['int8_ptq'][primary]:.4f}")
        lr = float(given_lr if given_lr is not None else 1e-4)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
        generator = torch.Generator().manual_seed(config.seed)
        epochs = int(given_epochs if given_epochs is not None else 2)
        for epoch in range(epochs):
            model.train()
            total, batches = 0.0, 0
            with fake_quantized(model, ptq):
                for batch in task.train_batches(generator):
                    loss, _ = task.loss(model, batch)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach())
                    batches += 1
            log(f"qat epoch {epoch + 1}/{epochs}: train loss {total / max(batches, 1):.4f} ({batches} batches)")
        model.eval()
        qat = _fields(model, shape, family, config, "qat")
        metrics["fp32_after_qat"] = task.evaluate(model)
        metrics["int8_qat"] = task.evaluate(Int8Network(model, qat).to(device))
        recipe = {
            "start": str(config.arch),
            "epochs": epochs,
            "optimizer": "adam",
            "lr": lr,
            "batch_size": config.batch_size,
            "seed": config.seed,
            "fake_quant": "weights on their int8 grids, integer membrane dynamics, input; STE (snnc.quant.fakequant)",
            "wall_s": round(time.perf_counter() - start, 1),
        }
        qat.notes["qat"] = recipe
        out.mkdir(parents=True, exist_ok=True)
        save_network(
            model, out / "int8.pt", folded=True, input_shape=[1, *shape[1:]], int8=qat.to_checkpoint(), metrics=metrics
        )
        write_json_atomic(out / "qat.json", {"recipe": recipe, "metrics": json.loads(json.dumps(metrics))})
        log(
            f"int8 QAT {primary} {metrics['int8_qat'][primary]:.4f} (fp32 start {metrics['fp32'][primary]:.4f}, "
            f"int8 PTQ {metrics['int8_ptq'][primary]:.4f}); wrote {out / 'int8.pt'}"
        )
        return metrics
    finally:
        close = getattr(task, "close", None)
        if close is not None:
            close()
