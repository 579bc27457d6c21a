"""The planner's malloc padding (`analysis.planner.heap`): set on glibc, harmless elsewhere."""

import platform

from analysis.closed_form import Options
from analysis.planner.heap import keep_freed_heap
from analysis.planner.search import evaluate_chunked
from analysis.planner.space import BatchPolicy, enumerate_layouts
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model


def test_padding_is_set_on_glibc():
    on_glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_heap() is on_glibc
    assert keep_freed_heap() is on_glibc  # once per process, same answer


def test_chunked_search_unchanged_by_chunking():
    model, hw = load_model("llama-2-7b"), load_profile("h100-sxm")
    lay = enumerate_layouts(model, 16, hw.node.gpus_per_node, 4096, BatchPolicy.default(4096))
    a = evaluate_chunked(model, hw, 4096, lay.layouts, "bf16", Options(), chunk=len(lay.layouts))
    b = evaluate_chunked(model, hw, 4096, lay.layouts, "bf16", Options(), chunk=1000)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes()
