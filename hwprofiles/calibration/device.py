"""The torch side of a calibration: dtype names, the device, synchronisation, thread count."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.precision import PRECISIONS

TORCH_DTYPES = {k: p.torch_dtype for k, p in PRECISIONS.items() if p.torch_dtype is not None}
"""Profile dtype key -> torch dtype name; tf32 is fp32 storage with TF32 tensor-core matmuls."""

ELEMENT_BYTES = {k: PRECISIONS[k].weight_bytes for k in TORCH_DTYPES}


def torch_dtype(key: str) -> Any:
    """The torch dtype for a profile dtype key ("fp32", "tf32", "bf16", "fp16")."""
    import torch

    if key not in TORCH_DTYPES:
        raise UserError(f"dtype: {key!r} is not one of {', '.join(TORCH_DTYPES)}")
    return getattr(torch, TORCH_DTYPES[key])


def randn(shape: tuple[int, ...], dtype_key: str, device: str, seed: int = 0) -> Any:
    """A seeded standard-normal tensor made on `device` (a GPU fills big operands itself)."""
    import torch

    gen = torch.Generator(device=device).manual_seed(seed)
    return torch.randn(*shape, generator=gen, device=device).to(torch_dtype(dtype_key))


def check_device(device: str, dtypes: tuple[str, ...]) -> None:
    """Raise ValueError if `device` is unusable here or a dtype does not apply to it."""
    import torch

    if device not in ("cpu", "cuda"):
        raise UserError(f"device: {device!r} is not one of cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("device: 'cuda' requested but torch sees no CUDA device on this machine")
    for d in dtypes:
        if d not in TORCH_DTYPES:
            raise UserError(f"dtypes: {d!r} is not one of {', '.join(TORCH_DTYPES)}")
        if d == "tf32" and device != "cuda":
            raise UserError("dtypes: 'tf32' is a CUDA tensor-core mode; use it with --device cuda")


def synchronizer(device: str) -> Callable[[], None]:
    """A function that waits for queued work on `device` (no-op on CPU)."""
    import torch

    if device == "cuda":
        return torch.cuda.synchronize
    return lambda: None


@contextmanager
def matmul_mode(dtype_key: str) -> Iterator[None]:
    """Enable TF32 matmuls for "tf32" (CUDA), and make sure plain fp32 really is fp32."""
    import torch

    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    tf32 = dtype_key == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` intra-op torch threads (one CPU "device" = one rank)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
