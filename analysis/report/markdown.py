"""Render report blocks (`analysis.report.content`) as GitHub-flavoured markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analysis.report.content import Block


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A pipe table; `|` inside cells is escaped."""
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render(blocks: Sequence[Block], figure_paths: Mapping[str, str]) -> str:
    """Markdown text; figures link to `figure_paths[name]` (relative paths)."""
    parts: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            parts.append("#" * b[1] + " " + b[2])
        elif kind == "p":
            parts.append(b[1])
        elif kind == "list":
            parts.append("\n".join(f"- {item}" for item in b[1]))
        elif kind == "table":
            parts.append(table(b[1], b[2]) if b[2] else "_(none)_")
        elif kind == "figure":
            path = figure_paths.get(b[1])
            if path is not None:
                parts.append(f"![{b[2]}]({path})\n\n*{b[2]}.*")
        else:  # pragma: no cover - a new block kind must be rendered here too
            raise ValueError(f"block: unknown kind {kind!r}")
    return "\n\n".join(parts) + "\n"
