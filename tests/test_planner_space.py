"""The planner's layout enumerator agrees, layout by layout, with ParallelConfig and Workload."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analysis.planner.search import layout_config
from analysis.planner.space import (
    DEFAULT_BATCH_TOKENS,
    REASONS,
    BatchPolicy,
    SearchSpace,
    candidate_product,
    classify,
    enumerate_layouts,
)
from simulator.model import ModelSpec
from simulator.parallel import Workload

# A small GQA model whose sizes make every rule bite: 12 heads (tp=8 fails), 4 K/V heads,
# 6 layers (pp*vpp=4 fails), seq_len 96 (cp=64 fails; sp with tp*cp=64 fails); on 6-GPU
# nodes tp=3 neither divides nor is divided by the 4 K/V heads.
SMALL = ModelSpec(
    name="small-gqa",
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=12,
    num_key_value_heads=4,
    vocab_size=1000,
    intermediate_size=1024,
    gated_mlp=True,
    bias=False,
    norm="rmsnorm",
    position_embedding="rope",
    tie_word_embeddings=False,
)


def _construct(model, gpus, seq_len, row):
    """Build the scalar objects for one row; the ValueError they raise is the reference."""
    return Workload(model, layout_config(row, "bf16", gpus), seq_len)


@pytest.mark.parametrize(("gpus", "gpus_per_node"), [(1, 8), (4, 8), (16, 8), (6, 6), (12, 6)])
@pytest.mark.parametrize("gbs", [24, 32])
def test_every_candidate_classified_as_the_dataclasses_would(gpus, gpus_per_node, gbs):
    space = SearchSpace(max_cp=64, micro_batches=(1, 2, 3), zero_stages=(0, 3))
    seq_len = 96
    cols = candidate_product(SMALL, gpus, gpus_per_node, space)
    batch = BatchPolicy(gbs)  # exact batch: the dataclasses' rule and ours must coincide
    reason, _, dp, out_gbs = classify(SMALL, gpus, seq_len, cols, batch)
    assert set(np.unique(reason)) - {-1}, "the test model should trip some rules"
    for i in range(reason.size):
        row = {k: int(v[i]) for k, v in cols.items()} | {"gbs": gbs}
        if reason[i] == -1:
            w = _construct(SMALL, gpus, seq_len, row)
            assert w.parallel.dp == dp[i] and out_gbs[i] == gbs
        else:
            with pytest.raises(ValueError):
                _construct(SMALL, gpus, seq_len, row)


# the same model with 8 routed experts (top-2): exercises the expert-parallel rules
SMALL_MOE = dataclasses.replace(
    SMALL, name="small-moe", n_routed_experts=8, num_experts_per_tok=2, moe_intermediate_size=256
)


def test_all_rules_exercised_by_the_small_models():
    space = SearchSpace(max_cp=64, micro_batches=(1, 3))
    seen = set()
    for model in (SMALL, SMALL_MOE):
        for gpus, gpn in ((1, 8), (6, 6), (16, 8)):  # tp=3 on 6-GPU nodes vs 4 K/V heads
            cols = candidate_product(model, gpus, gpn, space)
            reason, _, _, _ = classify(model, gpus, 96, cols, BatchPolicy(24))
            seen |= set(reason[reason >= 0].tolist())
    assert seen == set(range(len(REASONS)))


@pytest.mark.parametrize(("gpus", "gpus_per_node"), [(8, 8), (16, 8)])
def test_moe_candidates_classified_as_the_dataclasses_would(gpus, gpus_per_node):
    space = SearchSpace(max_cp=2, micro_batches=(1,), zero_stages=(1, 3), recompute=(0,))
    cols = candidate_product(SMALL_MOE, gpus, gpus_per_node, space)
    assert set(np.unique(cols["ep"])) == {1, 2, 4, 8}
    reason, _, _dp, out_gbs = classify(SMALL_MOE, gpus, 96, cols, BatchPolicy(16))
    for i in range(reason.size):
        row = {k: int(v[i]) for k, v in cols.items()} | {"gbs": int(out_gbs[i])}
        if reason[i] == -1:
            assert _construct(SMALL_MOE, gpus, 96, row).parallel.ep == row["ep"]
        else:
            with pytest.raises(ValueError):
                _construct(SMALL_MOE, gpus, 96, row)


def test_emitted_layouts_build_valid_workloads_and_skip_redundant_names():
    e = enumerate_layouts(SMALL, 16, 8, 96, BatchPolicy(32), SearchSpace(max_cp=4))
    assert len(e.layouts) > 0
    for i in range(len(e.layouts)):
        row = e.layouts.row(i)
        w = _construct(SMALL, 16, 96, row)
        assert w.num_gpus == 16
    L = e.layouts
    assert not np.any((L.sp == 1) & (L.tp == 1)), "sp without tp is the same layout"
    assert not np.any((L.zero > 0) & (L.dp == 1)), "ZeRO without dp is the same layout"
    rows = {tuple(L.row(i).values()) for i in range(len(L))}
    assert len(rows) == len(L), "no layout emitted twice"
    assert sum(e.rejected.values()) < e.tried


def test_default_batch_is_four_million_tokens_rounded_per_layout():
    b = BatchPolicy.default(8192)
    assert b.target_sequences * 8192 == DEFAULT_BATCH_TOKENS == 4 * 2**20
    model = ModelSpec(
        name="m",
        hidden_size=1024,
        num_hidden_layers=8,
        num_attention_heads=8,
        vocab_size=1000,
        intermediate_size=4096,
    )
    e = enumerate_layouts(model, 384, 8, 8192, b, SearchSpace(max_cp=1))
    gbs, unit = e.layouts.gbs, e.layouts.mb * e.layouts.dp
    assert np.all(gbs % unit == 0)
    assert np.all(np.abs(gbs - 512) <= 0.25 * 512)
    assert set(gbs.tolist()) != {512}, "384 GPUs cannot all divide 512: some layouts round"


def test_no_layout_when_the_model_cannot_be_split():
    # 7 GPUs: tp*pp*cp must divide 7 and pp must divide 6 layers -> only tp=pp=cp=1, dp=7,
    # and an exact batch of 24 is not a multiple of 7.
    e = enumerate_layouts(SMALL, 7, 8, 96, BatchPolicy(24), SearchSpace(max_cp=1))
    assert len(e.layouts) == 0
    assert e.rejected[REASONS[6]] > 0
    assert set(e.blocking) == {REASONS[6]}, "the batch is the rule to relax"


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="global_batch"):
        BatchPolicy(0)
    with pytest.raises(ValueError, match="gpus"):
        enumerate_layouts(SMALL, 0, 8, 96, BatchPolicy(24))
    with pytest.raises(ValueError, match="micro_batches"):
        SearchSpace(micro_batches=())
