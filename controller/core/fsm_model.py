"""The object ``transitions`` keeps its state on: a plain Python model beside the controller.

``transitions`` binds its triggers (``press_start``, ``arrived``...), ``trigger``,
``may_<trigger>`` and ``is_<state>`` to its model with ``setattr`` and keeps the current state
in ``model.state``. The controller (``controller/core/machine.py``) does not lend itself to
that: it is the per-tick code, and with ``make fast`` (controller/core/fastload.py) it is a
compiled class with a fixed set of attributes, which refuses new ones. So the machine's model
is this small object: transitions binds its triggers here and sets the state through it on
the controller's plain ``_state`` attribute, and the controller fires triggers through it.

The transition table names its guards and ``before`` callbacks by string (the generated
diagram shows those names); ``transitions`` looks a string up on the model, so this model
forwards exactly those names to the controller, at the moment the guard is evaluated (a guard
that is a property is read then, never cached). Any other unknown name raises
``AttributeError`` as usual, which is also how ``transitions`` learns that a trigger's name is
free to bind.
"""

from __future__ import annotations

from typing import Any


class MachineModel:
    """``transitions``' model for one controller; never compiled (it must take new attributes)."""

    def __init__(self, owner: Any, forwarded: frozenset[str]) -> None:
        self._owner = owner
        self._forwarded = forwarded

    # The current state lives on the controller (``Controller._state``), which reads it every
    # tick as a plain attribute; transitions reads and sets it here.
    @property
    def state(self) -> Any:
        return self.__dict__["_owner"]._state

    @state.setter
    def state(self, value: Any) -> None:
        self.__dict__["_owner"]._state = value

    def __getattr__(self, name: str) -> Any:
        # Called only for names not found normally: the guards and callbacks named by string
        # (read through __dict__: copy and pickle probe attributes before __init__ ran).
        forwarded = self.__dict__.get("_forwarded", ())
        if name in forwarded:
            return getattr(self.__dict__["_owner"], name)
        raise AttributeError(name)
