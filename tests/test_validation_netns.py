"""Rate-limited links through network namespaces (needs root; skipped cleanly without).

Checks that the namespaces and `tc tbf` shapers exist while in use, that nothing is left
afterwards (also after an exception), and that a 2-rank run really crosses the slow link.
"""

import os
import subprocess

import pytest

from validation.gptconfig import PRESETS
from validation.mapping import model_spec
from validation.netns import IFNAME, RateLimitedLinks, leftovers, namespaces
from validation.spec import RunSpec
from validation.suite import run_one

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        os.geteuid() != 0 or subprocess.run(["which", "tc"], capture_output=True).returncode,
        reason="needs root and iproute2 (ip, tc) for network namespaces",
    ),
]


def _tag(request) -> str:
    return f"llmcaptest{os.getpid() % 10000}{request.node.name[-2:]}"


def test_links_exist_while_used_and_vanish_after(request):
    tag = _tag(request)
    links = RateLimitedLinks(2, 25e6, tag=tag)
    with links as net:
        assert {*links.ranks, links.hub} <= set(namespaces())
        qdisc = subprocess.run(
            ["tc", "-n", links.ranks[1], "qdisc", "show", "dev", IFNAME],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "tbf" in qdisc and "200Mbit" in qdisc
        port = subprocess.run(
            ["tc", "-n", links.hub, "qdisc", "show", "dev", "p1"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "tbf" in port
        assert net.master_addr == "10.213.0.1" and net.prefix(1)[-1] == links.ranks[1]
        bound = subprocess.run(
            [
                *net.prefix(0),
                "python3",
                "-c",
                "import socket; s=socket.socket(); s.settimeout(2); s.bind(('10.213.0.1', 0))",
            ],
            capture_output=True,
        )
        assert bound.returncode == 0  # rank 0's address lives in rank 0's namespace
    assert leftovers(tag) == []
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert IFNAME not in host_links and "lcbr" not in host_links  # nothing on the host


def test_links_removed_when_the_body_fails(request):
    tag = _tag(request)
    with pytest.raises(KeyboardInterrupt), RateLimitedLinks(2, 25e6, tag=tag):
        assert leftovers(tag)
        raise KeyboardInterrupt  # as Ctrl-C would
    assert leftovers(tag) == []


def test_two_ranks_cross_the_slow_link(tmp_path):
    """At 20 Mbit/s the tiny model's 0.55 MB gradient all-reduce takes ~0.2 s; the exposed
    communication (sync minus no_sync step) must be at least half the wire time."""
    rate = 2.5e6  # bytes/s = 20 Mbit/s
    spec = RunSpec(
        PRESETS["tiny"], "ddp", "fp32", 2, steps=2, warmup=1, comm_pairs=2, link_bytes_per_s=rate
    )
    out = run_one(spec, tmp_path, hang_timeout_s=60)
    assert out.ok, out.failure
    grads = 4 * model_spec(PRESETS["tiny"]).num_params()
    wire_s = grads / rate  # ring all-reduce over 2 ranks sends and receives one copy each way
    res = out.results[0]
    exposed = min(res["pair_sync_s"]) - max(res["pair_nosync_s"])
    assert exposed > 0.5 * wire_s
    assert leftovers(f"llmcap{os.getpid()}") == []


def test_collectives_are_measured_through_the_link(request):
    from validation.linkcal import measure_link
    from validation.mapping import TCP_PAYLOAD_PER_FRAME

    rate = 125e6  # 1 Gbit/s: a few seconds
    with RateLimitedLinks(2, rate, tag=_tag(request)) as net:
        fits = measure_link(net, 2, rate)
    got = {f.collective: f for f in fits}
    assert set(got) == {"all_reduce", "all_gather"}
    ar = got["all_reduce"]
    # a 2-rank all-reduce moves its buffer once per rank: beta = 1 / (payload rate), and the
    # link cannot be beaten (a run through loopback would be 10x faster)
    payload = rate * TCP_PAYLOAD_PER_FRAME
    assert 0.6 * payload < 1 / ar.beta_s_per_byte < 1.1 * payload
    assert all(len(f.rows) == 3 and f.world_size == 2 for f in fits)
    assert not leftovers(_tag(request))
