"""Unit parsing and formatting at the edges (hwprofiles.units)."""

from __future__ import annotations

import pytest

from hwprofiles.units import (
    fmt_bytes,
    fmt_duration,
    fmt_flops,
    fmt_rate,
    parse_bandwidth,
    parse_bytes,
    parse_duration,
    parse_flops,
)


@pytest.mark.parametrize(
    ("text", "bytes_per_s"),
    [
        ("400Gb/s", 50e9),  # InfiniBand NDR: bits
        ("400 Gbps", 50e9),
        ("400 Gbit/s", 50e9),
        ("50GB/s", 50e9),  # bytes
        ("50 GBps", 50e9),
        ("1.2 TB/s", 1.2e12),
        ("100Mbit", 12.5e6),
        ("100 Mb/s", 12.5e6),
        ("25 GiB/s", 25 * 2**30),
        ("12.5e9", 12.5e9),
        (3.0e9, 3.0e9),
    ],
)
def test_parse_bandwidth(text, bytes_per_s: float) -> None:
    assert parse_bandwidth(text) == pytest.approx(bytes_per_s, rel=1e-12)


def test_bidirectional_figures_are_halved() -> None:
    assert parse_bandwidth("900 GB/s", bidirectional=True) == pytest.approx(450e9)  # NVLink4
    assert parse_bandwidth("1.8 TB/s", bidirectional=True) == pytest.approx(900e9)  # NVLink5


@pytest.mark.parametrize("bad", ["fast", "400 parsecs", "GB/s", "-5 GB/s", "", "1e999 GB/s"])
def test_parse_bandwidth_errors_name_value_and_forms(bad: str) -> None:
    with pytest.raises(ValueError, match=r"bandwidth: .*") as info:
        parse_bandwidth(bad)
    assert repr(bad) in str(info.value)


def test_parse_bandwidth_unknown_unit_lists_accepted_forms() -> None:
    with pytest.raises(ValueError, match=r"unknown unit 'parsecs'.*accepted: .*Gb/s"):
        parse_bandwidth("400 parsecs")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5us", 5e-6),
        ("5 µs", 5e-6),
        ("1.5 ms", 1.5e-3),
        ("2 s", 2.0),
        ("10ns", 1e-8),
        ("3 min", 180.0),
        ("1 h", 3600.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration(text, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_error() -> None:
    with pytest.raises(
        ValueError, match=r"duration: '5 fortnights' has unknown unit.*accepted: '5us'"
    ):
        parse_duration("5 fortnights")


@pytest.mark.parametrize(
    ("text", "flops"),
    [("312 TFLOPS", 312e12), ("312 TFLOP/s", 312e12), ("1.2 PFLOPS", 1.2e15), ("19.5e12", 19.5e12)],
)
def test_parse_flops(text: str, flops: float) -> None:
    assert parse_flops(text) == pytest.approx(flops)


def test_parse_flops_error() -> None:
    with pytest.raises(ValueError, match=r"flops: '312 TB/s' has unknown unit"):
        parse_flops("312 TB/s")


def test_parse_bytes_binary_and_decimal() -> None:
    assert parse_bytes("80 GiB") == 80 * 2**30
    assert parse_bytes("80GB") == 80e9
    with pytest.raises(ValueError, match="size: '80 GiBs'"):
        parse_bytes("80 GiBs")


def test_formatters() -> None:
    assert fmt_bytes(80 * 2**30) == "80.0 GiB"
    assert fmt_bytes(80e9, binary=False) == "80.0 GB"
    assert fmt_rate(450e9) == "450 GB/s"
    assert fmt_rate(50e9, bits=True) == "400 Gb/s"
    assert fmt_flops(989.5e12) == "990 TFLOP/s"
    assert fmt_duration(5e-6) == "5.00 us"
    assert fmt_duration(1.5e-3) == "1.50 ms"
    assert fmt_duration(5400) == "1.50 h"


@pytest.mark.parametrize("rate", ["400 Gb/s", "25 GB/s", "1.2 TB/s"])
def test_format_parse_round_trip(rate: str) -> None:
    value = parse_bandwidth(rate)
    assert parse_bandwidth(fmt_rate(value)) == pytest.approx(value, rel=5e-3)
