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
