"""Unit parsing and formatting at the edges: strings in, SI out (and back, for renderers).

Inside llmcap every quantity is SI: bytes, bytes/s **per direction**, seconds, FLOP/s. These
helpers are the only place where "400 Gb/s", "1.5 ms" or "312 TFLOPS" are understood.

Conventions:
- ``b`` is a bit and ``B`` a byte (``400 Gb/s`` = 50e9 B/s, ``50 GB/s`` = 50e9 B/s);
  ``bps``/``bit/s`` are bits per second, ``Bps`` bytes per second.
- Prefixes k, M, G, T, P are decimal (1e3 ...); Ki, Mi, Gi, Ti, Pi are binary (2**10 ...).
- A bandwidth is per direction unless the caller says the figure is bidirectional (a datasheet's
  "900 GB/s NVLink" is both directions: ``parse_bandwidth("900 GB/s", bidirectional=True)``).
"""

from __future__ import annotations

import math
import re

from hwprofiles.errors import UserError

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_PREFIX = r"(Ki|Mi|Gi|Ti|Pi|[kKMGTPE]?)"

_BANDWIDTH_FORMS = "'400 Gb/s', '400Gbps', '50 GB/s', '1.2 TB/s', '100 Mbit/s', '25 GiB/s'"
_DURATION_FORMS = "'5us', '5 µs', '1.5 ms', '2 s', '10 ns', '3 min', '1 h'"
_FLOPS_FORMS = "'312 TFLOPS', '312 TFLOP/s', '1.2 PFLOPS', '19.5e12'"
_BYTES_FORMS = "'80 GiB', '80GB', '512 MiB', '1.5e9'"


def _split(text: str | float, what: str, forms: str) -> tuple[float, str]:
    """Split "<number><spaces><unit>" into (number, unit); a bare number has unit ""."""
    if isinstance(text, bool):
        raise UserError(f"{what}: {text!r} is not a {what} (accepted: {forms})")
    if isinstance(text, (int, float)):
        return float(text), ""
    m = re.fullmatch(rf"\s*{_NUMBER}\s*(.*?)\s*", str(text))
    if not m:
        raise UserError(f"{what}: {text!r} is not a {what} (accepted: {forms})")
    return float(m.group(1)), m.group(2)


def _scale(prefix: str) -> float:
    return _BINARY[prefix] if prefix in _BINARY else _DECIMAL[prefix]


def _checked(value: float, text: object, what: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{what}: {text!r} must be a finite, non-negative amount")
    return value


def parse_bandwidth(text: str | float, *, bidirectional: bool = False) -> float:
    """Bytes/s **per direction** from a string such as ``"400 Gb/s"`` or ``"1.2 TB/s"``.

    A bare number is bytes/s. With ``bidirectional=True`` the figure is a both-directions total
    (as NVLink datasheets quote it) and is halved.
    """
    value, unit = _split(text, "bandwidth", _BANDWIDTH_FORMS)
    if unit:
        m = re.fullmatch(rf"{_PREFIX}(B|b|bit|bits|Byte|Bytes|byte|bytes)(?:/s|ps|/sec)?", unit)
        if not m:
            raise UserError(
                f"bandwidth: {text!r} has unknown unit {unit!r} "
                f"(accepted: {_BANDWIDTH_FORMS}; b = bits, B = bytes)"
            )
        prefix, base = m.group(1), m.group(2)
        per_byte = 1.0 if base in ("B", "Byte", "Bytes", "byte", "bytes") else 1.0 / 8.0
        value = value * _scale(prefix) * per_byte
    value = _checked(value, text, "bandwidth")
    return value / 2.0 if bidirectional else value


_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "usec": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "": 1.0,
}


def parse_duration(text: str | float) -> float:
    """Seconds from ``"5us"``, ``"1.5 ms"``, ``"2 s"``, ...; a bare number is seconds."""
    value, unit = _split(text, "duration", _DURATION_FORMS)
    if unit not in _SECONDS:
        raise UserError(
            f"duration: {text!r} has unknown unit {unit!r} (accepted: {_DURATION_FORMS})"
        )
    return _checked(value * _SECONDS[unit], text, "duration")


def parse_flops(text: str | float) -> float:
    """FLOP/s from ``"312 TFLOPS"``, ``"312 TFLOP/s"`` or a bare number (FLOP/s)."""
    value, unit = _split(text, "flops", _FLOPS_FORMS)
    if unit:
        m = re.fullmatch(r"([kKMGTPE]?)(?:FLOPS|FLOP/s|flops|flop/s|FLOPs/s)", unit)
        if not m:
            raise UserError(f"flops: {text!r} has unknown unit {unit!r} (accepted: {_FLOPS_FORMS})")
        value *= _DECIMAL[m.group(1)]
    return _checked(value, text, "flops")


def parse_bytes(text: str | float) -> float:
    """Bytes from ``"80 GiB"`` (binary), ``"80 GB"`` (decimal) or a bare number of bytes."""
    value, unit = _split(text, "size", _BYTES_FORMS)
    if unit:
        m = re.fullmatch(rf"{_PREFIX}(B|bytes?)", unit)
        if not m:
            raise UserError(f"size: {text!r} has unknown unit {unit!r} (accepted: {_BYTES_FORMS})")
        value *= _scale(m.group(1))
    return _checked(value, text, "size")


def _pick(value: float, steps: tuple[tuple[float, str], ...]) -> tuple[float, str]:
    for scale, name in steps:
        if abs(value) >= scale:
            return value / scale, name
    return value / steps[-1][0], steps[-1][1]


def _num(x: float) -> str:
    """Three significant digits, no scientific notation for the usual ranges."""
    if x == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"{x:.{digits}f}"


def fmt_bytes(n: float, *, binary: bool = True) -> str:
    """``85899345920`` -> ``"80.0 GiB"`` (or decimal ``"85.9 GB"`` with ``binary=False``)."""
    if binary:
        steps = tuple(
            (2.0**e, u)
            for e, u in ((50, "PiB"), (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB"))
        )
    else:
        steps = tuple(
            (10.0**e, u) for e, u in ((15, "PB"), (12, "TB"), (9, "GB"), (6, "MB"), (3, "kB"))
        )
    value, unit = _pick(n, (*steps, (1.0, "B")))
    return f"{_num(value)} {unit}"


def fmt_rate(bytes_per_s: float, *, bits: bool = False) -> str:
    """``450e9`` -> ``"450 GB/s"``; with ``bits=True`` ``50e9`` -> ``"400 Gb/s"`` (decimal)."""
    n, suffix = (bytes_per_s * 8.0, "b/s") if bits else (bytes_per_s, "B/s")
    steps = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
    value, prefix = _pick(n, steps)
    return f"{_num(value)} {prefix}{suffix}"


def fmt_flops(flops_per_s: float) -> str:
    """``989.5e12`` -> ``"990 TFLOP/s"``."""
    steps = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1.0, ""))
    value, prefix = _pick(flops_per_s, steps)
    return f"{_num(value)} {prefix}FLOP/s"


def fmt_duration(seconds: float) -> str:
    """``5e-6`` -> ``"5.00 us"``; ``5400`` -> ``"1.50 h"``."""
    s = abs(seconds)
    if s >= 3600:
        return f"{_num(seconds / 3600)} h"
    if s >= 60:
        return f"{_num(seconds / 60)} min"
    steps = ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns"))
    value, unit = _pick(seconds, steps)
    return f"{_num(value)} {unit}"
