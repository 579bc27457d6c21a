"""Energy per training step by compute dtype (fp32, tf32, bf16, fp16, fp8), measured with NVML.

Runs the same transformer-block training step (GEMMs of a GPT layer, forward + backward +
AdamW) in each dtype on one NVIDIA GPU and reads the board's energy counter
(`nvmlDeviceGetTotalEnergyConsumption`, via `hwprofiles.energy`) over a window of many steps.
Prints one JSON object per dtype: step time, energy per step, average board power, and the
ratios to fp32, set beside llmcap's prediction (`hwprofiles/data/power.toml` compute_fraction)
and the seed's E x P/L and E x L/P.

    python benchmarks/gpu/energy_per_dtype.py [--hidden 4096] [--tokens 8192] [--seconds 10]

It needs a CUDA GPU and nvidia-ml-py. On a CPU-only machine it exits with a one-line reason:
CPUs have no NVML counter, and RAPL (the CPU's package counter) measures a different device
whose fp32/bf16 paths are not the tensor cores the prediction is about. fp8 runs only where
torch has `torch._scaled_mm` and the GPU supports it (Hopper and newer); it is skipped otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--seconds", type=float, default=10.0, help="measurement window per dtype")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("energy_per_dtype: torch is not installed", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print(
            "energy_per_dtype: no CUDA GPU here; NVML energy cannot be measured on this machine "
            "(see the module docstring)",
            file=sys.stderr,
        )
        return 2
    from hwprofiles.energy import measure, probe_energy_meter

    meter, why = probe_energy_meter("cuda")
    if meter is None:
        print(f"energy_per_dtype: {why}", file=sys.stderr)
        return 2
    dev = torch.device("cuda")
    h, n = args.hidden, args.tokens
    results = {}
    for dtype in ("fp32", "tf32", "bf16", "fp16", "fp8"):
        torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
        step = _make_step(torch, dev, h, n, dtype)
        if step is None:
            results[dtype] = {"skipped": "fp8 GEMM (torch._scaled_mm) not available here"}
            continue
        for _ in range(5):  # warm-up: clocks, allocator, cuBLAS heuristics
            step()
        torch.cuda.synchronize()
        steps = 0
        with measure(meter) as win:
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < args.seconds:
                step()
                steps += 1
                if steps % 10 == 0:
                    torch.cuda.synchronize()
            torch.cuda.synchronize()
        results[dtype] = {
            "steps": steps,
            "step_time_s": win.seconds / steps,
            "energy_per_step_j": win.joules / steps,
            "avg_power_w": win.watts,
        }
    base = results.get("fp32", {})
    for r in results.values():
        if "energy_per_step_j" in r and "energy_per_step_j" in base:
            r["energy_vs_fp32"] = r["energy_per_step_j"] / base["energy_per_step_j"]
            r["power_vs_fp32"] = r["avg_power_w"] / base["avg_power_w"]
    print(json.dumps({"gpu": torch.cuda.get_device_name(0), "results": results}, indent=2))
    return 0


def _make_step(torch, dev, h, n, dtype):
    """One layer's GEMMs (QKV, projection, 4h MLP) forward + backward + an optimizer update."""
    dt = {
        "fp32": torch.float32,
        "tf32": torch.float32,
        "bf16": torch.bfloat16,
        "fp16": torch.float16,
        "fp8": torch.bfloat16,
    }[dtype]
    shapes = [(h, 3 * h), (h, h), (h, 4 * h), (4 * h, h)]
    ws = [torch.randn(a, b, device=dev, dtype=torch.float32, requires_grad=True) for a, b in shapes]
    opt = torch.optim.AdamW(ws, lr=1e-6)
    x = torch.randn(n, h, device=dev, dtype=dt)
    if dtype == "fp8":
        if not hasattr(torch, "_scaled_mm") or torch.cuda.get_device_capability() < (8, 9):
            return None
        f8 = torch.float8_e4m3fn
        one = torch.ones((), device=dev)

        @torch.no_grad()
        def mm(a, w):  # fp8 inputs, bf16 output; column-major weight as _scaled_mm requires
            return torch._scaled_mm(
                a.to(f8),
                w.to(f8).t().contiguous().t(),
                scale_a=one,
                scale_b=one,
                out_dtype=torch.bfloat16,
            )
    else:

        def mm(a, w):
            return a @ w.to(dt)

    def step():
        y, inputs = x, []
        for w in ws:
            a = y[:, : w.shape[0]].contiguous()
            inputs.append(a)
            y = mm(a, w)
        if dtype != "fp8":
            y.float().square().mean().backward()
        else:  # _scaled_mm has no autograd: run each layer's two backward GEMMs by hand
            for a, w in zip(inputs, ws, strict=True):
                g = torch.ones(n, w.shape[1], device=dev, dtype=torch.bfloat16)
                mm(g, w.t().contiguous())  # grad of the input
                mm(a.t().contiguous(), g.float())  # grad of the weight
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


if __name__ == "__main__":
    sys.exit(main())
