"""bench/dns_checks.py keeps working (it asserts no name is queried twice)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "dns_checks.py"


async def test_bench_runs_and_prints_figures(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_dns_checks", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert await bench.main() == 0
    out = capsys.readouterr().out
    for label in (
        "wall time:",
        "queries issued:",
        "distinct names:",
        "sum of latencies:",
        "no (name, type) queried twice",
    ):
        assert label in out
