"""Uneven pipeline splits (`simulator.pipeline_split`) and both engines on them."""

from __future__ import annotations

import pytest

from analysis.closed_form import Options
from analysis.predict import analytic_arrays
from hwprofiles.catalogue import load_profile
from simulator.des.run import simulate_step
from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig, Workload
from simulator.pipeline_split import physical_stage_layers, stage_layers


def test_even_split_when_it_divides():
    assert stage_layers(96, 8, 2) == (6,) * 16


def test_embedding_and_loss_counted_where_that_balances():
    # Llama 3 405B: 126 layers on 16 stages, (126 + 2) / 16 = 8: the ends get 7
    assert stage_layers(126, 16) == (7,) + (8,) * 14 + (7,)
    # 70 layers on 12 stages: (70 + 2) / 12 = 6
    assert stage_layers(70, 12) == (5,) + (6,) * 10 + (5,)


def test_most_balanced_otherwise_extra_layers_in_the_middle():
    split = stage_layers(30, 4)  # 32 % 4 == 0 -> accounted; 30 on 7 is not
    assert sum(split) == 30
    s7 = stage_layers(30, 7)
    assert sum(s7) == 30 and max(s7) - min(s7) == 1
    assert s7[0] == s7[-1] == 4 and max(s7[1:-1]) == 5


def test_interleaved_chunks_sum_per_rank():
    split = stage_layers(126, 8, 8)
    assert len(split) == 64 and sum(split) == 126 and min(split) >= 1
    assert sum(physical_stage_layers(split, 8)) == 126


def test_pins_and_their_errors():
    assert stage_layers(96, 8, 1, first=10, last=10)[0] == 10
    assert sum(stage_layers(96, 8, 1, first=10, last=10)) == 96
    with pytest.raises(ValueError, match="exceed the model's 10 by 6"):
        stage_layers(10, 4, 1, 8, 8)
    with pytest.raises(ValueError, match="2 would be empty"):
        stage_layers(10, 4, 1, first=9)
    with pytest.raises(ValueError, match="2 stage\\(s\\) would be empty"):
        stage_layers(6, 4, 2)


UNEVEN = {
    # 32 layers on 3 stages; on 6 x 2 chunks (40 layers); a pinned first stage
    "pp3": ("a100-80gb", "gpt3-6.7b", 3, dict(pp=3, global_batch_size=24)),
    "pp6-vpp2": ("h100-sxm", "llama-2-13b", 24, dict(tp=4, pp=6, vpp=2, global_batch_size=48)),
    "pp5-pinned": (
        "h100-sxm",
        "llama-2-7b",
        5,
        dict(pp=5, global_batch_size=20, first_stage_layers=4),
    ),
}


@pytest.mark.parametrize("name", sorted(UNEVEN))
def test_engines_agree_on_uneven_splits(name):
    hw_name, model, gpus, layout = UNEVEN[name]
    hw, opts = load_profile(hw_name), Options()
    w = Workload(load_model(model), ParallelConfig(**layout).resolve(gpus), 2048)
    des = simulate_step(w, hw, opts, contention=False)
    cf = analytic_arrays(w, hw, opts)
    assert des.step_time_s / cf["step_time_s"] == pytest.approx(1.0, abs=0.02)


def test_heaviest_stage_sets_the_pace_and_the_memory():
    hw, opts = load_profile("h100-sxm"), Options()
    m = load_model("llama-2-7b")

    def run(**pins):
        p = ParallelConfig(pp=4, global_batch_size=32, **pins).resolve(4)
        return analytic_arrays(Workload(m, p, 2048), hw, opts)

    even, skew = run(), run(first_stage_layers=14)
    assert skew["step_time_s"] > even["step_time_s"] * 1.3
    assert skew["memory_per_gpu_bytes"] > even["memory_per_gpu_bytes"]


def test_run_file_pins_the_split(tmp_path):
    from analysis.runconfig import build_run, merge, read_run_file

    f = tmp_path / "run.toml"
    f.write_text(
        '[model]\nname = "llama-2-7b"\n[parallelism]\ntp = 1\npp = 4\n'
        "first_stage_layers = 5\nlast_stage_layers = 5\n"
        '[training]\nglobal_batch = 8\n[cluster]\nhardware = "h100-sxm"\ngpus = 4\n'
    )
    w = build_run(merge(read_run_file(f), {})).workload
    assert w.stage_layer_counts == (5, 11, 11, 5)
