"""Render report blocks as one self-contained HTML page (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence

from analysis.report.content import Block

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 84rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.85rem; display: block;
        overflow-x: auto; max-width: 100%; }
td code { white-space: nowrap; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f2f2f2; }
code { background: #f6f6f6; padding: 0 0.2rem; }
figure { margin: 1rem 0; } figcaption { font-style: italic; font-size: 0.9rem; }
figure img { width: 100%; height: auto; display: block; }
"""


def inline(text: str) -> str:
    """Escape, then the two markdown marks the report uses: **bold** and `code`."""
    out = html.escape(str(text), quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{inline(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{inline(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(blocks: Sequence[Block], pngs: Mapping[str, bytes]) -> str:
    """A complete HTML document; nothing outside it is referenced."""
    title = next((b[2] for b in blocks if b[0] == "h" and b[1] == 1), "llmcap report")
    parts: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            parts.append(f"<h{b[1]}>{inline(b[2])}</h{b[1]}>")
        elif kind == "p":
            parts.append(f"<p>{inline(b[1])}</p>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "table":
            parts.append(_table(b[1], b[2]) if b[2] else "<p><em>(none)</em></p>")
        elif kind == "figure":
            png = pngs.get(b[1])
            if png is not None:
                data = base64.b64encode(png).decode("ascii")
                parts.append(
                    f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{inline(b[2])}.</figcaption></figure>"
                )
        else:  # pragma: no cover - a new block kind must be rendered here too
            raise ValueError(f"block: unknown kind {kind!r}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
