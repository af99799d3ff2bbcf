#!/usr/bin/env bash
# Streaming frames/s of the SpikeDHS-Stereo preset on a lent GPU machine (full 260 x 346 resolution).
#
# Run from the repository root on the GPU machine:  bash benchmarks/gpu_stream.sh [FRAMES]
# Writes everything under ${OUT:-gpu_stream_out}/ : the synthetic recording, results.h5 of a CUDA
# stream, and log.txt with nvidia-smi, the per-backend table (torch on CUDA vs CPU; onnxruntime on
# CUDA when its CUDA provider is installed) and the onnx/torch ratio. The paper reports 44 frames/s
# on a V100 (DDES 26); energy counting is off in the timed runs (it needs host syncs per layer).
set -euo pipefail
FRAMES="${1:-24}"
OUT="${OUT:-gpu_stream_out}"
PY="${PY:-.venv/bin/python}"
mkdir -p "$OUT"
LOG="$OUT/log.txt"
: > "$LOG"
{
  echo "== machine"; nvidia-smi || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
  "$PY" -c "import onnxruntime as ort; print('onnxruntime', ort.__version__, ort.get_available_providers())"
} 2>&1 | tee -a "$LOG"

DATA="$OUT/gpu_data.hdf5"
[ -f "$DATA" ] || "$PY" -m snnc data synth "$DATA" --frames "$FRAMES" --quiet --force

ONNX_CUDA=$("$PY" -c "import onnxruntime as ort; print(int('CUDAExecutionProvider' in ort.get_available_providers()))")
echo "== torch on CUDA (and onnx on CUDA if available)" | tee -a "$LOG"
if [ "$ONNX_CUDA" = "1" ]; then GPU_BACKENDS=torch,onnx; else GPU_BACKENDS=torch; fi
"$PY" benchmarks/bench_stream.py --data "$DATA" --frames "$FRAMES" --device cuda --backends "$GPU_BACKENDS" \
  --threads 4 2>&1 | tee -a "$LOG"
echo "== the same file on CPU (torch, onnx; 16 cores)" | tee -a "$LOG"
"$PY" benchmarks/bench_stream.py --data "$DATA" --frames "$FRAMES" --device cpu --backends torch,onnx \
  --threads 16 2>&1 | tee -a "$LOG"
echo "== snnc stream on CUDA with energy and metrics (untrained preset: silent, see the note)" | tee -a "$LOG"
"$PY" -m snnc stream "$DATA" --model spikedhs-stereo --device cuda --out "$OUT/results.h5" --force --json \
  2>&1 | tee -a "$LOG"
echo "log: $LOG"
