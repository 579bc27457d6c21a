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
# # 3. Mixed precision: time and energy in fp32, bf16 and fp8
#
# Each precision gets its own best layout. Beside llmcap's energy we draw the seed article's
# formula applied to llmcap's fp32 energy of the same layout: as printed, E_mixed = E × P/L
# (which *raises* energy by P/L), and the intended reading E × L/P. llmcap's own number also
# counts what does not shrink with the bit width: fp32 master weights and optimizer, memory-bound
# kernels, communication and idle power, and the fact that fp32 runs without tensor cores.

# %%
# %matplotlib inline
from analysis.planner.whatif import precision_sweep
from analysis.report.sweeps import precision_sweep_figure
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model

MODEL = "llama-3-8b"
HARDWARE = "h100-sxm"
GPUS = 64
SEQ_LEN = 4096
GLOBAL_BATCH = 256
TOKENS = 1e12
PRECISIONS = ["fp32", "bf16", "fp8"]

# %%
df = precision_sweep(
    load_model(MODEL), load_profile(HARDWARE), GPUS, SEQ_LEN, GLOBAL_BATCH, TOKENS, PRECISIONS
)
df  # noqa: B018 (the notebook displays it)

# %%
precision_sweep_figure(df, f"{MODEL} on {GPUS} x {HARDWARE}, {TOKENS:.0e} tokens")
