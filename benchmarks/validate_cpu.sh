#!/usr/bin/env bash
# Regenerate the CPU results of docs/validation.md (issue 5): DDP and FSDP, 1 and 2 ranks,
# fp32 and bf16, on the host's loopback and through two rate-limited links (needs root).
# About 10 minutes on a 2-core CPU, plus a quick calibration (about a minute) when there is
# none yet under docs/validation/cpu/calibration (RECALIBRATE=1 forces a new one).
set -euo pipefail
cd "$(dirname "$0")/.."

out=docs/validation/cpu
links=${LINKS:-none,1Gbit,200Mbit}
if [[ ! -f $out/calibration/profile.toml || ${RECALIBRATE:-0} == 1 ]]; then
    llmcap calibrate --quick --device cpu --threads-per-rank 1 --out "$out/calibration" --force
fi

# Other processes on the machine slow the ranks down (the report's "other load" column shows
# how much). Wait, at most WAIT_IDLE_S seconds, for the 1-minute load average to fall below 0.5.
for ((waited = 0; waited < ${WAIT_IDLE_S:-600}; waited += 10)); do
    awk '{ exit !($1 < 0.5) }' /proc/loadavg && break
    sleep 10
done

status=0
llmcap validate --nproc 1,2 --model small --steps 20 --precision fp32,bf16 \
    --strategy ddp,fsdp --link-bandwidth "$links" --hardware "$out/calibration" \
    --out "$out" || status=$?

python -m validation.docs docs/validation.md cpu "$out/report.md"
if [[ $status == 0 ]]; then
    rm -rf "$out/runs"  # per-rank files and logs: kept only when a run failed
fi
exit $status
