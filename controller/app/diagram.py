"""The state diagram, generated from the very states and transitions the controller uses.

``docs/state-machine.md`` embeds this output; a test fails when the two differ, so the
diagram can never drift from the code. transitions' mermaid engine needs no graphviz.
"""

from __future__ import annotations

from transitions.extensions import GraphMachine

from controller.core.machine import STATES, TRANSITIONS

DOC_HEADER = """# State machine

Generated from `controller/core/machine.py` by `invtable diagram --markdown`; a test fails when
this file is stale. Guards are shown in brackets. `estop` and `fault` are reachable from
every state (e-stop from all but `boot` and `fault`); see README "Behaviour" for the rules.

| state | meaning |
|---|---|
"""


class _Model:
    """A bare model: drawing never evaluates conditions."""


def _by_value(transition: dict) -> dict:
    """transitions names Enum states by member (``IDLE``); the diagram shows the values."""

    def plain(states: object) -> object:
        return [str(s) for s in states] if isinstance(states, list) else str(states)

    return {**transition, "source": plain(transition["source"]), "dest": plain(transition["dest"])}


def mermaid() -> str:
    machine = GraphMachine(
        model=_Model(),
        states=[str(s) for s, _ in STATES],
        transitions=[_by_value(t) for t in TRANSITIONS],
        initial="boot",
        auto_transitions=False,
        queued=True,
        graph_engine="mermaid",
        title="Inversion table controller",
        show_conditions=True,
    )
    text = machine.get_graph().draw(None)
    # Drop styling (it marks the "current" state, meaningless in a document).
    lines = [
        ln.rstrip()
        for ln in text.splitlines()
        if not ln.strip().startswith(("classDef ", "Class ", "class "))
    ]
    return "\n".join(ln for ln in lines if ln.strip() or False) + "\n"


def markdown() -> str:
    rows = "".join(f"| `{name}` | {desc} |\n" for name, desc in STATES)
    return DOC_HEADER + rows + "\n```mermaid\n" + mermaid() + "```\n"
