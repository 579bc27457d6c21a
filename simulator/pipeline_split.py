"""How a pipeline splits the transformer layers over its stages, even or not.

Real runs put any layer count on any number of stages (70 layers on 12 stages, Llama 3 405B's
126 layers on 16 stages; Dubey et al. 2024, "The Llama 3 Herd of Models", Sec. 3.3.2), so a
split is a list of layer counts, one per virtual stage (model chunk) in pipeline order
``v = chunk * pp + stage``. The default follows Megatron-Core:

1. layers divisible by ``pp * vpp``: the even split;
2. else, if ``layers + 2`` is divisible: the embedding and the loss counted as one layer each
   on the first and last virtual stage (Megatron-Core's `account_for_embedding_in_pipeline_split`
   and `account_for_loss_in_pipeline_split`, megatron/core/transformer/transformer_config.py,
   2025), so those two stages get one layer less; likewise ``layers + 1`` with the loss alone;
3. else the most balanced split: ``layers // V`` each and the remainder one by one to the
   middle stages first (the first stage holds the most micro-batches' activations and the last
   the output layer), then the first, then the last.

``first`` / ``last`` pin the layers of the first / last pipeline stage (all its chunks, as
Megatron-Core's `decoder_first_pipeline_num_layers` / `decoder_last_pipeline_num_layers`);
the rest is split as in 3 over the other stages. Only an empty stage is an error.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hwprofiles.errors import UserError


def _spread(total: int, slots: list[int], counts: dict[int, int], order: list[int]) -> None:
    """Put `total` layers on virtual stages `slots`, as evenly as possible; the remainder
    goes to the slots in `order` first."""
    base, rem = divmod(total, len(slots))
    for v in slots:
        counts[v] = base
    for v in [v for v in order if v in slots][:rem]:
        counts[v] += 1


def _fill_order(slots: list[int], first_v: set[int], last_v: set[int]) -> list[int]:
    middle = [v for v in slots if v not in first_v and v not in last_v]
    return middle + [v for v in slots if v in first_v] + [v for v in slots if v in last_v]


@lru_cache(maxsize=4096)
def stage_layers(
    layers: int, pp: int, vpp: int = 1, first: int | None = None, last: int | None = None
) -> tuple[int, ...]:
    """Layer counts of the ``pp * vpp`` virtual stages, in pipeline order (rules above)."""
    V = pp * vpp
    if layers < V:
        raise UserError(
            f"pp: pp*vpp = {pp}*{vpp} = {V} stages for {layers} layers: "
            f"{V - layers} stage(s) would be empty"
        )
    if pp == 1:
        for name, value in (("first_stage_layers", first), ("last_stage_layers", last)):
            if value is not None and value != layers:
                raise UserError(
                    f"{name}: {value} but with pp = 1 the one stage holds all {layers} layers"
                )
        return (layers // V,) * V if layers % V == 0 else stage_layers(layers, 1, 1)
    first_v = {c * pp for c in range(vpp)}
    last_v = {c * pp + pp - 1 for c in range(vpp)}
    counts: dict[int, int] = {}
    pinned = 0
    pins = (("first_stage_layers", first, first_v), ("last_stage_layers", last, last_v))
    for name, value, vs in pins:
        if value is None:
            continue
        if value < vpp:
            raise UserError(
                f"{name}: {value} leaves {vpp - value} of the stage's {vpp} chunk(s) empty "
                "(needs >= vpp layers)"
            )
        _spread(value, sorted(vs), counts, sorted(vs))
        pinned += value
    if pinned > layers:
        raise UserError(
            f"first_stage_layers/last_stage_layers: {pinned} pinned layers exceed the "
            f"model's {layers} by {pinned - layers}"
        )
    rest = [v for v in range(V) if v not in counts]
    left = layers - pinned
    if not rest:
        if left:
            raise UserError(
                f"first_stage_layers/last_stage_layers: pin {pinned} of {layers} layers on the "
                f"only stages; {left} layer(s) unplaced"
            )
        return tuple(counts[v] for v in range(V))
    if left < len(rest):
        raise UserError(
            f"first_stage_layers/last_stage_layers: {left} layer(s) left for {len(rest)} other "
            f"virtual stage(s): {len(rest) - left} would be empty"
        )
    if pinned == 0:
        if layers % V == 0:
            return (layers // V,) * V
        for extra, ends in ((2, (0, V - 1)), (1, (V - 1,))):
            if V > 1 and (layers + extra) % V == 0:
                n = (layers + extra) // V
                return tuple(n - (v in ends) for v in range(V))
    _spread(left, rest, counts, _fill_order(rest, first_v, last_v))
    return tuple(counts[v] for v in range(V))


def physical_stage_layers(split: tuple[int, ...], pp: int) -> tuple[int, ...]:
    """Layers on each pipeline rank: the sum over its chunks (``v % pp == stage``)."""
    return tuple(sum(split[v] for v in range(stage, len(split), pp)) for stage in range(pp))


def chunk_offsets(split: tuple[int, ...]) -> tuple[int, ...]:
    """Index of the first layer of each virtual stage."""
    out, acc = [], 0
    for n in split:
        out.append(acc)
        acc += n
    return tuple(out)


@lru_cache(maxsize=4096)
def _ends(layers: int, pp: int, vpp: int, first: int, last: int) -> tuple[int, int, int, int]:
    """(first, last, busiest middle, busiest) rank's layers of one split (0: not pinned)."""
    stages = physical_stage_layers(stage_layers(layers, pp, vpp, first or None, last or None), pp)
    return stages[0], stages[-1], max(stages[1:-1], default=0), max(stages)


def split_arrays(layers: int, pp, vpp, first=None, last=None) -> dict[str, np.ndarray]:
    """Per layout (equal-length integer arrays; 0 in `first`/`last` = not pinned): layers on
    the first rank, the last rank, the busiest middle rank (0 without one) and the busiest
    rank, for the vectorised closed form."""
    pp, vpp = np.asarray(pp), np.asarray(vpp)
    zeros = np.zeros(pp.shape, dtype=np.int64)
    first = zeros if first is None else np.broadcast_to(first, pp.shape)
    last = zeros if last is None else np.broadcast_to(last, pp.shape)
    cols = [np.asarray(c, dtype=np.int64).reshape(-1) for c in (pp, vpp, first, last)]
    # one integer per (pp, vpp, first, last): a 1-D unique is much faster than unique(axis=0)
    base = max(int(c.max(initial=0)) for c in cols) + 1
    code = ((cols[0] * base + cols[1]) * base + cols[2]) * base + cols[3]
    uniq_codes, inverse = np.unique(code, return_inverse=True)
    uniq = [(c // base**3, c // base**2 % base, c // base % base, c % base) for c in uniq_codes]
    rows = [_ends(layers, int(p), int(v), int(f), int(la)) for p, v, f, la in uniq]
    table = np.array(rows, dtype=float).reshape(-1, 4)
    index = inverse.reshape(-1)
    return {
        k: table[index, j].reshape(pp.shape)
        for j, k in enumerate(("first", "last", "middle", "max"))
    }
