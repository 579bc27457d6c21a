"""`llmcap stacks`: the training stacks `--stack` selects and what each turns on."""

from __future__ import annotations

from typing import Annotated

import typer

from analysis.cli.common import echo_json, run_guarded


def register(app: typer.Typer) -> None:
    """Register `llmcap stacks`."""

    @app.command()
    def stacks(
        name: Annotated[
            str | None,
            typer.Argument(help="One stack: its settings and sources \\[default: list them all]"),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
    ) -> None:
        """Training stacks (framework generations) and the mechanisms each turns on."""

        def go():
            from simulator.stacks import DEFAULT_STACK, load_stack, stack_names

            names = [name] if name else stack_names()
            return DEFAULT_STACK, [load_stack(n) for n in names]

        default, found = run_guarded(go)
        if json_out:
            echo_json(
                {
                    "default": default,
                    "stacks": [
                        {
                            "name": s.name,
                            "summary": s.summary,
                            "settings": {
                                k: {"value": v, "source": s.sources[k]}
                                for k, v in s.settings.items()
                            },
                            "info": {
                                k: {"value": v, "source": src} for k, (v, src) in s.info.items()
                            },
                        }
                        for s in found
                    ],
                }
            )
            return
        from analysis.report.fit import wrapped

        for s in found:
            mark = " (default)" if s.name == default else ""
            typer.echo(wrapped(f"{s.name}{mark}: {s.summary}", "  "))
            for k, v in s.settings.items():
                line = f"    {k} = {v!r}"
                typer.echo(wrapped(line + (f"  [{s.sources[k]}]" if name else ""), "  "))
            for k, (v, src) in s.info.items():
                typer.echo(wrapped(f"    [info] {k}: {v}" + (f"  [{src}]" if name else ""), "  "))
