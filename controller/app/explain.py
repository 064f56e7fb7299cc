"""The why after a verdict: the events of a run sorted into what a bench tester looks for.

A run that passed with a latched ``sensor_disagree`` must not read like a clean one, and a
refused START must say which interlock refused it. The summary JSON already holds every
event (``summary["events"]``); this turns them into short tagged lines for people.
"""

from __future__ import annotations

from typing import Any

MAX_LINES = 40  # a long run (late ticks, many presses) lists its first events, then a count


def tag(message: str) -> str:
    """What kind of event a controller or simulator message is, for the eye."""
    if message.startswith("fault:"):
        return "FAULT"
    if message.startswith("refused") or message.startswith("sessions refused"):
        return "REFUSED"
    if "not applicable" in message:
        return "N/A"
    if message.startswith(("injected fault", "cleared fault", "stall:", "dead-man")):
        return "SIM"
    if message.startswith("e-stop"):
        return "E-STOP"
    return "note"


def event_lines(summary: dict[str, Any], limit: int = MAX_LINES) -> list[str]:
    """One line per event: time, tag, message; the first ``limit`` only, then a count."""
    events = summary.get("events") or []
    out = [f"    t={e['t_s']:8.2f} s  {tag(e['message']):<7} {e['message']}" for e in events]
    if len(out) > limit:
        out = out[:limit] + [f"    ... and {len(out) - limit} more (--json lists them all)"]
    return out


def headline(summary: dict[str, Any]) -> list[str]:
    """The few lines that explain the verdict: faults latched (code and time), refusals,
    notes that something did not apply, and the first violation with its trace time."""
    events = summary.get("events") or []
    out = []
    faults = [e for e in events if tag(e["message"]) == "FAULT"]
    for e in faults:
        code = e["message"][len("fault:") :].strip().split(":", 1)[0]
        out.append(f"  fault latched: {code} at t={e['t_s']:.2f} s")
    refusals = [e for e in events if tag(e["message"]) == "REFUSED"]
    if refusals:
        out.append(
            f"  {len(refusals)} refusal(s), first at t={refusals[0]['t_s']:.2f} s: "
            f"{refusals[0]['message']}"
        )
    estops = [e for e in events if tag(e["message"]) == "E-STOP"]
    if estops:
        out.append(
            f"  e-stop latched at t={estops[0]['t_s']:.2f} s"
            + (f" ({len(estops)} times)" if len(estops) > 1 else "")
        )
    for e in events:
        if tag(e["message"]) == "N/A":
            out.append(f"  not applicable: {e['message']}")
    violations = summary.get("violations") or []
    if violations:
        out.append(f"  first violation: {violations[0]}")
    if "ended_upright" in summary and not summary["ended_upright"]:
        out.append(
            f"  NOT UPRIGHT at the end: {summary['final_angle_deg']:.1f} deg in "
            f"{summary['final_state']}"
        )
    if not faults and not refusals and not estops and summary.get("ended_upright", True):
        if summary.get("passed"):
            out.append("  clean: no fault latched, nothing refused, no e-stop, ended upright")
    return out
