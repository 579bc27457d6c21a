#!/usr/bin/env bash
# Regenerate the CPU results of docs/validation.md (issue 5): DDP and FSDP, 1 and 2 ranks,
# fp32 and bf16, on the host's loopback and through two rate-limited links (needs root).
# Three rounds over the whole matrix (ROUNDS=3, 12 timed steps per run and round), about 30
# minutes on a 2-core CPU, plus a full calibration (about 6 minutes) when there is none yet
# under docs/validation/cpu/calibration (RECALIBRATE=1 forces a new one). Rounds spread the
# slow spells of a shared VM over every configuration: single runs of the same setup varied
# by up to 30 % here.
#
#   sudo benchmarks/validate_cpu.sh               # measure, predict, compare, splice
#   REPREDICT=1 benchmarks/validate_cpu.sh        # seconds: new predictions for the stored
#                                                 # measurements (after a model change)
set -euo pipefail
cd "$(dirname "$0")/.."

# ranks and calibration alike run with a caching malloc (validation.launcher.CPU_MALLOC_TUNABLES)
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184}
out=docs/validation/cpu
hardware=$out/calibration
status=0
if [[ ${REPREDICT:-0} == 1 ]]; then
    llmcap validate --repredict "$out" --hardware "$hardware" > /dev/null || status=$?
else
    if [[ ! -f $hardware/profile.toml || ${RECALIBRATE:-0} == 1 ]]; then
        # the full level: quick calibrations of bf16 (AMX) GEMMs varied 1.7x between runs here
        # --attention-shape: the model's own SDPA call, timed per pass (a FLOPs-indexed curve
        # priced its bf16 backward at a third of what it takes on this CPU)
        llmcap calibrate --device cpu --threads-per-rank 1 --out "$hardware" --force \
            --attention-shape "$(python -m validation.gptconfig small)"
    fi
    # Other processes slow the ranks down (the report's "CPU outside ranks" column shows how
    # much): wait, at most WAIT_IDLE_S seconds, for the 1-minute load average to fall below 0.5.
    for ((waited = 0; waited < ${WAIT_IDLE_S:-120}; waited += 10)); do
        awk '{ exit !($1 < 0.5) }' /proc/loadavg && break
        sleep 10
    done
    llmcap validate --nproc 1,2 --model small --steps "${STEPS:-12}" --rounds "${ROUNDS:-3}" \
        --precision fp32,bf16 \
        --strategy ddp,fsdp --link-bandwidth "${LINKS:-none,1Gbit,200Mbit}" \
        --hardware "$hardware" --out "$out" || status=$?
fi

python -m validation.docs docs/validation.md cpu "$out/report.md"
if [[ $status == 0 ]]; then
    rm -rf "$out/runs"  # per-rank files and logs: kept only when a run failed
fi
exit $status
