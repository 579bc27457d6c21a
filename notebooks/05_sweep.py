# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Reading a what-if sweep with pandas
#
# `llmcap sweep GRID.toml --out DIR` runs a grid of SimPy points (here or on a Dask cluster)
# into `DIR/results.parquet`, one row per point (docs/sweep.md). This notebook reads such a
# table with pandas and asks the grid's question: how much does a faster NIC buy when some
# GPUs straggle?
#
# Point `SWEEP_DIR` at a directory that `llmcap sweep examples/sweep.toml --out DIR` wrote
# (81 points, a few minutes). Left at `None`, the notebook runs a small grid of the same
# question (GPT-3 1.3B on 16-32 H100, 24 points, seconds) so that it runs in CI.

# %%
# %matplotlib inline
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from analysis.sweep import parse_grid, run_sweep
from analysis.sweep.frame import load, varying_axes

SWEEP_DIR = None  # e.g. "../runs/nic" from `llmcap sweep examples/sweep.toml --out runs/nic`
SMALL_GRID = {
    "sweep": {"engine": "des", "shared_seeds": True},  # one set of draws per seed replicate
    "base": {
        "model": {"name": "gpt3-1.3b"},
        "parallelism": {"tp": 1, "pp": 1, "zero": 1},
        "training": {"seq_len": 2048, "global_batch": 64},
        "cluster": {"hardware": "h100-sxm", "gpus_per_node": 8},
    },
    "axes": {
        "gpus": [16, 32],
        "scale_out_gbps": [50, 100, 400],  # per NIC, per direction
        "speed_sigma": [0.0, 0.1],  # lognormal spread of per-device speed
        "seed": [0, 1],
        "jitter": 0.02,
    },
}

# %%
if SWEEP_DIR is None:
    SWEEP_DIR = Path(tempfile.mkdtemp()) / "sweep"
    run_sweep(parse_grid(SMALL_GRID), SWEEP_DIR, progress=False)
df = load(SWEEP_DIR)
axes = varying_axes(df)
print(f"{len(df)} points, {(df.status != 'ok').sum()} failed; varying axes: {axes}")
df[[*axes, "step_time_s", "comm_fraction", "mfu"]].head()

# %% [markdown]
# Mean step time over the seeds, per GPU count and NIC line rate, for each straggler spread;
# then the slowdown that the spread causes at each point (ratio to no spread).

# %%
ok = df[df.status == "ok"]
mean = ok.groupby(["speed_sigma", "gpus", "scale_out_gbps"])["step_time_s"].mean()
mean.unstack("scale_out_gbps")

# %%
calm = mean.xs(0.0, level="speed_sigma")
(mean / calm).unstack("scale_out_gbps").round(3)

# %% [markdown]
# In the small grid the spread costs 5-21 %, and relatively more on the faster NICs: with less
# time in exposed communication the step is closer to compute-bound, and a synchronous step
# waits for its slowest device. Seeds are shared per replicate (`shared_seeds`), so each ratio
# compares the same draws.

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for (sigma, gpus), s in mean.groupby(level=["speed_sigma", "gpus"]):
    rates = s.index.get_level_values("scale_out_gbps")
    style = "-" if sigma == 0 else "--"
    ax.plot(rates, s.values, "o" + style, label=f"{gpus} GPUs, sigma {sigma:g}")
ax.set(xscale="log", xlabel="NIC line rate (Gb/s per direction)", ylabel="step time (s)")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
ax.set_title("Step time vs NIC rate, with and without stragglers")
plt.show()
