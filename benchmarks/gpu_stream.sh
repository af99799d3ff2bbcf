#!/usr/bin/env bash
# GPU streaming of the SpikeDHS-Stereo preset at full MVSEC resolution (260 x 346), in one go (< 8 min on
# an H100/H200). Run from the repository root on the GPU machine, with a Python environment that has a CUDA
# build of torch and snnc importable (PY=..., default .venv/bin/python):
#
#   bash benchmarks/gpu_stream.sh [FRAMES]        (default 60 frames; OUT=folder, default gpu_stream_out)
#
# Writes under $OUT: log.txt (everything printed), modes.json (benchmarks/gpu_stream.py: frames/s and
# median latency of eager / CUDA graph x fp32 / tf32 / fp16 / bf16, spike mismatches and disparity
# differences against fp32 eager), the synthetic recording, and stream_*.json (snnc stream --device cuda
# end to end: reading + SBT encoding on the CPU included). The target is >= 400 full-frame
# frames/s on an H100/H200 (the paper reports 44 frames/s on a V100).
set -uo pipefail
FRAMES="${1:-60}"
OUT="${OUT:-gpu_stream_out}"
PY="${PY:-.venv/bin/python}"
mkdir -p "$OUT"
LOG="$OUT/log.txt"
: > "$LOG"
start=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - start )) s)" | tee -a "$LOG"; }

step "machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
  "$PY" -c "import onnxruntime as ort; print('onnxruntime', ort.__version__, ort.get_available_providers())" || true
} 2>&1 | tee -a "$LOG"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { echo "gpu_stream: torch sees no CUDA device" | tee -a "$LOG"; exit 1; }

DATA="$OUT/gpu_${FRAMES}_data.hdf5"
step "synthetic 260x346 recording, $FRAMES frames"
[ -f "$DATA" ] || "$PY" -m snnc data synth "$DATA" --frames "$FRAMES" --quiet --force 2>&1 | tee -a "$LOG"

step "modes: eager / CUDA graph x fp32 / tf32 / fp16 / bf16 (benchmarks/gpu_stream.py)"
timeout 300 "$PY" benchmarks/gpu_stream.py --data "$DATA" --frames "$FRAMES" --json "$OUT/modes.json" 2>&1 | tee -a "$LOG"

step "CUDA-graph replay == eager, spike for spike (tests/test_torch_backend.py on the GPU)"
timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_torch_backend.py 2>&1 | tail -5 | tee -a "$LOG"

# snnc stream end to end (CPU reading + encoding included): eager, CUDA graph, eager with energy counting
for variant in "eager --no-energy" "graph --cuda-graph --no-energy" "energy"; do
  name=${variant%% *}; args=${variant#"$name"}
  step "snnc stream --device cuda$args (preset, untrained: silent, so its disparity is not meaningful)"
  timeout 120 "$PY" -m snnc stream "$DATA" --model spikedhs-stereo --device cuda $args --json --quiet \
    > "$OUT/stream_$name.json" 2>> "$LOG"
  "$PY" -c "import json,sys; s=json.load(open(sys.argv[1])); print(f\"  fps {s['fps']:.1f} (pipeline), infer_fps {s['infer_fps']:.1f}, read_s {s['read_s']:.2f}, energy_s {s['energy_s']:.2f}, {s['placement'][0]['runs_on']}\")" \
    "$OUT/stream_$name.json" 2>&1 | tee -a "$LOG"
done

step "onnxruntime on CUDA (refused in one line when its CUDA provider is not installed)"
timeout 120 "$PY" -m snnc stream "$DATA" --model spikedhs-stereo --backend onnx --device cuda --no-energy \
  --json --quiet --frames 20 > "$OUT/stream_onnx_cuda.json" 2>> "$LOG" \
  && "$PY" -c "import json,sys; s=json.load(open(sys.argv[1])); print(f\"  onnx cuda infer_fps {s['infer_fps']:.1f}\")" "$OUT/stream_onnx_cuda.json" | tee -a "$LOG" \
  || tail -1 "$LOG"
step "done; log: $LOG"
