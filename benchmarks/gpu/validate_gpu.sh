#!/usr/bin/env bash
# Validation on a machine with one NVIDIA GPU, in one go (a few minutes): world size 1,
# fp32 vs bf16, DDP and FSDP, energy from NVML. Results go to docs/validation/gpu-<date>/
# and are spliced into docs/validation.md as the block "gpu-<date>".
#
#   benchmarks/gpu/validate_gpu.sh            # GPT-2 small shape, 200 timed steps
#   MODEL=small STEPS=50 benchmarks/gpu/validate_gpu.sh
#
# Needs torch with CUDA and nvidia-ml-py (`pip install -e '.[dev]'` with a CUDA torch).
set -euo pipefail
cd "$(dirname "$0")/../.."

python - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("validate_gpu.sh: torch sees no CUDA device (install a CUDA build of torch)")
print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", file=sys.stderr)
PY

day=$(date -u +%Y-%m-%d)
out=docs/validation/gpu-$day
# The energy window must span seconds for NVML's counter: 200 steps of GPT-2 small at
# micro-batch 8 x 1024 tokens take ~5 s in bf16 on an H100-class GPU.
model=${MODEL:-gpt2-small}
steps=${STEPS:-200}
hardware=${HARDWARE:-$out/calibration}
if [[ $hardware == "$out/calibration" && ! -f $out/calibration/profile.toml ]]; then
    llmcap calibrate --quick --device cuda --out "$out/calibration" --force
fi

status=0
llmcap validate --device cuda --nproc 1 --model "$model" --steps "$steps" --warmup 5 \
    --precision fp32,bf16 --strategy ddp,fsdp --hardware "$hardware" --out "$out" || status=$?

python -m validation.docs docs/validation.md "gpu-$day" "$out/report.md"
if [[ $status == 0 ]]; then
    rm -rf "$out/runs"
fi
exit $status
