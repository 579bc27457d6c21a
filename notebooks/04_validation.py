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
# # 4. Validation: measured vs predicted
#
# Loads a `llmcap validate --json` result (rows of run, metric, measured, predicted, engine,
# error): the repository's committed validation report, `docs/validation/cpu/report.json`
# (real torchrun runs on the CPU machine, `docs/validation.md`; the first
# `docs/validation/*/report.json`). Only when there is none does the notebook fall back to
# `notebooks/data/validation_example.json`, which is **example data, not a measurement** (the
# figure title then says so).

# %%
# %matplotlib inline
from pathlib import Path

from analysis.report.validation import find_result, load_comparisons, validation_figure

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
EXAMPLE = ROOT / "notebooks" / "data" / "validation_example.json"

# %%
source = find_result(ROOT, EXAMPLE)
df = load_comparisons(source)
print(f"source: {source.relative_to(ROOT)}", "(EXAMPLE DATA)" if df.attrs["example"] else "")
df  # noqa: B018 (the notebook displays it)

# %%
df.groupby(["metric", "engine"])["error"].describe()[["count", "mean", "min", "max"]]

# %%
validation_figure(df)
