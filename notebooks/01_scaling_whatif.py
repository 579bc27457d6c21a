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
# # 1. Scaling what-if: speed-up and communication vs GPU count and link bandwidth
#
# For each GPU count the planner picks the best layout (closed form); we then read its
# speed-up over one ideal GPU and the share of the step spent in exposed communication,
# for the catalogue's inter-node bandwidth and for slower/faster what-if links. The seed
# article's linear speed-up (m × k = number of GPUs) is drawn beside them, and the SimPy
# engine re-runs the small counts where it is installed.
#
# The parameters below are small so that the notebook runs in CI in seconds; change them to
# your question.

# %%
# %matplotlib inline
from analysis.planner.whatif import scaling_sweep
from analysis.report.sweeps import scaling_figure
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model

MODEL = "llama-3-8b"
HARDWARE = "h100-sxm"
GPUS = [8, 16, 32, 64, 128, 256, 512]
SEQ_LEN = 4096  # tokens per sequence
GLOBAL_BATCH = 256  # sequences per step (~1M tokens)
BANDWIDTH_FACTORS = [0.25, 1.0, 4.0]  # x the catalogue's inter-node (scale-out) bandwidth
DES_MAX_GPUS = 16  # the SimPy engine re-runs counts up to this

# %%
model = load_model(MODEL)
hw = load_profile(HARDWARE)
df = scaling_sweep(
    model,
    hw,
    GPUS,
    SEQ_LEN,
    GLOBAL_BATCH,
    bandwidth_factors=BANDWIDTH_FACTORS,
    des_max_gpus=DES_MAX_GPUS,
)
print("SimPy engine ran" if df.attrs["des"] else "SimPy engine not installed: closed form only")
df[["gpus", "bandwidth_factor", "engine", "layout", "speedup", "seed_speedup", "comm_fraction"]]

# %%
scaling_figure(df, f"{MODEL} on {HARDWARE}: best layout per GPU count")

# %% [markdown]
# Read it as: the seed's line assumes every added GPU multiplies throughput; the closed form
# bends away where communication stops hiding behind compute (small per-GPU work, slower
# links) and where the fixed global batch forces model parallelism (bubbles, TP traffic).
