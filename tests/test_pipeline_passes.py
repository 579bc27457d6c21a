"""`analysis.pipeline_passes`: each rank's reduction queue against its pieces one by one."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.pipeline_passes import Grads, _Chunks
from simulator.pipeline_split import stage_layers


def _by_piece(split, pp, b_layer, head_b, bwd, g, final):
    """The queue's end from every piece in turn: ``max_k (arrive_k + rest_k)``."""
    V = len(split)
    out = []
    for r in range(pp):
        got = []  # (arrival, share) in the order the last backward makes them final
        for v in range(V - pp + r, -1, -pp):
            t0 = final[v] + (head_b if v == V - 1 else 0.0)
            if v == V - 1:
                got.append((t0, g.end_share))
            got += [(t0 + k * b_layer, g.layer_share) for k in range(1, split[v] + 1)]
            if v == 0:
                got.append((final[0] + bwd[0], g.end_share))
        rest = np.cumsum([x for _, x in got][::-1], axis=0)[::-1]
        out.append(np.max([a + s * g.sync for (a, _), s in zip(got, rest, strict=True)], axis=0))
    return np.array(out)


@pytest.mark.parametrize("layers,pp,vpp", [(80, 8, 8), (80, 8, 3), (40, 3, 2), (32, 2, 3)])
def test_queue_is_the_max_over_pieces(layers, pp, vpp):
    rng = np.random.default_rng(layers + pp)
    n = 4
    split = stage_layers(layers, pp, vpp)
    final = np.sort(rng.uniform(0, 10, (pp * vpp, n)), axis=0)[::-1]
    bwd = rng.uniform(0.1, 0.5, (pp * vpp, n))
    b_layer, head_b = rng.uniform(0.01, 0.1, n), rng.uniform(0.05, 0.2, n)
    g = Grads(
        rng.uniform(0.5, 3, n), rng.uniform(0, 0.01, n), np.full(n, 4.0),
        rng.uniform(0.05, 0.1, n), rng.uniform(0.05, 0.2, n), 0.18, True,
    )  # fmt: skip
    chunks = _Chunks(split, pp, b_layer, head_b, bwd, g)
    np.testing.assert_allclose(
        chunks.queue(final), _by_piece(split, pp, b_layer, head_b, bwd, g, final)
    )


def test_a_cache_cleared_mid_call_keeps_every_result(monkeypatch):
    """The recursion's results are kept across calls (`_CACHE`), cleared when full; a clear
    between two groups of one call must not lose what the first group found there."""
    import analysis.pipeline_passes as passes
    from analysis.closed_form import Options, evaluate
    from analysis.layouts import Layouts
    from hwprofiles.catalogue import load_profile
    from simulator.models_catalogue import load_model
    from simulator.parallel import ParallelConfig

    model, hw = load_model("llama-3-70b"), load_profile("h100-sxm")
    configs = [
        ParallelConfig(tp=8, pp=pp, vpp=vpp, micro_batch_size=1, global_batch_size=gbs)
        .resolve(1024)
        for pp, vpp in [(4, 3), (8, 3), (8, 6), (16, 3)]  # 80 layers: uneven chunks
        for gbs in (512, 1024)
    ]  # fmt: skip
    L = Layouts.from_configs(configs)

    def steps():
        return evaluate(model, hw, 8192, L, "bf16", Options(), keys=("step_time_s",))

    passes._CACHE.clear()
    fresh = steps()["step_time_s"]
    cached = steps()["step_time_s"]  # every result from the cache
    monkeypatch.setattr(passes, "CACHE_ROWS", 1)  # cleared before every store
    passes._CACHE.clear()
    steps()  # one result left in the cache, from the last group
    tiny = steps()["step_time_s"]
    assert np.array_equal(fresh, cached) and np.array_equal(fresh, tiny)
    assert len(passes._CACHE) == 1
    passes._CACHE.clear()
