#!/usr/bin/env bash
# Issue 21's check: the README's calibration-and-validation chain, as a newcomer runs it,
# from a fresh clone with an empty profile store, timed, then its errors (analytic engine).
#
#   benchmarks/readme_chain.sh [DIR] [COMMIT]      # DIR defaults to a new temp folder
#
# Each chain takes about 3-4 minutes on the 2-vCPU AMD EPYC VM. State the machine's load
# beside the figures (printed at the start and end): the host's speed drifts by 20-25 %
# between minutes there, so run it when nothing else does.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$(mktemp -d /tmp/llmcap-chain.XXXXXX)}
rm -rf "$dir" && mkdir -p "$dir"
git clone -q "$repo" "$dir/repo"
[[ -n ${2:-} ]] && git -C "$dir/repo" checkout -q "$2"
cd "$dir/repo"
export PYTHONPATH=$PWD LLMCAP_HOME=$dir/home
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "commit $(git log --oneline -1 | cut -c1-60)"
echo "start $(date -u +%FT%TZ), load $(load)"
t0=$(date +%s)
llmcap calibrate --quick > "$dir/calibrate.log" 2>&1
t1=$(date +%s)
echo "calibrate $((t1 - t0)) s, load $(load)"
llmcap validate --nproc 1,2 --precision fp32,bf16 --out "$dir/val" > "$dir/validate.log" 2>&1
t2=$(date +%s)
echo "validate $((t2 - t1)) s, load $(load); chain $((t2 - t0)) s"
head -5 "$dir/validate.log" | grep '^profile' || true
python "$repo/benchmarks/chain_errors.py" "$dir/val/report.json"
