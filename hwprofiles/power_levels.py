"""Power beyond the GPU board: per-dtype compute power, the rest of the node, the facility.

Data: `hwprofiles/data/power.toml` (every number sourced there). Three levels:

- GPU board: `compute_power_model` caps a datasheet profile's computing power at the measured
  fraction of TDP for the compute dtype (other states scale with it: `PowerModel`).
- node: ``wall = (GPU boards + CPUs * cpu_fraction + DRAM + NICs + NVSwitch + other)
  * (1 + fan_fraction) / psu_efficiency``.
- facility: ``(node + network switches and optics) * PUE``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hwprofiles.presets import data
from hwprofiles.profile import HardwareProfile, PowerModel


def compute_fraction(dtype: str) -> float:
    """Fraction of TDP drawn while computing in `dtype` (1.0 for an unknown dtype)."""
    table = data("power")["compute_fraction"]
    return float(table.get(dtype, 1.0))


def compute_power_model(hw: HardwareProfile, dtype: str) -> PowerModel:
    """The board's power model for a step computing in `dtype`.

    Datasheet profiles: computing draws `compute_fraction(dtype)` x TDP (Morrison et al. 2025
    measured 85% at most during training); calibrated profiles keep their measured model."""
    pm = hw.power
    if hw.provenance.kind == "calibrated":
        return pm
    busy = max(pm.idle_w, pm.tdp_w * compute_fraction(dtype))
    src = f"{pm.source}; computing in {dtype} at {busy:.0f} W (hwprofiles/data/power.toml)"
    return replace(pm, tdp_w=busy, source=src)


@dataclass(frozen=True)
class NodePower:
    """The non-GPU part of one node (W, DC) and the conversion to wall power."""

    name: str
    other_dc_w: float
    """CPUs (at cpu_fraction), DRAM, NICs, NVSwitch, other, while training."""
    other_max_dc_w: float
    fan_fraction: float
    psu_efficiency: float
    system_max_w: float | None
    source: str

    def wall_w(self, gpu_boards_w: float, nodes: float = 1.0) -> float:
        """Wall power of `nodes` nodes whose GPU boards draw `gpu_boards_w` together."""
        dc = gpu_boards_w + nodes * self.other_dc_w
        return dc * (1.0 + self.fan_fraction) / self.psu_efficiency

    def max_w(self, gpus_per_node: int, tdp_w: float) -> float:
        """Model at full load (GPUs at TDP, CPUs at TDP, fans at 1.25x their training share)."""
        dc = gpus_per_node * tdp_w + self.other_max_dc_w
        return dc * (1.0 + 1.25 * self.fan_fraction) / self.psu_efficiency


def node_power(hw: HardwareProfile) -> NodePower:
    """The node's non-GPU power: its entry in power.toml, else a per-GPU default."""
    doc = data("power")
    d = doc["defaults"]
    entry = doc["nodes"].get(hw.node.name)
    if entry is None:
        other = float(d["other_w_per_gpu"]) * hw.node.gpus_per_node
        return NodePower(
            hw.node.name,
            other,
            other,
            float(d["fan_fraction"]),
            float(d["psu_efficiency"]),
            None,
            "no node entry: " + d["source"],
        )
    fixed = sum(float(entry[k]) for k in ("dram_w", "nic_w", "switch_w", "other_w"))
    cpu = float(entry["cpu_tdp_w"])
    return NodePower(
        hw.node.name,
        fixed + cpu * float(d["cpu_fraction"]),
        fixed + cpu,
        float(d["fan_fraction"]),
        float(d["psu_efficiency"]),
        float(entry["system_max_w"]),
        f"{entry['source']}; {d['source']}",
    )


@dataclass(frozen=True)
class Facility:
    switch_w_per_port: float
    transceiver_w_per_end: float
    radix: int
    pue: float
    source: str

    def network_w_per_endpoint(self, endpoints: int) -> float:
        """Switch ports and optics one NIC uses in a non-blocking fat-tree of `endpoints` NICs."""
        if endpoints <= 1:
            return 0.0
        levels = 1 if endpoints <= self.radix else (2 if endpoints <= self.radix**2 // 2 else 3)
        return (2 * levels - 1) * self.switch_w_per_port + 2 * levels * self.transceiver_w_per_end


def facility(pue: float | None = None) -> Facility:
    f = data("power")["facility"]
    return Facility(
        float(f["switch_w_per_port"]),
        float(f["transceiver_w_per_end"]),
        int(f["switch_radix"]),
        float(f["pue"]) if pue is None else pue,
        str(f["source"]),
    )
