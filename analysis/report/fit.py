"""Tables that fit the terminal: numbers are never cut; columns are dropped by priority instead.

A `Col` says how important it is; `fit_table` measures the table at its natural width (every
cell on one line, text columns allowed to wrap at spaces) and drops the least important columns
until it fits `width` (the console's width: $COLUMNS, else the terminal, else 80). What was
dropped is returned, so the caller can say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table


@dataclass(frozen=True)
class Col:
    header: str
    justify: str = "right"
    priority: int = 0
    """Higher stays longer; the lowest goes first when the table is too wide."""
    wrap: bool = False
    """Text that may wrap at spaces (names); numbers never wrap."""


def _table(cols: Sequence[Col], rows: Sequence[Sequence[str]], keep: list[int], title: str):
    t = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        title=title or None,
        title_justify="left",
        show_edge=False,
    )
    for i in keep:
        c = cols[i]
        t.add_column(
            c.header,
            justify=c.justify,  # type: ignore[arg-type]
            no_wrap=not c.wrap,
            overflow="fold" if c.wrap else "ignore",
            min_width=_longest(c, rows, i),
        )
    for r in rows:
        t.add_row(*(r[i] for i in keep))
    return t


def _longest(c: Col, rows: Sequence[Sequence[str]], i: int) -> int:
    """The narrowest the column may get: its longest cell, or longest word when it wraps."""
    cells = c.header.split("\n") + [r[i] for r in rows]  # a header may take several lines
    if c.wrap:
        return max(len(w) for cell in cells for w in (cell.split() or [""]))
    return max(len(cell) for cell in cells)


def _min_width(t: Table, console: Console) -> int:
    wide = console.options.update_width(100_000)  # unclamped: the table's true minimum
    return Measurement.get(console, wide, t).minimum


def fit_table(
    cols: Sequence[Col],
    rows: Sequence[Sequence[str]],
    console: Console,
    title: str = "",
) -> tuple[Table, list[str]]:
    """(a table no wider than the console, headers of the columns dropped to get there)."""
    keep = list(range(len(cols)))
    dropped: list[str] = []
    while True:
        t = _table(cols, rows, keep, title)
        least = _min_width(t, console)
        if least <= console.width or len(keep) == 1:
            _settle(
                t,
                [cols[i] for i in keep],
                [[r[i] for i in keep] for r in rows],
                console.width - least,
            )
            return t, dropped
        worst = min(keep, key=lambda i: (cols[i].priority, -i))
        keep.remove(worst)
        dropped.append(cols[worst].header.replace("\n", " "))


def _settle(t: Table, cols: Sequence[Col], rows: Sequence[Sequence[str]], slack: int) -> None:
    """Fix every column's width: text columns share the `slack` up to their longest cell.

    Left to itself, Rich shrinks a table too wide for the terminal after wrapping its text, and
    then crops the wrapped lines (no ellipsis: characters just vanish). With the widths fixed
    here the table is never wider than the terminal and text wraps at its column's width."""
    for k, (c, col) in enumerate(zip(cols, t.columns, strict=True)):
        least = _longest(c, rows, k)
        if c.wrap:
            natural = max(len(x) for x in [*c.header.split("\n"), *(r[k] for r in rows)])
            extra = max(0, min(natural - least, slack))
            slack -= extra
            least += extra
        col.width = least


def fold_text(*tables: Table) -> None:
    """Let every column of `tables` wrap its text instead of cutting it with an ellipsis."""
    for t in tables:
        for col in t.columns:
            col.overflow = "fold"


def wrapped(text: str, indent: str = "") -> str:
    """`text` wrapped at the terminal width ($COLUMNS, else the terminal, else 80)."""
    import shutil
    import textwrap

    width = shutil.get_terminal_size((80, 24)).columns
    lead = text[: len(text) - len(text.lstrip())]
    return textwrap.fill(
        text.strip(),
        width=max(40, width),
        initial_indent=lead,
        subsequent_indent=lead + indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
