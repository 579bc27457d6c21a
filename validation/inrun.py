"""Component rates measured inside a run, between its timed steps.

A calibration, the pre-run probes and a run's steps happen at different moments, and on a
shared host the machine's speed moves between them: on the 2-vCPU AMD EPYC VM the same step
ran in two speed states about 1.5x apart, switching within seconds (docs/validation.md,
session 7), and in one chain the pre-run GEMM probes read 1.45x the calibration while the
probe right after the runs read 0.99x (chain 42, 2026-12-03). A prediction priced at the
calibration's rates then misses by the machine's state, not by the model.

So every rank times its components after each timed step, outside its timed region, with
the same processes, threads and neighbours as the step, and on every rank at once where the
run has several; then it runs one untimed step, so that every timed step follows a step as
it does in a run without probes (a step right after the probes ran 0.92-1.19x, median about
1.05x, the step after a step in four alternating rounds of 12 each for DDP fp32 and FSDP
bf16, AMD EPYC VM, 2026-12-03: the probes leave the caches holding their data, not the
model's). The components:

- `gemm`: the model's MLP up- and down-projection forward in the run's compute dtype, in
  `nn.Linear`'s layout (X @ W^T), looped for about `GEMM_SAMPLE_S` after `GEMM_WARM_S` of
  untimed pairs, as the calibration times it; seconds per call, the mean of the two (equal
  FLOPs; the profile's `GemmTiming` holds their mean). Right after a step the pair runs
  slower and speeds up over about 2 ms (the tiny model's fp32 pair: 384, 222, 213 ... 157 us
  for the 1st, 2nd, 3rd ... 12th pair after a step, against about 150 us looped; medians of
  30 steps, AMD EPYC VM, 2026-12-03): the warm-up keeps that out, so the probe reads the
  machine's speed against the calibration's and nothing else.
- `pass` and `optimizer` (CPU runs): the model's *hollow twin* (`validation.hollow`: the
  same GPT class, layers and heads at nil widths, so what is timed is host time, i.e. Python
  and torch dispatch) wrapped as the run wraps its model (DDP, or FSDP2 per block plus the
  root) over a 1-rank process group of this rank: its forward + backward + `zero_grad`, and
  its AdamW step, each the mean of `HOST_STEPS` after an untimed one. These are the model's
  framework host times (`HostProfile.model_pass_s`) that `llmcap validate` otherwise
  measures once before the runs, now measured between the run's steps, on every rank at
  once: the host's speed state of the moment (one back-to-back series of the pre-run
  measurement read the DDP fp32 pass at 3.0-4.2 ms and the FSDP AdamW step at 11.6-16.7 ms,
  3 s apart, quiet VM, 2026-12-03) and, under several ranks, their contention for the
  host, which the calibration does not measure for host time.

- `collectives` (runs of several ranks): each collective the run's strategy issues (DDP: the
  gradient all-reduce; FSDP: a block's all-gather and reduce-scatter), at the model's sizes,
  timed as the calibration times collectives *as a step meets them*
  (`hwprofiles.calibration.collectives.MET_GAP_S`): one call after a barrier and that long
  of compute on every rank; the slowest rank's time per call. On this VM a gloo call's
  wake-up latency moves with the host (0.5-0.8 ms, or 3-4 ms when a rank wakes late;
  `hwprofiles.calibration.collective_worker`), and before this probe FSDP's 2-rank runs
  were the worst predicted: 3-24 % slower than priced, median 14 % (chains 47-51,
  2026-12-03).

`validation.inplace` prices each run with these rates in place of the profile's: GEMM and
attention times scaled by the profile's GEMM figure (with the run's ranks busy,
`hwprofiles.host.under_load`) over the in-run `gemm`, the model's host times replaced by
the in-run `pass` and `optimizer`, and each collective's alpha-beta fit scaled by its in-run
time over the fit's. Nothing here times the step itself: what is confirmed is
still the composition of component rates into a step (overlap, communication, memory-bound
kernels, framework costs), at the rates of the moment.

Two other ways were tried on three chains (2026-12-03, 16:41-17:05 UTC) and not kept:
- a step of the *unwrapped* hollow model between the steps, with the pre-run host times
  scaled by its speed against the same step timed before the runs: the median step error got
  worse in all three (8.1 -> 14.9, 11.9 -> 13.9, 12.2 -> 16.3 %);
- timing the GEMM pair once, unlooped, right after a burst of dispatch ("as the step meets
  it": a step's GEMMs do run slower than looped, 3.4 ms against 1.7 ms over the tiny fp32
  step's 26 GEMM calls, `torch.profiler` self time) read 0.30-0.35x in fp32 and priced the
  fp32 DDP runs 21-34 % too slow: one pair after a burst of dispatch is slower than a
  step's average GEMM.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from hwprofiles.calibration.collective_worker import make_op, met_call
from hwprofiles.calibration.collectives import MET_GAP_S
from validation.spec import RunSpec

GEMM_SAMPLE_S = 3e-3
"""A `gemm` sample loops the pair for about this long (s): long beside the clock, short
beside the tiny model's 10-90 ms step (a choice, not a measurement)."""
GEMM_WARM_S = 2e-3
"""Untimed pairs before each `gemm` sample, for about this long (s; `InRunProbes.gemm`)."""
HOST_STEPS = 2
"""Timed calls per host-probe sample (a choice: 6-30 ms of the tiny model's hollow twin)."""
WARMUP = 3
"""Untimed samples before the first timed one (the first calls allocate)."""


class InRunProbes:
    """The in-run component probes of one rank of the run `spec` (module docstring).
    Every rank of the run builds them at once (each makes the same 1-rank process groups)."""

    def __init__(self, spec: RunSpec, device: torch.device, rank: int) -> None:
        from hwprofiles.calibration.workload import operands
        from simulator.costmodel.timing import gemm_dtype
        from validation.drift import probe_shapes

        cfg, precision = spec.model, spec.precision
        up, down = probe_shapes(cfg)[:2]  # forward, in nn.Linear's layout, as calibrated
        dtype = gemm_dtype(precision)
        self._pairs = [operands(s, dtype, s.m, device.type) for s in (up, down)]
        self._sync: Callable[[], None] = (
            (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
        )
        self._pass = self._opt = None
        self._colls = [
            (name, make_op(name, nbytes, rank, spec.nproc, device.type))
            for name, nbytes in collective_sizes(spec)
        ]
        self._gap = torch.ones(64, 64, device=device)
        if device.type == "cpu":
            import torch.distributed as dist

            from validation.hollow import optimizer_step, wrapped_step

            groups = [dist.new_group([r]) for r in range(dist.get_world_size())]
            with torch.random.fork_rng():  # the hollow twin seeds torch's generator
                self._pass = wrapped_step(cfg, spec.strategy, precision, groups[rank])
                self._opt = optimizer_step(cfg, spec.strategy, groups[rank])
        self._inner = self._warm = 1
        for _ in range(WARMUP):
            self.sample()
        pair_s = 2 * self.gemm()
        self._inner = max(1, min(1000, round(GEMM_SAMPLE_S / pair_s)))
        self._warm = max(1, min(1000, round(GEMM_WARM_S / pair_s)))

    def _pair_once(self) -> None:
        for x, wt, out in self._pairs:
            torch.mm(x, wt, out=out)

    def gemm(self) -> float:
        """Seconds per GEMM call (the mean of up and down), looped after `GEMM_WARM_S` of
        untimed pairs, as the calibration times it."""
        for _ in range(self._warm):
            self._pair_once()
        self._sync()
        t0 = time.perf_counter()
        for _ in range(self._inner):
            self._pair_once()
        self._sync()
        return (time.perf_counter() - t0) / (2 * self._inner)

    @staticmethod
    def _host(fn: Callable[[], object] | None) -> float | None:
        """Seconds per call of `fn`: the mean of `HOST_STEPS` after an untimed one."""
        if fn is None:
            return None
        fn()
        t0 = time.perf_counter()
        for _ in range(HOST_STEPS):
            fn()
        return (time.perf_counter() - t0) / HOST_STEPS

    def collectives(self) -> dict[str, float]:
        """Seconds of one call of each collective, after a barrier and `MET_GAP_S` of
        compute (this rank's time; `measure` keeps the slowest rank's)."""
        return {name: met_call(op, MET_GAP_S, self._gap, self._sync) for name, op in self._colls}

    def sample(self) -> tuple[float, float | None, float | None, dict[str, float]]:
        """One (gemm, pass, optimizer, collectives) sample; None for the host probes of a
        GPU run, no collective in a 1-rank run."""
        return self.gemm(), self._host(self._pass), self._host(self._opt), self.collectives()


def collective_sizes(spec: RunSpec) -> list[tuple[str, int]]:
    """(collective, bytes) the in-run probe times for `spec`, in the calibration's size
    convention (`collective_worker.make_op`: the whole buffer, fp32 elements): DDP's
    all-reduce of the model's fp32 gradients (one bucket at most); FSDP's all-gather and
    reduce-scatter of one block's parameters. None for one rank."""
    from hwprofiles.calibration.collectives import message_bytes
    from validation.components import block_params, gradient_bytes

    if spec.nproc < 2:
        return []
    if spec.strategy == "ddp":
        sizes = [("all_reduce", gradient_bytes(spec.model))]
    else:
        block = 4 * block_params(spec.model)
        sizes = [("all_gather", block), ("reduce_scatter", block)]
    return [(name, message_bytes(n, spec.nproc)) for name, n in sizes]
