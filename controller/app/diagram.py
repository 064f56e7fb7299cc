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


def mermaid() -> str:
    machine = GraphMachine(
        model=_Model(),
        states=[s for s, _ in STATES],
        transitions=TRANSITIONS,
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
