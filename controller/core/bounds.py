"""Bounds on what a person, a profile or a file may ask of the table, defined once for the
app (profiles, programs) and the simulator (scenarios), which both import the core.

The config keys' own bounds live with the schema in ``controller.core.config``.
"""

from __future__ import annotations

import math
from typing import TypeGuard

# The people the table is built for (DESIGN section 2: up to 136 kg, 147-198 cm tall).
HEIGHT_CM = (147.0, 198.0)
WEIGHT_KG = (40.0, 136.0)

# Steps in one session program (a program file's or a scenario's ``[program] steps``).
MAX_PROGRAM_STEPS = 100


def finite_number(value: object) -> TypeGuard[float]:
    """A number from a file that may be used as one: an int or float, not a bool (TOML's
    ``true`` is no angle), and finite (``nan`` and ``inf`` pass no range check honestly)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
