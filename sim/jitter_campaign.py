"""Real time is not lockstep (issue 12): the jitter campaign and the fault matrix under a
realistic ``[timing]``.

``python -m sim.jitter_campaign --runs N --seed S`` runs N randomized sessions on the
``sim`` backend (users 40-136 kg / 147-198 cm, random targets, holds, rests and speeds,
1-3 stalls of 5-200 ms at random moments, tick jitter up to 5 ms, current lag up to 3
ticks) and reports the false faults (the goal is 0); then the same N sessions again with
one catalogue fault injected at a random moment each, and how long each took to be
detected (the goal: every one caught). ``--matrix`` prints the fault matrix (every fault
in every phase of tests/test_fault_matrix.py) with the detection time under ideal and
under realistic timing. Everything is seeded: the same arguments give the same figures.

One process on purpose (the machine is shared); the figures are in docs/performance.md.
``--backend serial`` (with ``board_clock = "own"``) is the hook for the serial campaign
once the serial world accepts ``timing=`` (engineer h2's change).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

from sim.faults import FAULTS
from sim.runner import RunResult, run_scenario
from sim.scenario import scenario_from_dict

# Faults a detector is expected to catch. motor_weak may be coped with (slow, undetected);
# controller_hang stops the loop itself (the service watchdog restarts it); link_loss is
# serial only: those three are reported apart, not counted as missed.
NOT_DETECTOR_FAULTS = ("motor_weak", "controller_hang", "link_loss")
DETECTABLE = tuple(f for f in FAULTS if f not in NOT_DETECTOR_FAULTS)

# The realistic timing the fault matrix runs under: jitter, current lag, and stalls placed
# at bad moments (just before the return-phase injection, during the ramp and the hold).
REALISTIC_TIMING = {"tick_jitter_ms": 3.0, "current_lag_ticks": 3}
REALISTIC_STALLS = ((8.0, 0.05), (30.0, 0.15), (44.95, 0.03), (60.0, 0.02), (84.9, 0.1))

# The fault matrix's session and phases (tests/test_fault_matrix.py).
MATRIX_PHASES = {"ramp": 10.0, "hold": 45.0, "return": 85.0, "highest": 39.5}


def first_detection(result: RunResult, since: float) -> tuple[float, str] | None:
    """(time, code) of the first fault latched at or after ``since`` (from the summary's events)."""
    for ev in result.summary["events"]:
        if ev["t_s"] >= since - 1e-9 and ev["message"].startswith("fault:"):
            return ev["t_s"], ev["message"].split(":")[1].strip()
    return None


def matrix_cell(fault: str, phase: str, timed: bool, backend: str = "sim") -> RunResult:
    """One cell of the fault matrix (136 kg / 198 cm user, target 60), optionally under the
    realistic timing with its stalls."""
    data: dict[str, Any] = {
        "scenario": {
            "name": f"{fault} during {phase}{' (timed)' if timed else ''}",
            "duration_s": 260.0,
            "seed": 1,
        },
        "user": {"mass_kg": 136.0, "height_cm": 198.0},
        "config": {"session": {"target_deg": 60.0, "hold_s": 20.0, "rest_s": 5.0, "rest_deg": 0.0}},
        "events": [
            {"at_s": 0.5, "do": "set", "input": "ankle_lock", "value": True},
            {"at_s": 1.0, "do": "tap", "input": "start"},
            {"at_s": MATRIX_PHASES[phase], "do": "fault", "fault": fault},
        ],
    }
    if timed:
        data["timing"] = dict(REALISTIC_TIMING)
        data["events"] += [
            {"at_s": at, "do": "stall", "duration_s": d} for at, d in REALISTIC_STALLS
        ]
    return run_scenario(scenario_from_dict(data, "matrix"), backend=backend)


def matrix_table() -> list[dict[str, Any]]:
    rows = []
    for fault in FAULTS:
        for phase, at in MATRIX_PHASES.items():
            cell: dict[str, Any] = {"fault": fault, "phase": phase}
            for timed in (False, True):
                res = matrix_cell(fault, phase, timed)
                det = first_detection(res, at)
                key = "timed" if timed else "ideal"
                cell[key] = None if det is None else round(det[0] - at, 3)
                cell[key + "_code"] = None if det is None else det[1]
                cell[key + "_final"] = res.summary["final_state"]
                cell[key + "_violations"] = res.violations
                if fault == "controller_hang":
                    hung = [t for t in res.summary["transitions"] if t["to"] == "hung"]
                    cell[key + "_code"] = "hung (dead-man)" if hung else None
            rows.append(cell)
            violations = cell["timed_violations"]
            print(
                f"{fault:24s} {phase:8s} "
                f"ideal {_ms(cell['ideal'])} {cell['ideal_code'] or '-':22s} "
                f"timed {_ms(cell['timed'])} {cell['timed_code'] or '-':22s} {cell['timed_final']}"
                f"{' VIOLATIONS ' + str(violations) if violations else ''}",
                flush=True,
            )
    return rows


def _ms(t: float | None) -> str:
    return "   -    " if t is None else f"{t * 1000:6.0f}ms"


@dataclass(frozen=True, slots=True)
class Session:
    """One randomized session of the campaign (everything the scenario needs)."""

    data: dict[str, Any]
    start_s: float
    session_end_s: float


def random_session(rng: random.Random, index: int, backend: str = "sim") -> Session:
    mass = round(rng.uniform(40.0, 136.0), 1)
    height = round(rng.uniform(147.0, 198.0), 1)
    speed = round(rng.uniform(2.0, 6.0), 1)
    target = round(rng.uniform(-40.0, 60.0), 1)
    hold = round(rng.uniform(5.0, 40.0), 1)
    rest_deg = round(rng.uniform(min(-20.0, target), min(0.0, target)), 1)
    rest = round(rng.uniform(0.0, 15.0), 1)
    travel = (target + 80.0) / speed
    session_end = (
        1.0
        + travel
        + 3.0
        + hold
        + (target - rest_deg) / speed
        + 3.0
        + rest
        + (rest_deg + 80.0) / speed
        + 3.0
    )
    duration = round(min(session_end * 1.15 + 10.0, 600.0), 1)
    timing: dict[str, float | str] = {
        "tick_jitter_ms": round(rng.uniform(0.0, 5.0), 2),
        "current_lag_ticks": rng.randint(0, 3),
    }
    if backend == "serial":
        timing["board_clock"] = "own"
    events: list[dict[str, Any]] = [
        {"at_s": 0.5, "do": "set", "input": "ankle_lock", "value": True},
        {"at_s": 1.0, "do": "tap", "input": "start"},
    ]
    for _ in range(rng.randint(1, 3)):
        events.append(
            {
                "at_s": round(rng.uniform(1.0, session_end), 3),
                "do": "stall",
                "duration_s": round(rng.uniform(0.005, 0.2), 3),
            }
        )
    data = {
        "scenario": {
            "name": f"jitter campaign {index}",
            "duration_s": duration,
            "seed": rng.randrange(1 << 30),
        },
        "user": {"mass_kg": mass, "height_cm": height},
        "config": {
            "motion": {"max_speed_dps": speed},
            "session": {"target_deg": target, "hold_s": hold, "rest_deg": rest_deg, "rest_s": rest},
        },
        "timing": timing,
        "events": events,
    }
    return Session(data, 1.0, session_end)


def _clean_run(s: Session, i: int, backend: str) -> dict[str, Any] | None:
    """One clean session; None when clean, else what went wrong (and whether it also goes
    wrong without timing: a finding the timing did not cause)."""
    res = run_scenario(scenario_from_dict(s.data, f"campaign[{i}]"), backend=backend)
    det = first_detection(res, 0.0)
    if (
        det is None
        and not res.violations
        and res.summary["final_state"] == "idle"
        and res.summary["ended_upright"]
    ):
        return None
    ideal = json.loads(json.dumps(s.data))
    ideal.pop("timing")
    ideal["events"] = [e for e in ideal["events"] if e["do"] != "stall"]
    ires = run_scenario(scenario_from_dict(ideal, f"campaign[{i}] ideal"), backend=backend)
    also_ideal = bool(
        first_detection(ires, 0.0) or ires.violations or ires.summary["final_state"] != "idle"
    )
    print(
        f"run {i}: NOT CLEAN {det} {res.violations} final {res.summary['final_state']}"
        f"{' (also without timing)' if also_ideal else ' (only with timing)'}",
        flush=True,
    )
    return {
        "index": i,
        "detection": det,
        "violations": res.violations,
        "final_state": res.summary["final_state"],
        "also_without_timing": also_ideal,
        "scenario": s.data,
    }


def _fault_run(
    s: Session, i: int, backend: str, frng: random.Random
) -> tuple[str, float, RunResult]:
    """The same session with one detectable fault (round robin) at a random moment of it."""
    fault = DETECTABLE[i % len(DETECTABLE)]
    at = round(frng.uniform(s.start_s + 2.0, max(s.start_s + 2.5, s.session_end_s - 10.0)), 3)
    data = json.loads(json.dumps(s.data))
    # A brake fault is latent until the brake must hold (the hold, the rest, upright): those
    # runs go to the end of the session; the others stop 45 s after the fault.
    end = data["scenario"]["duration_s"] if fault.startswith("brake") else at + 45.0
    data["scenario"]["duration_s"] = round(min(max(end, at + 45.0), 600.0), 1)
    data["events"] = [e for e in data["events"] if e["at_s"] <= data["scenario"]["duration_s"]]
    data["events"].append({"at_s": at, "do": "fault", "fault": fault})
    return (
        fault,
        at,
        run_scenario(scenario_from_dict(data, f"campaign-fault[{i}]"), backend=backend),
    )


def campaign(
    runs: int, seed: int, backend: str = "sim", faults: bool = True, out_path: str | None = None
) -> dict[str, Any]:
    """The jitter campaign: each of ``runs`` sessions once clean (false faults) and, with
    ``faults``, once with one detectable fault (detection times). Interleaved, with the
    figures so far written every 50 sessions, so a run cut short still reports its rate."""
    rng = random.Random(seed)
    sessions = [random_session(rng, i, backend) for i in range(runs)]
    frng = random.Random(seed + 1)
    t0 = time.perf_counter()
    not_clean: list[dict[str, Any]] = []
    times: dict[str, list[float]] = {f: [] for f in DETECTABLE}
    missed: list[dict[str, Any]] = []
    violations: list[dict[str, Any]] = []
    simulated = 0.0
    out: dict[str, Any] = {}
    for i, s in enumerate(sessions):
        simulated += s.data["scenario"]["duration_s"]
        bad = _clean_run(s, i, backend)
        if bad is not None:
            not_clean.append(bad)
        if faults:
            fault, at, res = _fault_run(s, i, backend, frng)
            det = first_detection(res, at)
            if res.violations:
                violations.append(
                    {"index": i, "fault": fault, "at_s": at, "violations": res.violations}
                )
            if det is None:
                missed.append(
                    {
                        "index": i,
                        "fault": fault,
                        "at_s": at,
                        "final_state": res.summary["final_state"],
                    }
                )
                print(
                    f"run {i}: {fault} at {at} NOT CAUGHT (final {res.summary['final_state']})",
                    flush=True,
                )
            else:
                times[fault].append(det[0] - at)
        done = i + 1
        if done % 50 == 0 or done == runs:
            out = {
                "runs": runs,
                "done": done,
                "seed": seed,
                "backend": backend,
                "wall_s": round(time.perf_counter() - t0, 1),
                "clean_simulated_s": round(simulated, 1),
                "not_clean": len(not_clean),
                "not_clean_only_with_timing": sum(
                    1 for f in not_clean if not f["also_without_timing"]
                ),
                "false_faults": sum(1 for f in not_clean if f["detection"] is not None),
                "not_clean_runs": not_clean,
                "fault_runs": done if faults else 0,
                "missed": missed,
                "fault_run_violations": violations,
                "detection_s": {
                    f: {
                        "n": len(v),
                        "median": round(sorted(v)[len(v) // 2], 3) if v else None,
                        "max": round(max(v), 3) if v else None,
                    }
                    for f, v in times.items()
                },
            }
            print(
                f"{done}/{runs} sessions: {out['not_clean']} not clean "
                f"({out['not_clean_only_with_timing']} only with timing), "
                f"{out['false_faults']} false faults; faulted: {len(missed)} missed; "
                f"{out['wall_s']:.0f} s",
                flush=True,
            )
            if out_path:
                with open(out_path, "w") as fh:
                    json.dump(out, fh, indent=1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m sim.jitter_campaign", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--backend", choices=("sim", "gpio-mock", "serial"), default="sim")
    ap.add_argument(
        "--no-faults", action="store_true", help="only the clean sessions (false faults)"
    )
    ap.add_argument(
        "--matrix", action="store_true", help="the fault matrix, ideal vs realistic timing"
    )
    ap.add_argument("--out", help="write the JSON result here")
    args = ap.parse_args(argv)
    if args.runs < 1:
        print("--runs: must be >= 1", file=sys.stderr)
        return 2
    if args.matrix:
        rows = matrix_table()
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(rows, fh, indent=1)
        return 0
    result = campaign(args.runs, args.seed, args.backend, not args.no_faults, args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "not_clean_runs"}, indent=1))
    return 0 if not result["false_faults"] and not result["missed"] else 1


if __name__ == "__main__":
    sys.exit(main())
