"""Collectives measured through the rate-limited link itself, before the runs that cross it.

A `tc tbf` port is not only a rate. Through it the ranks' TCP flows keep a standing queue
(the qdisc holds up to `netns.QUEUE_LATENCY` of data), every segment pays the qdisc and the
bridge, and the ACKs share the port with the data of the opposite direction. A collective's
time through the link is therefore measured, as nccl-tests is run on the fabric it
describes: all-reduce and all-gather (gloo's reduce-scatter is an all-reduce, priced so by
the cost model) at a few sizes, with the same workers and timing as `llmcap calibrate`, in
the same namespaces and links the runs use. Their α-β fits replace the nominal link in the
prediction (`mapping.hardware_for_run`); the report keeps them, so `--repredict` reuses them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hwprofiles.calibration.collectives import GroupConfig, run_collective_group
from hwprofiles.calibration.fit import fit_alpha_beta
from hwprofiles.calibration.timing import Repeats
from hwprofiles.profile import CollectiveFit
from validation.launcher import Network

COLLECTIVES = ("all_reduce", "all_gather")
SIZES = (256 * 2**10, 2 * 2**20, 8 * 2**20)
"""Message sizes (bytes, nccl-tests convention): from latency- to bandwidth-bound; the runs'
collectives span 0.3 MB (a layer's biases) to 21 MB (all gradients)."""
REPEATS = Repeats(warmup=1, samples=4, min_samples=2, budget_s=3.0, sample_s=0.0)
"""Few samples: at 200 Mbit/s one 8 MiB all-reduce takes 0.35 s."""
TIMEOUT_S = 600.0  # s, for the whole group (a 200 Mbit/s link takes about 10 s)


@dataclass(frozen=True)
class LinkFit:
    """One collective's α-β fit through a link of `link_bytes_per_s` between `world_size`
    ranks; `rows` are the measurements behind it."""

    link_bytes_per_s: float
    collective: str
    world_size: int
    alpha_s: float
    beta_s_per_byte: float
    rel_rms: float
    rows: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rows": list(self.rows)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinkFit:
        return cls(**(d | {"rows": tuple(d.get("rows", ()))}))

    def collective_fit(self) -> CollectiveFit:
        return CollectiveFit(
            collective=self.collective,
            world_size=self.world_size,
            alpha_s=self.alpha_s,
            beta_s_per_byte=self.beta_s_per_byte,
            backend="gloo",
            source=f"measured through the {self.link_bytes_per_s * 8 / 1e6:g} Mbit/s tc tbf "
            "link before the runs (validation/linkcal.py)",
        )


def fits_from_rows(rows: list[dict[str, Any]], link_bytes_per_s: float) -> list[LinkFit]:
    """One fit per collective and world size of the benchmark rows."""
    out = []
    for coll in COLLECTIVES:
        for ws in sorted({int(r["world_size"]) for r in rows if r["collective"] == coll}):
            mine = [r for r in rows if r["collective"] == coll and int(r["world_size"]) == ws]
            # absolute error: the large messages carry a step's bytes (through a slow link
            # gloo's all-gather is not linear at small sizes, and a relative fit there
            # under-prices the 8 MiB gathers by a third)
            sizes, times = [r["bytes"] for r in mine], [r["median_s"] for r in mine]
            ab = fit_alpha_beta(sizes, times, relative=False)
            rows_kept = tuple({k: r[k] for k in ("bytes", "median_s", "noisy")} for r in mine)
            out.append(
                LinkFit(
                    link_bytes_per_s=link_bytes_per_s,
                    collective=coll,
                    world_size=ws,
                    alpha_s=ab.alpha_s,
                    beta_s_per_byte=ab.beta_s_per_byte,
                    rel_rms=ab.rel_rms,
                    rows=rows_kept,
                )
            )
    return out


def measure_link(
    net: Network, nranks: int, link_bytes_per_s: float, threads_per_rank: int = 1
) -> list[LinkFit]:
    """Run the collectives between `nranks` ranks placed as `net` places the runs' ranks."""
    cfg = GroupConfig(
        world_size=nranks,
        backend="gloo",
        device="cpu",
        collectives=COLLECTIVES,
        sizes=SIZES,
        repeats=REPEATS,
        threads_per_rank=threads_per_rank,
        timeout_s=TIMEOUT_S,
        prefixes=net.prefixes,
        ifname=net.ifname,
    )
    return fits_from_rows(run_collective_group(cfg), link_bytes_per_s)
