"""Energy of a predicted step at three levels (GPU boards by phase, whole nodes, facility),
and of the whole run with its failures, checkpoints and restarts.

Phases of one GPU's step: computing (in the step's compute dtype), memory-bound kernels
(optimizer, copies, hooks), communication that is not hidden, and idle (pipeline bubble and
waits). The closed form takes their times from its breakdown; the SimPy engine from each
simulated device's power states (mean over devices). Power per phase is the profile's power
model for the dtype (`hwprofiles.power_levels.compute_power_model`); nodes and the facility
add what `hwprofiles/data/power.toml` says.
"""

from __future__ import annotations

import math
from typing import Any

from hwprofiles.power_levels import facility, node_power
from hwprofiles.profile import HardwareProfile
from simulator.result import StepResult

PHASES = ("compute", "memory_bound", "communication", "idle")
_DES_STATE = {
    "computing": "compute",
    "memory_bound": "memory_bound",
    "communicating": "communication",
    "idle": "idle",
}


def phase_times(r: StepResult) -> dict[str, float]:
    """Seconds per phase of one GPU's step (they sum to the step time)."""
    per_rank = r.extra.get("per_rank") if r.engine == "des" else None
    if per_rank:
        out = dict.fromkeys(PHASES, 0.0)
        for rank in per_rank:
            for state, s in rank["state_s"].items():
                out[_DES_STATE[state]] += s / len(per_rank)
        return out
    b = r.breakdown
    comm = sum(v for k, v in b.items() if k.startswith("comm_"))
    mem = sum(b.get(k, 0.0) for k in ("optimizer", "copies", "hooks"))
    busy = b.get("compute", 0.0)
    return {
        "compute": busy,
        "memory_bound": mem,
        "communication": comm,
        "idle": max(r.step_time_s - busy - mem - comm, 0.0),
    }


def phase_power_w(hw: HardwareProfile) -> dict[str, float]:
    pm = hw.power
    return {
        "compute": float(pm.power(1.0)),
        "memory_bound": float(pm.power(pm.memory_bound_activity)),
        "communication": float(pm.power(pm.comm_activity)),
        "idle": float(pm.power(0.0)),
    }


def step_levels(r: StepResult, hw: HardwareProfile, pue: float | None = None) -> dict[str, Any]:
    """Per-step energy at the three levels (J, all GPUs) and average powers (W per GPU)."""
    n = r.num_gpus
    times = phase_times(r)
    watts = phase_power_w(hw)
    by_phase = {k: times[k] * watts[k] * n for k in PHASES}
    gpu_j = sum(by_phase.values())
    nodes = n / hw.node.gpus_per_node
    npw = node_power(hw)
    node_j = npw.wall_w(gpu_j / r.step_time_s, nodes) * r.step_time_s
    fac = facility(pue)
    nics = max(1, math.ceil(nodes * hw.node.nics_per_node))
    net_w = fac.network_w_per_endpoint(nics) * nics
    facility_j = (node_j + net_w * r.step_time_s) * fac.pue
    by_phase = {
        f"compute_{r.inputs['parallel']['precision']}" if k == "compute" else k: v
        for k, v in by_phase.items()
    }
    return {
        "gpu_energy_by_phase_j": by_phase,
        "node_energy_per_step_j": node_j,
        "avg_node_power_per_gpu_w": node_j / r.step_time_s / n,
        "facility_energy_per_step_j": facility_j,
        "avg_facility_power_per_gpu_w": facility_j / r.step_time_s / n,
        "power_levels": {
            "gpu_power_by_phase_w": watts,
            "node_other_dc_w": npw.other_dc_w,
            "node_fan_fraction": npw.fan_fraction,
            "node_psu_efficiency": npw.psu_efficiency,
            "network_w": net_w,
            "pue": fac.pue,
            "scope": "gpu = boards only; node = wall power of whole servers (CPUs, DRAM, NICs, "
            "NVSwitch, fans, PSU loss); facility = nodes + network switches and optics, x PUE",
        },
    }


def run_levels(r: StepResult, hw: HardwareProfile, levels: dict[str, Any]) -> dict[str, float]:
    """Energy to train (J) at each level, from the whole run's time breakdown.

    Training and redone (lost) work run at the step's energy; checkpoint blocks and restarts
    hold the GPUs at idle power and the rest of the nodes at their training draw."""
    w = r.whole_run
    tb = w["time_breakdown_s"]
    n = r.num_gpus
    busy_steps = (tb["training"] + tb["lost_work"]) / r.step_time_s
    stalled_s = tb["checkpoint"] + tb["restart"]
    idle_w = phase_power_w(hw)["idle"] * n
    gpu = busy_steps * sum(levels["gpu_energy_by_phase_j"].values()) + stalled_s * idle_w
    npw = node_power(hw)
    nodes = n / hw.node.gpus_per_node
    node = busy_steps * levels["node_energy_per_step_j"] + npw.wall_w(idle_w, nodes) * stalled_s
    pl = levels["power_levels"]
    it = node + pl["network_w"] * w["time_to_train_s"]
    fac = it * pl["pue"]
    per_step = levels["gpu_energy_by_phase_j"]
    phases = {k: v * tb["training"] / r.step_time_s for k, v in per_step.items()}
    phases["lost_work"] = sum(per_step.values()) * tb["lost_work"] / r.step_time_s
    phases["checkpoint"] = tb["checkpoint"] * idle_w
    phases["restart"] = tb["restart"] * idle_w
    return {
        "energy_to_train_gpu_by_phase_j": phases,
        "energy_to_train_gpu_j": gpu,
        "energy_to_train_node_j": node,
        "energy_to_train_facility_j": fac,
        "energy_to_train_it_j": it,
        "energy_to_train_ideal_gpu_j": sum(levels["gpu_energy_by_phase_j"].values())
        * tb["training"]
        / r.step_time_s,
    }
