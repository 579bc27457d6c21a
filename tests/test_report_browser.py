"""The HTML plan report in a real headless browser: it renders, figures included.

Skipped cleanly when no Chromium is installed (`apt-get install -y chromium`). The same check
by hand (docs/planner.md): `chromium --headless --no-sandbox --screenshot=report.png
--window-size=1280,6000 file://$PWD/plan/report.html`.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from matplotlib import image as mpimg

from analysis.planner import PlanRequest, plan
from analysis.report import write_reports
from hwprofiles.catalogue import load_prices, load_profile
from simulator.models_catalogue import load_model

BROWSER = next(
    (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
)


def screenshot(html, png, width=1280, height=5000) -> np.ndarray:
    """Render `html` headless and return the screenshot as an RGB(A) float array."""
    cmd = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--screenshot={png}",
        html.resolve().as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return mpimg.imread(png)


@pytest.mark.skipif(BROWSER is None, reason="no chromium: apt-get install -y chromium")
@pytest.mark.slow
def test_html_report_renders_with_its_figures(tmp_path):
    req = PlanRequest(
        model=load_model("llama-3-8b"),
        tokens=2e11,
        hardware=(load_profile("h100-sxm"), load_profile("mi300x")),
        gpus=(8, 16, 32),
        precisions=("bf16",),
        deadline_s=60 * 86400.0,
        recheck=0,
    )
    write_reports(plan(req, load_prices()), tmp_path / "plan")
    img = screenshot(tmp_path / "plan" / "report.html", tmp_path / "shot.png")
    rgb = img[..., :3]
    assert rgb.shape[1] == 1280
    # text is black on white; the figures add saturated colour (blue, orange, green markers)
    saturation = rgb.max(axis=2) - rgb.min(axis=2)
    coloured = (saturation > 0.35).mean()
    assert coloured > 0.003, f"only {coloured:.4%} coloured pixels: figures did not render"
    # the page is not blank and its text starts at the top
    assert (rgb[:200].mean(axis=2) < 0.5).any()
