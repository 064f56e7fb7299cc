"""Shared helpers: run the real CLI as a subprocess, read traces, build scenarios."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import Phase, settings

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "sim" / "scenarios"

# CI runs a fixed, derandomized set of examples so a green build is reproducible. To search
# further, run with HYPOTHESIS_PROFILE=explore INVTABLE_EXAMPLE_SCALE=10 in the environment:
#   .venv/bin/python -m pytest tests/test_properties.py
# The "explain" phase line-traces every simulated tick after a failure: far too slow here.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True, phases=PHASES)
settings.register_profile("explore", deadline=None, max_examples=500, phases=PHASES)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
EXAMPLE_SCALE = float(os.environ.get("INVTABLE_EXAMPLE_SCALE", "1"))


def examples(n: int) -> int:
    """Per-test example counts, scaled for deeper searches: INVTABLE_EXAMPLE_SCALE=10."""
    return max(1, int(n * EXAMPLE_SCALE))


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 120) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-m", "controller", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def read_trace(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for key, value in r.items():
            if key not in ("state", "faults"):
                r[key] = float(value) if value != "" else None
    return rows


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    trace: list[dict]
    summary: dict


def run_scenario_cli(scenario: Path, tmp_path: Path, *extra: str) -> Run:
    trace, summary = tmp_path / "trace.csv", tmp_path / "summary.json"
    res = run_cli("sim", scenario, "--trace", trace, "--summary", summary, *extra)
    assert "Traceback" not in res.stderr, res.stderr
    assert trace.exists() and summary.exists(), res.stderr
    return Run(res.code, res.stdout, res.stderr, read_trace(trace), json.loads(summary.read_text()))


def write_scenario(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def scenario_dir() -> Path:
    return SCENARIOS
