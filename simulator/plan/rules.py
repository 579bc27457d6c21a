"""Overlap rules and the closed form's named approximations of the schedule.

The SimPy engine executes the overlap (a collective beside a kernel slows that kernel by
`Options.comm_interference` while both run, `simulator.des.device`); the closed form prices
it with `exposed`. Both engines report the slowed kernel as compute and only the part of the
collective that outlasts its window as communication.
"""

from __future__ import annotations

import numpy as np

from simulator.costmodel.ops import Num


def beside(comm: Num, window: Num, phi: float) -> tuple[Num, Num]:
    """(exposed communication, compute slowdown) of a collective of `comm` seconds started
    with `window` seconds of compute beside it.

    The compute runs at ``1 - phi`` of its speed while the collective runs (SMs and HBM
    shared; `Options.comm_interference`), as `simulator.des.device` executes it: it ends at
    ``min(window + phi * comm, window / (1 - phi))``. The slowdown counts as compute (the
    kernel is running); only what the collective takes beyond the slowed kernel is exposed.
    """
    slowed = np.minimum(window + phi * comm, window / max(1.0 - phi, 1e-9))
    return np.maximum(0.0, comm - slowed), slowed - window


# ---- the closed form's named approximations of the schedule the SimPy engine executes -------


def chunk_passes(pp: Num, vpp: Num) -> Num:
    """Chunk passes, in units of the stage's whole pass (all its layers), between the first
    (or last) micro-batch's pass of the first chunk and that of the last chunk: with
    interleaving each chunk's first forward (last backward) comes ``pp`` chunk passes after
    the previous chunk's, so ``(1 + (vpp - 1) pp) / vpp``; 1 without."""
    return (1 + (vpp - 1) * pp) / vpp


def grad_window(layers: Num, bwd_per_layer: Num, pp: Num, vpp: Num) -> Num:
    """Rule "gradient window": the compute the data-parallel gradient reduction may overlap.

    The engine issues each bucket as soon as the last micro-batch's backward has produced it;
    the closed form takes the stage's last backward as one window (`layers` x one layer's
    backward and recompute). With interleaving each chunk's buckets start when that chunk's
    last backward ends: `chunk_passes` chunk backwards."""
    return layers * bwd_per_layer * chunk_passes(pp, vpp)


def param_window(layers: Num, fwd_per_layer: Num, pp: Num, vpp: Num) -> Num:
    """Rule "parameter window": ZeRO-1/2's gather of the updated parameters (issued at the
    step's start, in forward order) may overlap the first micro-batch's forward, and with
    interleaving everything up to the last chunk's first forward (`chunk_passes`)."""
    return layers * fwd_per_layer * chunk_passes(pp, vpp)


def grad_exposed(sync: Num, window: Num, tail: Num, phi: float, overlapped: bool, dp: Num):
    """Rule "last bucket": (exposed, compute slowdown) of a gradient reduction of `sync`
    seconds. Overlapped: the buckets but the last go `beside` the window; the last (`tail`, at
    most `sync`) is issued when the backward ends, so nothing hides it and it slows no compute
    (the SimPy engine runs it after the last kernel: exposed whole, no interference). A model
    whose gradients fit one bucket (torch DDP's 25 MiB on the validation GPT) therefore
    exposes all of it and slows nothing. Not overlapped: all of it after the backward."""
    if not overlapped:
        return sync, 0.0
    last = np.where(dp > 1, np.minimum(tail, sync), 0.0)
    exposed, slow = beside(sync - last, window, phi)
    return np.minimum(exposed + last, sync), slow


def reduction_per_rank(end: Num, queue: Num | None, own: Num, tail: Num, dp: Num) -> Num:
    """Rule "each rank's own reduction" (with `pass recursion`): (s) when each rank's
    gradient reduction ends (ranks x layouts).

    Every rank reduces its own gradients (`own` seconds) on its own data-parallel stream.
    Overlapped, a piece (a layer's gradients, the embedding's) can go once the last
    micro-batch's backward has made it final, at `arrive_k`, so the queue ends at
    `queue` ``= max_k (arrive_k + rest_k)``, `rest_k` the time to reduce piece k and all
    later ones (`pipeline_passes._Chunks.queue`); and no earlier than one last bucket
    (`tail`) after the rank's `end`. Not overlapped (`queue` None), the whole reduction
    follows the rank's end. The step ends with the last rank's reduction, which need not
    be the busiest rank's nor the last to compute. Derived from the schedule, not fitted."""
    if queue is None:
        return end + own
    return np.maximum(queue, end + np.where(dp > 1, np.minimum(tail, own), 0.0))


def drain_stretch(sync: Num, tail: Num, work: Num, phi: float, dp: Num, share: Num) -> Num:
    """Rule "each rank's drain slowed by its own reduction" (with `pass recursion`): the
    factor (ranks x layouts) by which a rank's drain passes (`work` seconds of compute, from
    its last chunk's final backward on, `makespan.drain_work`) stretch while its overlapped
    reduction runs beside them: the rank's reduction (`share` of the busiest stage's
    `sync`) but its last bucket (`tail`) goes `beside` that compute. The SimPy engine slows
    each kernel while a collective runs; in place of the fitted `drain_slowdown`. Derived,
    not fitted."""
    own = share * sync
    last = np.where(dp > 1, np.minimum(tail, own), 0.0)
    _, slow = beside(own - last, work, phi)
    return 1.0 + slow / np.maximum(work, 1e-30)


def zero3_exposed(
    per_mb: Num,
    compute_mb: Num,
    first: Num,
    phi: float,
    overlapped: bool,
    waited: Num = 0.0,
    shared: Num = 0.0,
    link: Num | None = None,
):
    """Rule "one ZeRO-3 window": (exposed, compute slowdown) per micro-batch of the ZeRO-3
    gathers and reduce-scatters (`per_mb` seconds). Prefetched: `beside` the micro-batch's
    compute as one window; what the compute cannot hide, or at least the first unit's gather
    (nothing before it to hide it) when that is longer: in a communication-bound micro-batch
    the link is busy throughout and the first gather runs behind the previous micro-batch's
    collectives, not after them. At most `per_mb`. The gathers past the stack's prefetch
    limit (`waited`, issued when their unit computes) are exposed whole and leave the window;
    in the backward each shares the group's link with the reduce-scatter issued with it
    (`shared` seconds of its bytes, rule "one group, one link"), which lengthens the wait by
    as much. `link`: the link's busy time per micro-batch (default `per_mb`) when the
    gathers' and reduce-scatters' latency terms run side by side. Not prefetched: all of it."""
    if not overlapped:
        return per_mb, 0.0
    busy = per_mb if link is None else link
    exposed, slow = beside(np.maximum(busy - waited - shared, 0.0), compute_mb, phi)
    return np.minimum(np.maximum(exposed, first) + waited + shared, per_mb), slow


def zero3_link_shared(first_fwd: Num, last_reduce: Num, m: Num) -> Num:
    """Rule "one group, one link" in ZeRO-3's first gather: (extra seconds per micro-batch)
    of the forward's first gather (`first_fwd`), issued as the previous backward ends together
    with that backward's last reduce-scatter (`last_reduce`). Both are collectives of the same
    data-parallel group on the same links, so they share the bandwidth: the gather takes
    ``min(first_fwd, last_reduce)`` longer (each at half rate until the shorter ends). Every
    micro-batch but the first follows a backward (1F1B alternates); the warm-up forwards of
    earlier pipeline stages are ignored (a slight over-count there). Derived, not fitted."""
    return np.minimum(first_fwd, last_reduce) * np.maximum(m - 1, 0) / np.maximum(m, 1)


def drain_slowdown(pp: Num, vpp: Num, grad_slow: Num, sync: Num, window: Num) -> Num:
    """Rule "drain": the part of the other (pp - 1) stages' gradient-reduction slowdowns
    (`grad_slow` each, the reduction of `sync` seconds beside a `window` of compute,
    `grad_window`) that lengthens the pipeline's drain, so joins the bubble (the heaviest
    stage's own counts as compute).

    Without interleaving all of it: each stage's last backward is slowed by its own
    reduction and the drain walks through all of them. With interleaving the stages' windows
    are offset along the drain by one chunk pass each, and two limits hold in the SimPy
    engine's schedule: a reduction much shorter than the window slows the stages one after
    the other, so the slowdowns add up along the drain (all of it); one covering the whole
    window slows the stages together, and only the last chunk's share of the window is
    unmatched, ``f1 = 1 / (1 + (vpp - 1) pp)``. Between them the share is interpolated as
    ``1 - x^2 (1 - f1)`` with ``x = min(1, sync / window)``: the quadratic is fitted to the
    engine on six cases (Llama-2-70B on 256 H100 and Llama-3-70B on 2,048 H100, vpp 2 and 5,
    reductions 0.4-1.5 x their window; docs/simulator.md), not derived."""
    f1 = 1.0 / (1 + (vpp - 1) * pp)
    x = np.minimum(1.0, sync / np.maximum(window, 1e-30))
    return (pp - 1) * grad_slow * (1.0 - x * x * (1.0 - f1))


def zero3_bubble(bubble: Num, busiest: Num, waits_mb: Num, slow_mb: Num) -> tuple[Num, Num]:
    """Rule "ZeRO-3 in the fill and drain": (waits, slowdown) that ZeRO-3 adds to the
    pipeline's fill and drain.

    Every stage gathers its own units on every pass: it waits for the gathers nothing hides
    (`waits_mb` per micro-batch: each pass's first unit and those past the prefetch limit,
    `zero3_exposed`; every gather without prefetching) and its compute is slowed by the rest
    beside it (`slow_mb`). The fill and drain walk through the other stages' passes, each
    stage waiting only for its neighbour's activations or gradients, not for its
    reduce-scatters nor the collectives' tail after its compute; `bubble` prices those
    passes without ZeRO-3, so they stretch by ``waits_mb / busiest`` and ``slow_mb /
    busiest`` of it, every stage taken as stretched like the busiest (`busiest`: its
    micro-batch without ZeRO-3). Labels (docs/simulator.md, "one definition of each label"):
    the waits are ZeRO-3 communication on the step's critical path, so `comm_zero3`, like
    the fill's and drain's pipeline sends are `comm_pp`; the slowed passes are other stages'
    compute, so `pipeline_bubble`. Derived from the 1F1B schedule, not fitted."""
    scale = bubble / np.maximum(busiest, 1e-30)
    return scale * waits_mb, scale * slow_mb


def zero3_drain_backlog(
    tail: Num, link: Num, gathers: Num, bwd_compute: Num, phi: float, pp: Num
) -> Num:
    """Rule "ZeRO-3 drain backlog": (s) what the step waits, after the last compute, for the
    ZeRO-3 reduce-scatters.

    Without a pipeline (or when the backward's collectives fit beside its compute) it is
    the last unit's reduce-scatter (`tail`): the micro-batches' link excess is already in
    `zero3_exposed`. With a pipeline the step ends with the first stage's last backward,
    at the end of the drain; its reduce-scatters share the link with its backward's
    gathers, so in a communication-bound backward they trail its compute by what the
    compute cannot hide of the backward's link time, half the gathers (`gathers`: a
    micro-batch's, each unit gathered once per pass) and all the reduce-scatters
    (`link - gathers / 2`), `beside` the backward's compute (`bwd_compute`, the busiest
    stage's, every stage taken like it); the busiest stage's own trail is hidden by the
    drain. Derived from the schedule, not fitted."""
    exposed, _ = beside(np.maximum(link - gathers / 2, 0.0), bwd_compute, phi)
    return np.where(np.asarray(pp) > 1, np.maximum(tail, exposed), tail)


def ring_sends(pp: Num, vpp: Num, send: Num, overlapped: bool) -> Num:
    """Rule "interleaved ring": what the point-to-point sends add to an interleaved fill and
    drain (s).

    The fill follows the first micro-batch's forward through all ``pp * vpp`` virtual
    stages, and the drain the last micro-batch's backward back through them: the virtual
    stages form a ring around the ``pp`` ranks, and each rank works through a group of
    ``pp`` micro-batches per chunk (Megatron's interleaved order; Narayanan et al. 2021,
    Sec. 2.2), exactly the ``pp`` chunk passes the ring takes to come back, so no slack
    hides a send. `bubble` counts the chunk passes; the fill and drain also carry one
    send per hop, ``2 (pp vpp - 1)`` of them, of which ``2 (pp - 1)`` are priced as
    `PipelineSends.fill_drain`: the other ``2 pp (vpp - 1)`` lengthen the bubble (the
    sending rank computes another micro-batch meanwhile, so the wait is the pipeline's).
    Blocking sends (`overlap_p2p` off) are already in each rank's own time: nothing. Derived
    from the schedule, not fitted."""
    if not overlapped:
        return np.zeros_like(np.asarray(send, dtype=float))
    return 2 * pp * (vpp - 1) * send


def bubble(total: Num, busiest: Num, vpp: Num) -> Num:
    """Rule "1F1B bubble": (sum of the other stages' micro-batch times) / vpp, the 1F1B step
    ``sum_{i != busiest} t_i + m t_busiest`` (Narayanan et al. 2021, Sec. 2.2), interleaving
    dividing the fill and drain by vpp."""
    return np.maximum(0.0, total - busiest) / vpp
