"""Digests of every example scenario's trace and summary: proof that a change kept behaviour.

``python -m sim.trace_digests [--backend sim|gpio-mock|serial] [--check FILE]`` runs each
``sim/scenarios/**/*.toml`` as ``invtable sim --trace --summary`` does (streamed trace, the
summary JSON) and prints one line per scenario: the SHA-256 of the trace CSV bytes and of the
summary JSON bytes. Save the output before a change (a speed-up, a refactor) and run it with
``--check`` after: any scenario whose bytes differ is listed and the exit code is 1.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path
from typing import Collection

from controller.core.config import read_toml
from sim.runner import run_scenario, write_summary
from sim.scenario import scenario_from_dict

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def digests(backend: str, only: Collection[str] | None = None) -> dict[str, str]:
    """{scenario name: digests}; ``only``: just these names (relative to the folder)."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(SCENARIOS.rglob("*.toml")):
            if only is not None and str(path.relative_to(SCENARIOS)) not in only:
                continue
            trace, summary = Path(tmp) / "trace.csv", Path(tmp) / "summary.json"
            # The source named relative to the folder: the summary (which names it) is then
            # the same bytes from any checkout, so two trees can be compared.
            name = str(path.relative_to(SCENARIOS))
            scenario = scenario_from_dict(read_toml(path), name)
            result = run_scenario(scenario, backend=backend, keep_rows=False, trace=trace)
            write_summary(result, summary)
            out[name] = (
                hashlib.sha256(trace.read_bytes()).hexdigest()[:16]
                + " "
                + hashlib.sha256(summary.read_bytes()).hexdigest()[:16]
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.trace_digests", description=__doc__)
    ap.add_argument("--backend", choices=("sim", "gpio-mock", "serial"), default="sim")
    ap.add_argument(
        "--check", type=Path, help="compare with a saved output; exit 1 on a difference"
    )
    args = ap.parse_args(argv)
    got = digests(args.backend)
    lines = [f"{name} {digest}" for name, digest in got.items()]
    if args.check is None:
        print("\n".join(lines))
        return 0
    saved = dict(line.split(" ", 1) for line in args.check.read_text().splitlines() if line)
    differ = [n for n in sorted(set(saved) | set(got)) if saved.get(n) != got.get(n)]
    for name in differ:
        print(f"DIFFERS: {name}: {saved.get(name)} -> {got.get(name)}")
    print(f"{len(got)} scenarios on {args.backend}: {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
