"""`llmcap models [NAME] [--json]`: the model presets, or one preset with its sources."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from analysis.cli.common import echo_json, run_guarded


def _rows() -> list[dict[str, Any]]:
    from simulator.models_catalogue import list_models, load_model, pretraining_seq_len

    out = []
    for name in list_models():
        m = load_model(name)
        out.append(
            {
                "name": name,
                "params": m.num_params(),
                "layers": m.num_hidden_layers,
                "hidden_size": m.hidden_size,
                "heads": m.num_attention_heads,
                "kv_heads": m.kv_heads,
                "context": m.max_position_embeddings,
                "pretrain_seq_len": pretraining_seq_len(m)[0],
            }
        )
    return out


def _params(n: float) -> str:
    return f"{n / 1e12:.2f}T" if n >= 1e12 else f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def register(app: typer.Typer) -> None:
    """Register `llmcap models`."""

    @app.command()
    def models(
        name: Annotated[
            str | None,
            typer.Argument(
                help="A preset: show every field and its source \\[default: list them all]"
            ),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
    ) -> None:
        """List the model presets (size, shape, context, pre-training sequence length)."""
        from rich import box
        from rich.console import Console
        from rich.table import Table

        con = Console()
        if name is not None:
            from simulator.models_catalogue import load_model, model_info, pretraining_seq_len

            info = run_guarded(lambda: model_info(name))
            seq, why = pretraining_seq_len(load_model(name))
            info |= {"pretrain_seq_len": seq, "pretrain_seq_len_source": why}
            if json_out:
                echo_json(info)
                return
            t = Table(title=info["name"], title_justify="left", show_header=False)
            t.add_column("field")
            t.add_column("value", overflow="fold")
            for k, v in info.items():
                if k != "name" and v is not None:
                    t.add_row(k, _params(v) if k == "num_params" else str(v))
            con.print(t)
            return
        rows = _rows()
        if json_out:
            echo_json(rows)
            return
        t = Table(box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        t.title = "model presets (--model NAME); seq = default --seq-len"
        heads = ("name", "params", "layers", "hidden", "heads", "kv", "context", "seq")
        for h in heads:
            t.add_column(h, justify="left" if h == "name" else "right", no_wrap=True)
        for r in rows:
            t.add_row(
                r["name"],
                _params(r["params"]),
                str(r["layers"]),
                str(r["hidden_size"]),
                str(r["heads"]),
                str(r["kv_heads"]),
                f"{r['context']:,}",
                f"{r['pretrain_seq_len']:,}",
            )
        con.print(t)
