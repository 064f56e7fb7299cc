"""Random sessions for a campaign, each a pure function of (seed, index).

Why a function of the pair and not one random stream: any session can be rebuilt alone
(``invtable campaign --seed S --index I``), in any process, in any order, on any machine of a
cluster, and give the same scenario. The stream is ``random.Random("campaign:S:I")``
(a string seed is hashed with SHA-512: stable across Python versions and platforms).

A session is a scenario dict (DESIGN section 6) drawn from everything a table meets: people
across the allowed range (the extremes often), valid configurations (upright, max angle,
speeds, time limits near their bounds), a program or a jog, presses, holds and mashes of
every button, the ankle lock flickering, e-stops pressed and released, power cuts, late
ticks (stalls), starts off upright, and up to ``max_faults`` catalogue faults active at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from controller.core.bounds import HEIGHT_CM, WEIGHT_KG
from controller.core.errors import InputError
from hal.interfaces import BUTTONS
from sim.faults import FAULTS
from sim.scenario import scenario_from_dict

TIMINGS = ("ideal", "realistic")
MAX_SESSION_S = 400.0  # no generated session is longer (the recovery may follow it)


@dataclass(frozen=True, slots=True)
class Options:
    """What a campaign draws from (the command line's choices)."""

    seed: int = 1
    backend: str = "sim"
    faults: tuple[str, ...] = tuple(f for f in FAULTS if f != "link_loss")
    max_faults: int = 2
    timing: str = "ideal"

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "backend": self.backend,
            "faults": list(self.faults),
            "max_faults": self.max_faults,
            "timing": self.timing,
        }


def default_faults(backend: str) -> tuple[str, ...]:
    """Every catalogue fault that exists on ``backend`` (``link_loss`` needs the serial link)."""
    return tuple(f for f in FAULTS if f != "link_loss" or backend == "serial")


def rng_for(seed: int, index: int) -> random.Random:
    return random.Random(f"campaign:{seed}:{index}")


def generate(options: Options, index: int) -> dict[str, Any]:
    """The session ``index`` of the campaign ``options.seed``: a valid scenario dict.

    A draw the validator refuses (a heavy user with a configuration the motor cannot lift, a
    rest angle above the target...) is drawn again from the same stream, so the result is
    still a function of (seed, index)."""
    rng = rng_for(options.seed, index)
    for _ in range(50):
        data = _draw(rng, options, index)
        try:
            scenario_from_dict(data, f"campaign {options.seed}:{index}")
        except InputError:
            continue
        return data
    raise RuntimeError(f"campaign {options.seed}:{index}: no valid session in 50 draws")


def _pick(rng: random.Random, lo: float, hi: float, edge: float = 0.2, nd: int = 1) -> float:
    """Uniform in lo..hi, or one of the bounds with probability ``edge`` (bounds find bugs)."""
    r = rng.random()
    if r < edge / 2:
        return lo
    if r < edge:
        return hi
    return round(rng.uniform(lo, hi), nd)


def _draw(rng: random.Random, options: Options, index: int) -> dict[str, Any]:
    user = {
        "mass_kg": _pick(rng, *WEIGHT_KG, edge=0.3),
        "height_cm": _pick(rng, *HEIGHT_CM, edge=0.3),
    }
    upright = -80.0 if rng.random() < 0.7 else _pick(rng, -90.0, -45.0, nd=0)
    max_angle = 60.0 if rng.random() < 0.6 else _pick(rng, upright + 10.0, 90.0, nd=0)
    speed = _pick(rng, 0.5, 10.0)
    accel = _pick(rng, 0.5, 20.0)
    motion: dict[str, Any] = {
        "max_speed_dps": speed,
        "max_accel_dps2": accel,
        "emergency_speed_dps": _pick(rng, speed, 15.0),
        "emergency_accel_dps2": _pick(rng, accel, 30.0),
    }
    if rng.random() < 0.3:
        motion["jog_max_s"] = _pick(rng, 1.0, 60.0, nd=0)
    target = _pick(rng, max(upright, -40.0), max_angle)
    rest_deg = round(rng.uniform(upright, min(0.0, target)), 1) if rng.random() < 0.5 else None
    max_duration = 300.0 if rng.random() < 0.5 else _pick(rng, 10.0, 600.0, nd=0)
    hold = _pick(rng, 0.0, min(60.0, max_duration), nd=0)
    rest_s = _pick(rng, 0.0, 30.0, nd=0)
    session: dict[str, Any] = {
        "target_deg": target,
        "hold_s": hold,
        "max_duration_s": max_duration,
        "rest_s": rest_s,
    }
    if rest_deg is not None and rest_deg <= target:
        session["rest_deg"] = rest_deg
    if rng.random() < 0.3:
        session["cooldown_s"] = _pick(rng, 0.0, 300.0, nd=0)
    config: dict[str, Any] = {"session": session, "motion": motion}
    if upright != -80.0 or max_angle != 60.0:
        config["limits"] = {"upright_deg": upright, "max_angle_deg": max_angle}

    # How long the program takes (a rough plan: travel at the speed, with margins).
    low_speed = max(speed, 0.5)
    travel = abs(target - upright) / low_speed
    program_s = 1.0 + 2 * travel + hold + rest_s + 15.0
    end = min(program_s, max_duration + travel) + 20.0

    scenario: dict[str, Any] = {
        "name": f"campaign {options.seed}:{index}",
        "duration_s": 0.0,
        "seed": rng.randrange(1 << 30),
    }
    if rng.random() < 0.1:  # a start anywhere: just off upright, mid-range, beyond the max
        scenario["start_angle_deg"] = round(rng.uniform(upright + 0.1, min(90.0, max_angle + 5)), 1)
    data: dict[str, Any] = {"scenario": scenario, "user": user, "config": config}

    events: list[dict[str, Any]] = []
    lock_at = 0.5 if rng.random() < 0.95 else round(rng.uniform(0.5, 10.0), 2)
    events.append({"at_s": lock_at, "do": "set", "input": "ankle_lock", "value": True})
    mode = rng.random()
    if mode < 0.6:
        events.append({"at_s": 1.0, "do": "tap", "input": "start"})
    elif mode < 0.8:
        steps = [
            [_pick(rng, upright, max_angle), _pick(rng, 0.0, 60.0, nd=0)]
            for _ in range(rng.randint(1, 3))
        ]
        data["program"] = {"steps": steps}
        program_s = 1.0 + sum(abs(s[0] - upright) / low_speed + s[1] for s in steps) + 30.0
        end = min(program_s + travel, max_duration + travel) + 20.0
        events.append({"at_s": 1.0, "do": "tap", "input": "start"})
    else:  # jog: hold DOWN, then hold UP
        down = _pick(rng, 1.0, 40.0)
        events.append({"at_s": 1.0, "do": "press", "input": "down"})
        events.append({"at_s": round(1.0 + down, 2), "do": "release", "input": "down"})
        up_at = round(1.0 + down + rng.uniform(0.5, 20.0), 2)
        events.append({"at_s": up_at, "do": "press", "input": "up"})
        events.append({"at_s": round(up_at + down * 1.5 + 5.0, 2), "do": "release", "input": "up"})
        end = up_at + down * 1.5 + 20.0
    end = round(min(max(end, 20.0), MAX_SESSION_S), 1)

    def when() -> float:
        return round(rng.uniform(1.0, end - 0.5), 2)

    for _ in range(rng.randint(0, 6)):
        kind = rng.random()
        at = when()
        if kind < 0.3:
            events.append({"at_s": at, "do": "tap", "input": rng.choice(BUTTONS)})
        elif kind < 0.5:
            button = rng.choice(BUTTONS)
            hold_s = rng.choice([0.03, 0.5, 2.0, 10.0, 30.0])
            events.append({"at_s": at, "do": "press", "input": button})
            events.append(
                {"at_s": round(min(at + hold_s, end), 2), "do": "release", "input": button}
            )
        elif kind < 0.6:  # all buttons at once
            for b in BUTTONS:
                events.append({"at_s": at, "do": "tap", "input": b})
        elif kind < 0.75:  # e-stop, released later (or not), then RETURN or held UP
            events.append({"at_s": at, "do": "set", "input": "estop", "value": True})
            if rng.random() < 0.85:
                off = round(min(at + rng.uniform(0.2, 20.0), end), 2)
                events.append({"at_s": off, "do": "set", "input": "estop", "value": False})
                if rng.random() < 0.5:
                    events.append({"at_s": min(off + 1.0, end), "do": "tap", "input": "return"})
        elif kind < 0.85:  # power cut and restore
            events.append({"at_s": at, "do": "power", "value": False})
            back = round(min(at + rng.choice([0.05, 0.5, 3.0, 30.0]), end), 2)
            events.append({"at_s": back, "do": "power", "value": True})
        elif kind < 0.93:  # ankle lock flicker
            events.append({"at_s": at, "do": "set", "input": "ankle_lock", "value": False})
            back = round(min(at + rng.choice([0.05, 0.3, 2.0]), end), 2)
            events.append({"at_s": back, "do": "set", "input": "ankle_lock", "value": True})
        else:  # a late tick
            events.append({"at_s": at, "do": "stall", "duration_s": _stall(rng, options)})

    if options.timing == "realistic":
        data["timing"] = {
            "tick_jitter_ms": round(rng.uniform(0.0, 5.0), 2),
            "current_lag_ticks": rng.randint(0, 3),
        }
        if options.backend == "serial":
            data["timing"]["board_clock"] = "own"
        for _ in range(rng.randint(1, 3)):
            events.append({"at_s": when(), "do": "stall", "duration_s": _stall(rng, options)})

    # Faults: at most max_faults, so at most that many active at once; some cleared later.
    if options.faults and options.max_faults:
        n = rng.randint(0, options.max_faults)
        for fault in rng.sample(list(options.faults), min(n, len(options.faults))):
            at = when()
            events.append({"at_s": at, "do": "fault", "fault": fault})
            if rng.random() < 0.3:
                clear = round(rng.uniform(at, end), 2)
                events.append({"at_s": clear, "do": "clear_fault", "fault": fault})

    events.sort(key=lambda e: e["at_s"])  # stable: same-time events keep their order
    scenario["duration_s"] = end
    data["events"] = events
    return data


def _stall(rng: random.Random, options: Options) -> float:
    """A late tick: mostly 5-200 ms (TESTING.md), sometimes past the dead-man's 100 ms."""
    return round(rng.choice([rng.uniform(0.005, 0.2), rng.uniform(0.2, 1.0)]), 3)


def faults_of(data: dict[str, Any]) -> list[str]:
    """The faults a session injects, in order, once each."""
    out: list[str] = []
    for ev in data.get("events", []):
        if ev["do"] == "fault" and ev["fault"] not in out:
            out.append(ev["fault"])
    return out
