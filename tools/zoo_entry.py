"""Turn a training run folder into a shipped model: ``OUT_DIR/NAME.pt`` + ``OUT_DIR/NAME.json`` (snnc.zoo).

Called by ``tools/train_zoo.sh`` after each training; it

1. re-saves the run's ``folded.pt`` as a plain network checkpoint (weights, genotype,
   input shape; no optimizer state) with :func:`snnc.models.loading.save_network`;
2. takes the held-out metrics from the run's ``metrics.json``;
3. for a stereo model with ``--eval-data REC_data.hdf5``: streams that recording
   (``snnc stream --json --out``) with the new checkpoint and scores two
   constant predictors on exactly the same frames and pixels: the training median
   disparity (the run's baseline) and the evaluated recording's own median
   (an oracle constant);
4. writes the sidecar (fields: :mod:`snnc.zoo`) with the SHA-256 of the ``.pt``.

    .venv/bin/python tools/zoo_entry.py --name stereo-synth --run RUN --summary "..." \\
        --commands CMDS.txt --data-json DATA.json [--eval-data REC_data.hdf5] [--wall-s S] --out-dir snnc/zoo
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from snnc.data import layout
from snnc.data.metrics import MetricAccumulator
from snnc.fileio import file_sha256, write_json_atomic
from snnc.models.loading import load_network_checkpoint, save_network
from snnc.version import version_text

_METRICS = ("one_pixel_accuracy", "mean_disparity_error", "mean_depth_error", "median_depth_error")


def _gt_path(f: h5py.File, results: Path) -> Path:
    """The ground-truth file a results file names; a relative name is looked up from the current folder,
    then beside the results file (streams run elsewhere store the path as given)."""
    gt = Path(str(f.attrs["gt_file"]))
    if gt.is_absolute() or gt.exists():
        return gt
    return results.parent / gt


def _constant_scores(results: Path, constants_px: dict[str, float]) -> dict[str, dict[str, float]]:
    """Metrics of constant disparity predictions (unscaled px) on the frames a stream scored."""
    with h5py.File(results, "r") as f:
        gt_file = _gt_path(f, results)
        gt_index = f["gt_index"][()]
        shape = f["disparity"].shape[1:]
    accs = {name: MetricAccumulator() for name in constants_px}
    with h5py.File(gt_file, "r") as g:
        depth = g[layout.DEPTH_KEY]
        for k in gt_index:
            frame = depth[int(k)]
            for name, px in constants_px.items():
                accs[name].update(np.full(shape, px * layout.DISPARITY_SCALE, dtype=np.float32), frame)
    return {name: {m: float(acc.result()[m]) for m in _METRICS} for name, acc in accs.items()}


def _median_gt_disparity_px(results: Path) -> float:
    """Median ground-truth disparity fB / depth (unscaled px) over the valid pixels of the scored frames."""
    with h5py.File(results, "r") as f:
        gt_file = _gt_path(f, results)
        gt_index = f["gt_index"][()]
    values = []
    with h5py.File(gt_file, "r") as g:
        depth = g[layout.DEPTH_KEY]
        for k in gt_index:
            d = depth[int(k)]
            ok = np.isfinite(d) & (d > 0)
            values.append(layout.FB_INDOOR_FLYING / d[ok])
    return float(np.median(np.concatenate(values)))


def _score_results(results: Path, train_median_px: float) -> dict[str, Any]:
    """The model's metrics from a ``snnc stream --out`` file and both constant baselines on its frames."""
    with h5py.File(results, "r") as f:
        summary = json.loads(f.attrs["summary"])
        data = Path(str(f.attrs["data_file"]))
    oracle_px = _median_gt_disparity_px(results)
    base = _constant_scores(results, {"train": train_median_px, "oracle": oracle_px})
    out: dict[str, Any] = {m: summary[m] for m in _METRICS}
    out.update(
        frames=summary["frames_with_gt"],
        recording=str(data.name),
        baseline_one_pixel_accuracy=base["train"]["one_pixel_accuracy"],
        baseline_predicted_disparity_px=train_median_px,
        oracle_median_one_pixel_accuracy=base["oracle"]["one_pixel_accuracy"],
        oracle_median_disparity_px=oracle_px,
        baselines=base,
        stream_wall_s=summary["wall_s"],
    )
    return out


def _evaluate_stream(pt: Path, data: Path, train_median_px: float, frames: int | None) -> dict[str, Any]:
    """Stream ``data`` with checkpoint ``pt``; the model's metrics and both constant baselines."""
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "r.h5"
        cmd = [
            sys.executable,
            "-m",
            "snnc",
            "stream",
            str(data),
            "--model",
            str(pt),
            "--out",
            str(results),
            "--json",
            "--no-energy",
            "--threads",
            "1",
        ] + (["--frames", str(frames)] if frames else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"zoo_entry: stream failed: {proc.stderr.strip()}")
        return _score_results(results, train_median_px)


def _held_out_stereo(model: Any, config: dict[str, Any]) -> dict[str, Any]:
    """Held-out metrics of ``model`` and of the constant-median baseline on the run's own test windows
    (what the trainer reports in ``metrics.json``), for a checkpoint taken before the run ended."""
    import torch

    from snnc.train.data_stereo import StereoData
    from snnc.train.task_stereo import StereoTask

    sd = StereoData(
        config["data"],
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
    try:
        out = dict(task.evaluate(model))
        out["baseline"] = task.baseline()
    finally:
        task.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--run", type=Path, required=True, help="training run folder (folded.pt, metrics.json)")
    ap.add_argument("--summary", required=True, help="one line about the model")
    ap.add_argument("--commands", type=Path, required=True, help="file with the exact commands, one a line")
    ap.add_argument("--data-json", type=Path, required=True, help="JSON description of the training data")
    ap.add_argument("--eval-data", type=Path, default=None, help="stereo: an unseen *_data.hdf5 to stream")
    ap.add_argument("--eval-description", default="", help="how the --eval-data recording was made")
    ap.add_argument("--eval-frames", type=int, default=None, help="stream only the first N frames of --eval-data")
    ap.add_argument("--wall-s", type=float, default=None, help="training wall time (s)")
    ap.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="ship this checkpoint (e.g. a copy of checkpoint.pt taken after epoch N) instead of "
        "RUN/folded.pt; held-out metrics are then recomputed on the run's test windows",
    )
    ap.add_argument(
        "--expect-epoch",
        type=int,
        default=None,
        help="with --checkpoint: refuse it unless it was written after this epoch",
    )
    ap.add_argument(
        "--eval-results",
        type=Path,
        default=None,
        help="score an existing 'snnc stream --out' file of the shipped OUT_DIR/NAME.pt instead of "
        "streaming --eval-data (the .pt is then kept as it is)",
    )
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args()

    import torch

    from snnc.models.fold import fold_bn

    torch.set_num_threads(1)
    config = json.loads((args.run / "config.json").read_text())
    model, genotype, doc = load_network_checkpoint(args.checkpoint or args.run / "folded.pt")
    if not doc.get("folded", False):
        model = fold_bn(model.eval()).eval()
    epoch = doc.get("epoch")
    if args.expect_epoch is not None and epoch != args.expect_epoch:
        raise SystemExit(f"zoo_entry: {args.checkpoint} was written after epoch {epoch}, not {args.expect_epoch}")
    if args.checkpoint is not None:
        run_metrics = _held_out_stereo(model, config)
    else:
        run_metrics = json.loads((args.run / "metrics.json").read_text())
    pt = args.out_dir / f"{args.name}.pt"
    if args.eval_results is None:
        save_network(model, pt, folded=True, input_shape=doc.get("input_shape"), zoo_name=args.name)
    n_params = int(sum(p.numel() for p in model.parameters()))
    task = "stereo" if genotype.family == "spikedhs-stereo" else "classification"
    metrics: dict[str, Any] = {}
    if task == "stereo":
        b = run_metrics.get("baseline", {})
        folded = run_metrics.get("folded") or run_metrics  # the shipped network is the folded one
        metrics["held_out"] = {m: folded.get(m, run_metrics.get(m)) for m in _METRICS}
        metrics["held_out"].update(
            baseline_one_pixel_accuracy=b.get("one_pixel_accuracy"),
            baseline_predicted_disparity_px=(b.get("predicted_disparity", float("nan")) / layout.DISPARITY_SCALE),
            where="tail 20 % of each training recording, training crop",
        )
        train_median = metrics["held_out"]["baseline_predicted_disparity_px"]
        unseen = None
        if args.eval_results is not None:
            unseen = _score_results(args.eval_results, train_median)
        elif args.eval_data is not None:
            unseen = _evaluate_stream(pt, args.eval_data, train_median, args.eval_frames)
        if unseen is not None:
            unseen["made_with"] = args.eval_description
            metrics["unseen_full_resolution"] = unseen
    else:
        folded = run_metrics.get("folded") or {}
        metrics["held_out"] = {
            "accuracy": folded.get("test_accuracy", run_metrics.get("test_accuracy")),
            "unfolded_accuracy": run_metrics.get("test_accuracy"),
            "where": "sklearn digits, stratified 20 % test split (split seed 0)",
        }
    entry = {
        "name": args.name,
        "family": genotype.family,
        "task": task,
        "summary": args.summary,
        "file": pt.name,
        "sha256": file_sha256(pt),
        "bytes": pt.stat().st_size,
        "parameters": n_params,
        "snnc_version": version_text().removeprefix("snnc "),
        "seed": int(config.get("seed", 0)),
        "training_command": [line.strip() for line in args.commands.read_text().splitlines() if line.strip()],
        "training_wall_s": args.wall_s,
        "epochs_trained": epoch if args.checkpoint is not None else config.get("epochs"),
        "input_shape": doc.get("input_shape"),
        "data": json.loads(args.data_json.read_text()),
        "metrics": metrics,
        "genotype": genotype.to_dict(),
    }
    write_json_atomic(args.out_dir / f"{args.name}.json", entry)
    print(
        json.dumps({"name": args.name, "bytes": entry["bytes"], "parameters": n_params, "metrics": metrics}, indent=1)
    )


if __name__ == "__main__":
    main()
