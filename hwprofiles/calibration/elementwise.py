"""Memory-bound operator throughput in bytes/s: add, gelu, layernorm, softmax, cross-entropy.

Bytes are the tensors each forward op must read and write once at the activation dtype:
add reads 2 and writes 1 tensor, gelu/layernorm/softmax read 1 and write 1 (layernorm's
weights are negligible), cross-entropy reads the logits once (its outputs are per token).
Achieved bytes/s divided by the memory bandwidth is how close a memory-bound op gets to it.
"""

from __future__ import annotations

from collections.abc import Callable

from hwprofiles.calibration.device import ELEMENT_BYTES, randn, synchronizer, torch_dtype
from hwprofiles.calibration.plan import Plan
from hwprofiles.calibration.timing import Repeats, time_op

ELEMENTWISE_COLUMNS = (
    "op", "dtype", "tokens", "hidden", "bytes", "median_s", "min_s", "max_s", "count",
    "noisy", "bytes_per_s",
)  # fmt: skip
OPS = ("add", "gelu", "layernorm", "softmax", "cross_entropy", "cast")
_TENSORS_MOVED = {"add": 3, "gelu": 2, "layernorm": 2, "softmax": 2, "cross_entropy": 1}
CAST_TO = {"fp32": "bf16", "bf16": "fp32", "fp16": "fp32"}
"""A cast converts to the other training dtype, as torch.autocast does around each GEMM and
the loss: bytes moved = elements x (source + target element size)."""


def bench_elementwise(
    op: str, tokens: int, hidden: int, dtype: str, device: str, repeats: Repeats
) -> dict[str, object]:
    """Time one forward op on a (tokens, hidden) tensor; a row of `ELEMENTWISE_COLUMNS`."""
    import torch
    import torch.nn.functional as F

    x = randn((tokens, hidden), dtype, device, seed=0)
    y = randn((tokens, hidden), dtype, device, seed=1)
    gen = torch.Generator(device=device).manual_seed(2)
    target = torch.randint(0, hidden, (tokens,), generator=gen, device=device)
    fns: dict[str, Callable[[], object]] = {
        "add": lambda: torch.add(x, y),
        "gelu": lambda: F.gelu(x),
        "layernorm": lambda: F.layer_norm(x, (hidden,)),
        "softmax": lambda: torch.softmax(x, dim=-1),
        "cross_entropy": lambda: F.cross_entropy(x, target),
        "cast": lambda: x.to(torch_dtype(CAST_TO.get(dtype, "fp32"))),
    }
    if op not in fns:
        raise ValueError(f"elementwise op: {op!r} is not one of {', '.join(OPS)}")
    with torch.inference_mode():
        timing = time_op(fns[op], repeats, synchronizer(device))
    if op == "cast":
        moved = tokens * hidden * (ELEMENT_BYTES[dtype] + ELEMENT_BYTES[CAST_TO.get(dtype, "fp32")])
    else:
        moved = _TENSORS_MOVED[op] * tokens * hidden * ELEMENT_BYTES[dtype]
    return {
        "op": op,
        "dtype": dtype,
        "tokens": tokens,
        "hidden": hidden,
        "bytes": moved,
        **timing.as_row(),
        "bytes_per_s": moved / timing.median_s,
    }


def run_elementwise(
    plan: Plan, dtype: str, device: str, tick: Callable[[str], None]
) -> list[dict[str, object]]:
    """Rows for every op and (tokens, hidden) shape of `plan` in one dtype."""
    rows = []
    for tokens, hidden in plan.elementwise:
        for op in OPS:
            rows.append(bench_elementwise(op, tokens, hidden, dtype, device, plan.repeats))
            tick(f"elementwise {dtype} {op} {tokens}x{hidden}")
    return rows
