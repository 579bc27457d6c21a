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
# # 2. Hardware purchasing: which accelerator, how many, at what cost and energy
#
# The same search `llmcap plan` runs: for every hardware candidate and cluster size, every
# valid parallel layout is evaluated with the closed form, the best one is kept, and the
# token budget is costed (GPU-hours, rental dollars, MWh, tonnes of CO2). Prices come from
# the catalogue (`hwprofiles/data/prices.toml`, each row with its provider and date); pass
# your own quotes as a price table for a fair comparison.

# %%
# %matplotlib inline
import pandas as pd

from analysis.planner import PlanRequest, plan
from analysis.report.figures import pareto_figure, precision_figure, speedup_figure
from hwprofiles.catalogue import load_prices, load_profile
from simulator.models_catalogue import load_model

MODEL = "llama-3-70b"
TOKENS = 2e12
HARDWARE = ["h100-sxm", "a100-80gb", "b200", "mi300x"]
GPUS = [512, 1024, 2048]
PRECISIONS = ["bf16", "fp8"]
DEADLINE_DAYS = 30

# %%
prices = load_prices()
request = PlanRequest(
    model=load_model(MODEL),
    tokens=TOKENS,
    hardware=tuple(load_profile(h) for h in HARDWARE),
    gpus=tuple(GPUS),
    precisions=tuple(PRECISIONS),
    deadline_s=DEADLINE_DAYS * 86400.0,
    recheck=0,
)
result = plan(request, prices)
table = pd.DataFrame(result.rows())
table[table["feasible"]][
    [
        "hardware",
        "gpus",
        "precision",
        "layout",
        "mfu",
        "time_to_train_days",
        "cost_usd",
        "energy_mwh",
        "co2_t",
        "on_pareto",
    ]
]

# %%
print(f"{len(result.ranking)} candidates meet the {DEADLINE_DAYS}-day deadline; cheapest first:")
[result.candidates[i].label for i in result.ranking]

# %%
pareto_figure(result)

# %%
speedup_figure(result)

# %%
precision_figure(result)
