"""Splice a generated validation report into docs/validation.md between named markers.

    python -m validation.docs docs/validation.md cpu docs/validation/cpu/report.md

replaces the text between ``<!-- BEGIN generated:cpu -->`` and ``<!-- END generated:cpu -->``
(or appends a new block at the end), so the hand-written parts of the page survive every
regeneration and each machine's results (``cpu``, ``gpu-2025-06-01``, ...) keep their place.
"""

from __future__ import annotations

import sys
from pathlib import Path

from analysis.cli.common import write_atomic


def markers(name: str) -> tuple[str, str]:
    if not name or any(c in name for c in "<>\n"):
        raise ValueError(f"block name: {name!r} must be non-empty without '<', '>' or newlines")
    return f"<!-- BEGIN generated:{name} -->", f"<!-- END generated:{name} -->"


def splice(page: str, name: str, content: str) -> str:
    """`page` with block `name` holding `content` (replaced in place, or appended)."""
    begin, end = markers(name)
    block = f"{begin}\n{content.rstrip()}\n{end}"
    i, j = page.find(begin), page.find(end)
    if i >= 0 and j > i:
        return page[:i] + block + page[j + len(end) :]
    if i >= 0 or j >= 0:
        raise ValueError(f"{name}: unbalanced generated-block markers in the page")
    return page.rstrip() + "\n\n" + block + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m validation.docs PAGE.md NAME REPORT.md", file=sys.stderr)
        return 2
    page, name, report = Path(args[0]), args[1], Path(args[2])
    text = page.read_text() if page.exists() else ""
    write_atomic(page, splice(text, name, report.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
