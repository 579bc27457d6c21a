"""Parse cluster pool specs ("h100-sxm:512,a100-80gb:256") into `Pool`s and their profiles."""

from __future__ import annotations

from dataclasses import dataclass

from hwprofiles.catalogue import load_profile
from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile
from simulator.cluster.jobs import Pool


@dataclass(frozen=True)
class PoolSpec:
    """One pool as the user gave it: a hardware preset (or file) and a GPU count."""

    hardware: str
    gpus: int

    @property
    def text(self) -> str:
        return f"{self.hardware}:{self.gpus}"


def parse_pools(text: str, field: str = "hardware", unique: bool = True) -> tuple[PoolSpec, ...]:
    """``"h100-sxm:512,a100-80gb:256"`` -> pool specs; `UserError` naming `field` and the bad
    part. `unique=False` allows a hardware twice (candidate additions)."""
    out: list[PoolSpec] = []
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise UserError(f"{field}: {text!r} must list pools as NAME:GPUS[,NAME:GPUS...]")
    for part in parts:
        name, sep, count = part.rpartition(":")
        if not sep or not name.strip():
            raise UserError(f"{field}: {part!r} must be NAME:GPUS (e.g. h100-sxm:512)")
        try:
            gpus = int(count)
        except ValueError:
            raise UserError(f"{field}: {part!r}: GPU count {count!r} must be an integer") from None
        if gpus < 1:
            raise UserError(f"{field}: {part!r}: GPU count {gpus} must be >= 1")
        out.append(PoolSpec(name.strip(), gpus))
    names = [p.hardware for p in out]
    if unique and len(set(names)) != len(names):
        raise UserError(f"hardware: {text!r} names a pool twice (merge the counts)")
    return tuple(out)


def build_pool(
    spec: PoolSpec, profile: HardwareProfile | None = None
) -> tuple[Pool, HardwareProfile]:
    """The scheduler's `Pool` and the hardware profile behind it (idle power, price, node)."""
    hw = profile or load_profile(spec.hardware)
    gpn = hw.node.gpus_per_node
    if spec.gpus % gpn:
        raise UserError(
            f"hardware: {spec.text}: {spec.gpus} GPUs is not a whole number of "
            f"{hw.node.name} nodes ({gpn} GPUs each)"
        )
    pool = Pool(
        name=spec.hardware,
        gpus=spec.gpus,
        gpus_per_node=gpn,
        usd_per_gpu_hour=hw.price_per_gpu_hour_usd or 0.0,
        idle_w=hw.power.idle_w,
    )
    return pool, hw
