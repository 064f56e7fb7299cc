"""The ``invtable`` commands, one module per command group.

Each module's ``register(subparsers)`` adds its command(s), their options with help, and
the handler each runs (``set_defaults(handler=...)``): a command's name is written once.
``GROUPS`` is the order ``invtable --help`` lists them in. Helpers the commands share
(exit codes, refusing bad input, the report after a run, the store) are in ``common``.
"""

from __future__ import annotations

from controller.app.commands import (
    bench,
    campaign,
    config,
    diagram,
    install,
    io,
    program,
    records,
    run,
    simulate,
    user,
)

GROUPS = (simulate, run, io, install, user, program, records, bench, campaign, config, diagram)
