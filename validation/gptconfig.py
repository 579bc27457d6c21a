"""The validation GPT's configuration (no torch import: the planner CLI loads it).

`validation.gpt` holds the torch model built from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.inputs import read_json


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of the validation GPT (Hugging Face `config.json` names) and its batch."""

    name: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    vocab_size: int
    seq_len: int
    """Tokens per sequence; also the number of learned positions."""
    micro_batch_size: int = 1
    """Sequences per rank per step."""
    intermediate_size: int | None = None
    """MLP width; None = 4 * hidden_size (GPT-2)."""

    def __post_init__(self) -> None:
        for f in (
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "vocab_size",
            "seq_len",
            "micro_batch_size",
        ):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UserError(f"model.{f}: {v!r} must be a positive integer")
        ffn = self.intermediate_size
        if ffn is not None and (not isinstance(ffn, int) or ffn < 1):
            raise UserError(f"model.intermediate_size: {ffn!r} must be a positive integer")
        if self.hidden_size % self.num_attention_heads:
            raise UserError(
                f"model.hidden_size: {self.hidden_size} not divisible by "
                f"num_attention_heads = {self.num_attention_heads}"
            )

    @property
    def ffn_size(self) -> int:
        return self.intermediate_size or 4 * self.hidden_size

    def attention_shape(self) -> str:
        """Its SDPA call as `llmcap calibrate --attention-shape` takes it:
        BATCHxHEADSxSEQxHEAD_DIM."""
        heads = self.num_attention_heads
        return f"{self.micro_batch_size}x{heads}x{self.seq_len}x{self.hidden_size // heads}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, GPTConfig] = {
    # seconds per run on a 2-core CPU: the test suite's 2-rank gloo run
    "tiny": GPTConfig("tiny", 64, 2, 4, 512, 64, micro_batch_size=2),
    # ~5.3 M parameters (21 MB of fp32 gradients): compute and a 100-1000 Mbit/s link are of
    # the same order on one CPU core, so the comparison exercises both
    "small": GPTConfig("small", 256, 4, 4, 8192, 128, micro_batch_size=4),
    # GPT-2 small shape (Radford et al. 2019: 12 layers, 768 hidden, 12 heads), for one GPU
    "gpt2-small": GPTConfig("gpt2-small", 768, 12, 12, 50304, 1024, micro_batch_size=8),
}


def load_config(spec: str) -> GPTConfig:
    """A preset name, or a JSON file with `GPTConfig` fields (HF names; `seq_len` required).

    Unknown keys in the file are an error so that a typo does not silently change the model.
    """
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if not path.suffix == ".json":
        raise UserError(f"model: {spec!r} is not a preset ({', '.join(PRESETS)}) or a .json file")
    data = read_json(path, "model")
    if not isinstance(data, dict):
        raise UserError(f"model: {spec} must hold a JSON object")
    known = {f.name for f in fields(GPTConfig)}
    extra = sorted(set(data) - known)
    if extra:
        raise UserError(f"model: {spec}: unknown key(s) {extra}; known: {sorted(known)}")
    data.setdefault("name", path.stem)
    try:
        return GPTConfig(**data)
    except TypeError as exc:  # a missing required field
        raise UserError(f"model: {spec}: {exc}") from None


AUTO = "auto"
"""`llmcap validate --model auto` (the default): `small`, or `tiny` where bf16 would run on a
CPU without a 16-bit matrix unit (`auto_model`)."""


def auto_model(device: str, precisions: tuple[str, ...], flag: str | None) -> tuple[str, str]:
    """(preset, why) for `--model auto`; `flag`: the CPU's 16-bit matrix flag
    (`machine.cpu_16bit_matrix_flag`: "" none, None unknown).

    A `small` bf16 step on the AMD EPYC (Zen 3) VM, which has none, took seconds (its GEMMs
    in bf16 ran 10-80x slower than in fp32 depending on the operand layout, 2026-12-02/03),
    so the bf16 half of the matrix cannot run in minutes there; `tiny` bf16 took 29-57 ms a
    step (fp32 7-38 ms, load 0.7, 2026-12-03). Both precisions then train the same `tiny`
    model, so the bf16/fp32 time ratio compares like with like."""
    if device != "cpu" or "bf16" not in precisions or flag is None or flag:
        return "small", ""
    return "tiny", (
        "model tiny (auto): this CPU has no 16-bit matrix unit (none of amx_bf16, "
        "avx512_bf16, bf16 in /proc/cpuinfo), where a `small` bf16 step takes seconds; fp32 "
        "and bf16 both train `tiny`, so their time ratio compares like with like "
        "(--model small to insist)"
    )


if __name__ == "__main__":  # `python -m validation.gptconfig small`: the model's SDPA shape
    import sys

    print(load_config(sys.argv[1]).attention_shape())
