"""Time of one GEMM from its shape (M x K) @ (K x N): tile and wave quantisation, the operand
roofline and the output write.

Model (NVIDIA, "Matrix Multiplication Background User's Guide", 2023, Ch. 2-3; tiling and SM
counts in hwprofiles/data/gemm_tiles.toml):
- the M x N output is cut into tiles of one of the library's candidate sizes; each tile runs
  on one SM and the tiles run in waves of one per SM, so the GEMM takes
  ceil(tiles / SMs) waves of a whole tile each; the useful share of that work is
  q = M N / (waves * SMs * tile area) (tile and wave quantisation together). The library's
  tile is the candidate with the largest q (cuBLAS's heuristics pick among them).
- a GEMM of fewer tiles than SMs is split along K over the idle SMs (split-K; the guide,
  Sec. 2.1, and CUTLASS's split-K/stream-K kernels); the fp32 partial sums of the GEMMs that
  split (a few MB) stay in the 40-50 MB L2 (A100/H100 architecture whitepapers) and are not
  priced (pricing them at the HBM rate was tried: 6.5% instead of 5.6% median error on the
  DeepGEMM rows of `llmcap accuracy --components` when tried, with the kernel overhead then
  scaled by the sustained fraction; 4.7% now);
- the tensor cores run at the profile's large-GEMM rate (peak x measured maximum) times q;
- operand loads (M K + K N elements) overlap the math (roofline: the slower of the two);
- the output tile is written after its K loop (the epilogue), so writing the M N result is
  added, at the streaming memory rate: a short-K GEMM cannot hide it;
- the kernel's fixed time (launch, pipeline fill and drain: the profile curve's overhead) is
  added once.
Profiles without a tiling row (calibrated, user) get q = 1 (their GEMMs were timed there).
"""

from __future__ import annotations

import numpy as np

from hwprofiles.gemm_tiles import min_tile, sm_count, tiles
from hwprofiles.profile import Accelerator
from simulator.costmodel.ops import Num


def quantisation(accelerator: str, m: Num, n: Num) -> tuple[Num, Num]:
    """(useful share of the tensor-core work, K splits) of an m x n output: 1 and 1 = no
    quantisation loss, no split."""
    sms = sm_count(accelerator)
    if sms is None:
        return 1.0, 1.0
    m, n = np.asarray(m, dtype=float), np.asarray(n, dtype=float)
    edge = min_tile()
    best = np.zeros(np.broadcast(m, n).shape)
    split = np.ones_like(best)
    for bm, bn in tiles():
        # a skinny dimension gets a tile of the smallest edge, not a mostly padded one
        tm = np.where(m <= edge, edge, bm)
        tn = np.where(n <= edge, edge, bn)
        count = np.ceil(np.maximum(m, 1.0) / tm) * np.ceil(np.maximum(n, 1.0) / tn)
        s = np.maximum(np.floor(sms / count), 1.0)  # split-K over idle SMs
        waves = np.ceil(count * s / sms)
        q = m * n * s / (waves * sms * tm * tn)
        split = np.where(q > best, s, split)
        best = np.maximum(best, q)
    return _out(best), _out(split)


def _out(x: np.ndarray) -> Num:
    return float(x) if np.ndim(x) == 0 else x


def gemm_time(
    acc: Accelerator,
    m: Num,
    n: Num,
    k: Num,
    dtype: str,
    in_bytes: Num,
    out_bytes: Num,
) -> Num:
    """Seconds of one (m x k) @ (k x n) GEMM on `acc` with `in_bytes` per operand element and
    `out_bytes` per result element."""
    from simulator.costmodel.timing import compute_time, memory_time

    m, n, k = (np.asarray(v, dtype=float) for v in (m, n, k))
    flops = 2.0 * m * n * k
    q, _ = quantisation(acc.name, m, n)
    curve = compute_time(acc, flops, dtype)
    plateau = flops / (acc.peak(dtype) * acc.matmul_curve(dtype).max_fraction)
    fixed = np.maximum(curve - plateau, 0.0)  # the curve's per-kernel overhead
    math = plateau / q
    loads = memory_time(acc, (m * k + k * n) * in_bytes)
    out = np.maximum(math, loads) + memory_time(acc, m * n * out_bytes) + fixed
    return _out(np.where(flops > 0, out, 0.0))
