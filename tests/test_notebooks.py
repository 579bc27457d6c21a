"""The notebooks: paired .py/.ipynb in sync, and each runs top to bottom with its figures drawn.

Each notebook runs in its own Jupyter kernel (nbclient) with the small parameters it ships
with; a failing cell fails the test with the cell's error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
jupytext = pytest.importorskip("jupytext")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PAIRS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
FIGURES = {  # notebook -> figures it must draw
    "01_scaling_whatif": 1,
    "02_hardware_purchasing": 3,
    "03_mixed_precision": 1,
    "04_validation": 1,
    "05_sweep": 1,
}


def test_every_notebook_is_listed():
    assert {p.stem for p in PAIRS} == set(FIGURES)


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_ipynb_matches_its_py_percent_text(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"run: jupytext --sync {py.name}"
    text = jupytext.read(py)
    paired = nbformat.read(ipynb, as_version=4)
    src = [(c.cell_type, c.source) for c in text.cells]
    assert src == [(c.cell_type, c.source) for c in paired.cells], (
        f"{ipynb.name} is out of date: run jupytext --sync {py.name}"
    )
    assert not any(c.get("outputs") for c in paired.cells), "commit notebooks without outputs"


@pytest.mark.slow
@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_notebook_runs_and_draws_its_figures(py):
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(images) == FIGURES[py.stem]
