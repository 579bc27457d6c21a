"""The planner's malloc padding (`analysis.planner.heap`): set on glibc, harmless elsewhere."""

import platform
from pathlib import Path

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


def test_the_library_leaves_malloc_alone_and_the_chunk_follows_the_heap(monkeypatch):
    """Only the `llmcap` command keeps the heap (`analysis.cli.main.main`); the planner's
    default chunk follows whether this process keeps it."""
    import analysis.planner.heap as heap
    import analysis.planner.search as search
    from analysis.cli import main

    assert "keep_freed_heap" not in search.__dict__  # the search does not call it
    assert "keep_freed_heap()" in Path(main.__file__).read_text()
    seen = []
    monkeypatch.setattr(search, "chunk_bounds", lambda n, c: seen.append(c) or [(0, n)])
    model, hw = load_model("llama-2-7b"), load_profile("h100-sxm")
    lay = enumerate_layouts(model, 16, hw.node.gpus_per_node, 4096, BatchPolicy.default(4096))
    for kept in (False, True):
        monkeypatch.setattr(heap, "_kept", kept)
        monkeypatch.delenv("MALLOC_TOP_PAD_", raising=False)
        evaluate_chunked(model, hw, 4096, lay.layouts, "bf16", Options())
    assert seen == [search.CHUNK, search.CHUNK_HEAP_KEPT]
