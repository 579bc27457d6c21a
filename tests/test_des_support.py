"""Shared helpers of the DES tests (no tests here): a small, fully inline hardware profile.

Numbers are round, not a real machine: a 100 TFLOP/s bf16 device with 1 TB/s of memory,
4 per node on a 100 GB/s scale-up link, 2 NICs of 10 GB/s per node.
"""

from __future__ import annotations

from dataclasses import replace

from hwprofiles.profile import (
    Accelerator,
    EfficiencyCurve,
    Fabric,
    HardwareProfile,
    Link,
    Node,
    PowerModel,
    Provenance,
)
from simulator.model import ModelSpec
from simulator.parallel import ParallelConfig, Workload


def toy_hw(
    gpus_per_node: int = 4, oversubscription: float = 1.0, topology: str = "fat-tree"
) -> HardwareProfile:
    """A made-up cluster with round numbers (test fixture, not a datasheet)."""
    curve = EfficiencyCurve.saturating(0.7, 1e9, source="test fixture")
    acc = Accelerator(
        name="toy",
        peak_flops={"bf16": 100e12, "fp32": 25e12},
        memory_bytes=40e9,
        memory_bandwidth_bytes_per_s=1e12,
        tdp_w=400.0,
        idle_w=100.0,
        matmul_efficiency=curve,
        attention_efficiency=curve,
    )
    node = Node(
        name="toy-node",
        gpus_per_node=gpus_per_node,
        scale_up=Link("toylink", 100e9, 2e-6),
        scale_out=Link("toynet", 10e9, 5e-6),
        nics_per_node=2,
    )
    return HardwareProfile(
        name="toy",
        accelerator=acc,
        node=node,
        fabric=Fabric(topology=topology, oversubscription=oversubscription),  # type: ignore[arg-type]
        power=PowerModel(idle_w=100.0, tdp_w=400.0),
        provenance=Provenance(kind="datasheet", notes="test fixture"),
    )


def toy_model(layers: int = 8, hidden: int = 1024, heads: int = 16) -> ModelSpec:
    return ModelSpec("toy", hidden, layers, heads, 8192, 4 * hidden, max_position_embeddings=1024)


def workload(gpus: int, model: ModelSpec | None = None, seq: int = 1024, **kw) -> Workload:
    kw.setdefault("micro_batch_size", 1)
    return Workload(model or toy_model(), ParallelConfig(**kw).resolve(gpus), seq)


__all__ = ["replace", "toy_hw", "toy_model", "workload"]
