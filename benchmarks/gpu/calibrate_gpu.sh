#!/usr/bin/env bash
# Calibrate the NVIDIA GPU(s) of this machine in one go and write docs-ready output.
#
# Scenario: a machine with an NVIDIA GPU is available for a few minutes. This script measures
# it with `llmcap calibrate --device cuda` (GEMM per dtype incl. TF32, SDPA, memory,
# elementwise, NCCL collectives, NVML energy) and writes, into OUT_DIR:
#   profile/                   the calibrated profile (use it with --hardware OUT_DIR/profile)
#   profile.tar.gz             the same, as one file
#   calibration-gpu.md         a Markdown summary to add to docs/calibration.md with its date
#   calibrate.log              progress and errors
# Expected time on one H200: about 4 minutes at LEVEL=full, 1 minute at LEVEL=quick.
#
# Usage: benchmarks/gpu/calibrate_gpu.sh [OUT_DIR]
#   OUT_DIR  default: $OUT if set, else ./gpu-calibration
#   LEVEL    quick | full (default full)
#   DTYPES   default fp32,tf32,bf16,fp16
#   WORLD_SIZES  default: 1, plus the GPU count if there are several GPUs
#   KEEP_DIR=0   remove OUT_DIR/profile after packing it (when only a few files can be copied)
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
out_dir="$(mkdir -p "${1:-${OUT:-gpu-calibration}}" && cd "${1:-${OUT:-gpu-calibration}}" && pwd)"
level="${LEVEL:-full}"
dtypes="${DTYPES:-fp32,tf32,bf16,fp16}"
py="${PYTHON:-python3}"

cd "$repo"
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "calibrate_gpu.sh: error: torch sees no CUDA device here" >&2
    exit 2
fi
# Install llmcap only if it is missing; keep the machine's own (CUDA) torch build.
if ! "$py" -c "import analysis.cli.main, pynvml" 2>/dev/null; then
    if "$py" -c "import torch" 2>/dev/null; then
        "$py" -m pip install -q -e . nvidia-ml-py
    else
        "$py" -m pip install -q -e ".[torch]"
    fi
fi

gpus="$("$py" -c "import torch; print(torch.cuda.device_count())")"
world_sizes="${WORLD_SIZES:-1}"
if [ -z "${WORLD_SIZES:-}" ] && [ "$gpus" -gt 1 ]; then
    world_sizes="1,$gpus"
fi

quick=()
[ "$level" = "quick" ] && quick=(--quick)
cmd=(llmcap calibrate --device cuda --dtypes "$dtypes" --world-sizes "$world_sizes"
     "${quick[@]}" --timeout 300 --out "$out_dir/profile" --force)
echo "calibrate_gpu.sh: ${cmd[*]}" | tee "$out_dir/calibrate.log"
start=$(date +%s)
# `llmcap` may not be on PATH when the package was not installed: call its entry directly.
"$py" -c "import sys; from analysis.cli.main import main; sys.argv[0] = 'llmcap'; main()" \
    "${cmd[@]:1}" 2>>"$out_dir/calibrate.log" | tee -a "$out_dir/calibrate.log"
echo "calibrate_gpu.sh: took $(( $(date +%s) - start )) s" | tee -a "$out_dir/calibrate.log"

tar -czf "$out_dir/profile.tar.gz" -C "$out_dir" profile
"$py" -m hwprofiles.calibration.report "$out_dir/profile" "${cmd[*]}" > "$out_dir/calibration-gpu.md"
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv \
    >> "$out_dir/calibrate.log" 2>&1 || true
if [ "${KEEP_DIR:-1}" = 0 ]; then
    rm -rf "$out_dir/profile"  # the tarball holds it (fewer files to copy back)
fi
echo "calibrate_gpu.sh: wrote $out_dir: $(ls "$out_dir" | tr '\n' ' ')"
