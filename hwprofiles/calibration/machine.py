"""Who was measured: CPU model, cores, memory, GPU, driver, torch, date.

Recorded in every profile so that a profile is never mistaken for another machine's. All
values are strings (they go into `Provenance.machine` and the TOML as they are).
"""

from __future__ import annotations

import datetime
import os
import platform
import socket
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name ("model name" in /proc/cpuinfo), else platform's guess."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


MATRIX_16BIT_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
"""CPU flags of a 16-bit (bf16) matrix unit or dot-product instructions, as /proc/cpuinfo
names them: x86 Intel AMX-BF16 (Sapphire Rapids on) and AVX-512 BF16 (Cooper Lake, Zen 4 on),
Linux's arch/x86 cpufeatures names; "bf16" in an Arm CPU's Features line (Armv8.6-A BF16:
BFDOT, BFMMLA). Without any of them torch runs bf16 GEMMs by converting in software: on the
AMD EPYC (Zen 3) VM of 2026-12-02 about 80x slower than fp32 (docs/validation.md)."""


def cpu_16bit_matrix_flag(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first flag of `MATRIX_16BIT_FLAGS` this CPU has, "" when it has none, None when
    /proc/cpuinfo cannot be read (not Linux)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    have: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            have.update(value.split())
    return next((f for f in MATRIX_16BIT_FLAGS if f in have), "")


def usable_cores() -> int:
    """CPU cores this process may run on (affinity mask, else os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def memory_bytes() -> int:
    """Physical memory in bytes (sysconf), 0 where unknown."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def load_average() -> str:
    """The 1-minute load average (other work competing with the benchmarks), "" if unknown."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return ""


def _nvml_driver(nvml: Any | None) -> str:
    try:
        if nvml is None:
            import pynvml as nvml
        nvml.nvmlInit()
        v = nvml.nvmlSystemGetDriverVersion()
        return v.decode() if isinstance(v, bytes) else str(v)
    except Exception:  # no NVML, no driver: an absence, not an error
        return "unknown"


def gpu_power_limit_w(index: int = 0, nvml: Any | None = None) -> float | None:
    """The GPU's enforced power limit in W from NVML (reported in mW), if readable."""
    try:
        if nvml is None:
            import pynvml as nvml
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        return float(nvml.nvmlDeviceGetPowerManagementLimit(handle)) / 1e3
    except Exception:
        return None


def machine_info(device: str, threads_per_rank: int, nvml: Any | None = None) -> dict[str, str]:
    """A flat description of this machine and software, every value a string."""
    import torch

    info = {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu_model": cpu_model(),
        "cpu_cores": str(usable_cores()),
        "memory_bytes": str(memory_bytes()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "threads_per_rank": str(threads_per_rank),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_1m": load_average(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info |= {
            "gpu_name": props.name,
            "gpu_count": str(torch.cuda.device_count()),
            "gpu_memory_bytes": str(props.total_memory),
            "cuda": str(torch.version.cuda),
            "driver": _nvml_driver(nvml),
        }
    return info


def ranks_per_node(device: str, threads_per_rank: int) -> int:
    """How many devices (ranks) this machine holds: GPUs, or cores // threads_per_rank."""
    if device == "cuda":
        import torch

        return max(1, torch.cuda.device_count())
    return max(1, usable_cores() // threads_per_rank)


def device_memory_bytes(device: str, threads_per_rank: int) -> float:
    """Memory one device (rank) may use: the GPU's HBM, or RAM shared out over CPU ranks."""
    if device == "cuda":
        import torch

        return float(torch.cuda.get_device_properties(0).total_memory)
    return float(memory_bytes()) / ranks_per_node(device, threads_per_rank)
