"""`llmcap validate` (registered on the llmcap app through the `llmcap.commands` entry point)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Register `llmcap validate` on the app."""
