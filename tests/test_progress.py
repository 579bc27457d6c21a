"""Progress on long steps: a Rich bar at a terminal, sparse plain lines elsewhere."""

from __future__ import annotations

import io

import analysis.cli.progress as prog
from analysis.cli.progress import StepProgress


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_off_a_terminal_short_steps_print_nothing_long_ones_a_line_now_and_then(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(prog.time, "monotonic", clock)
    out = io.StringIO()
    with StepProgress("plan", True, out) as p:
        p.stage("searching layouts")
        p.update(10, 100)
        clock.t += 1
        p.update(20, 100)
        assert out.getvalue() == ""  # quick: nothing
        clock.t += prog.QUIET_S
        p.update(50, 100)
        clock.t += 1
        p.update(60, 100)  # too soon after the last line
    lines = out.getvalue().splitlines()
    assert lines == ["llmcap plan: searching layouts (50 of 100, 6 s)"]


def test_disabled_prints_nothing(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(prog.time, "monotonic", clock)
    out = io.StringIO()
    with StepProgress("plan", False, out) as p:
        p.stage("x")
        clock.t += 100
        p.update(1, 2)
    assert out.getvalue() == ""


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_at_a_terminal_a_bar_is_drawn_and_cleared():
    out = Tty()
    with StepProgress("plan", True, out) as p:
        assert p.tty
        p.stage("searching layouts")
        p.update(5, 10)
    assert "searching layouts" in out.getvalue()
