"""ParallelConfig / Workload validation: messages show the numbers."""

import pytest

from simulator.model import ModelSpec
from simulator.parallel import ParallelConfig, Workload

M = ModelSpec("m", 4096, 32, 32, 32000, 11008, num_key_value_heads=8, gated_mlp=True)


def test_dp_is_the_rest():
    p = ParallelConfig(tp=8, pp=4).resolve(1024)
    assert p.dp == 32
    assert p.num_microbatches == 1


def test_product_mismatch_shows_numbers():
    with pytest.raises(ValueError, match=r"tp\*pp\*cp\*dp = 2\*2\*1\*3 = 12 != 16 GPUs"):
        ParallelConfig(tp=2, pp=2, dp=3).resolve(16)


def test_global_batch_divisibility():
    with pytest.raises(ValueError, match="global_batch_size: 10 not divisible"):
        ParallelConfig(dp=4, global_batch_size=10).resolve(4)
    p = ParallelConfig(dp=4, micro_batch_size=2, global_batch_size=64).resolve(4)
    assert p.num_microbatches == 8


def test_interleaving_needs_microbatch_multiple_of_pp():
    with pytest.raises(ValueError, match="multiple of pp"):
        ParallelConfig(pp=4, vpp=2, global_batch_size=6).resolve(4)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"tp": 0}, "tp: 0"),
        ({"zero_stage": 4}, "zero_stage"),
        ({"recompute": "some"}, "recompute"),
        ({"precision": "int4"}, "precision"),
        ({"vpp": 2}, "vpp: 2 needs pp > 1"),
    ],
)
def test_bad_fields(kw, match):
    with pytest.raises(ValueError, match=match):
        ParallelConfig(**kw)


def test_workload_checks_heads_and_layers():
    with pytest.raises(ValueError, match="num_attention_heads = 32 not divisible by tp = 3"):
        Workload(M, ParallelConfig(tp=3).resolve(3))
    # an uneven split is valid (Megatron-Core's: the loss counted as a layer)
    assert Workload(M, ParallelConfig(pp=3).resolve(3)).stage_layer_counts == (11, 11, 10)
    with pytest.raises(ValueError, match="33 stage\\(s\\) would be empty"):
        Workload(M, ParallelConfig(pp=65).resolve(65))
    w = Workload(M, ParallelConfig(tp=8, pp=4, global_batch_size=16).resolve(64), 4096)
    assert w.tokens_per_step == 16 * 4096
    assert w.layers_per_stage == 8
