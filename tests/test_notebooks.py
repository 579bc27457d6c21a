"""The notebooks: paired .py/.ipynb in sync, committed with their outputs (every code cell run,
figures included, so they read on GitHub), and each runs top to bottom with its figures drawn.

Each notebook runs in its own Jupyter kernel (nbclient) with the small parameters it ships
with; a failing cell fails the test with the cell's error. To refresh the committed outputs
after editing a `.py`: `jupytext --sync notebooks/NN_name.py` then
`jupyter nbconvert --to notebook --execute --inplace notebooks/NN_name.ipynb`.
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

    code = [c for c in paired.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), (
        f"{ipynb.name}: commit it executed (jupyter nbconvert --execute --inplace)"
    )
    assert _images(paired) == FIGURES[py.stem], f"{ipynb.name}: committed figures missing"


def _images(nb) -> int:
    return sum(
        "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )


def test_validation_notebook_reads_the_real_report():
    nb = nbformat.read(NOTEBOOKS / "04_validation.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "source: docs/validation/cpu/report.json" in text
    assert "EXAMPLE DATA" not in text


@pytest.mark.slow
@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_notebook_runs_and_draws_its_figures(py):
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    assert _images(nb) == FIGURES[py.stem]
