"""A host that finds the serial motion board returning the user on its own (a host restarted
during the board's return, issue 18): the monitor judges that motion against the board's
emergency profile and its direction, not against the host's own setpoint and speed limit
(a restarted host read the board's 8.4 deg/s as its own `runaway`)."""

from __future__ import annotations

from controller.core.config import Config
from controller.core.monitor import Detection, SafetyMonitor, Snapshot
from controller.core.states import State
from hal.interfaces import Inputs

UP = Config().limits.upright_deg
HOST_LIMIT_DPS = 4.0  # the host's own return profile (its runaway bound: 4 + 4 deg/s)


def watch(speed_dps: float, board_returning: bool, start: float = 40.0) -> Detection | None:
    """Two seconds of a table moving at ``speed_dps`` from ``start``, the host's setpoint
    waiting on the table (as the controller keeps it while the board returns)."""
    mon = SafetyMonitor(Config())
    angle = start
    for i in range(200):
        t = i * 0.01
        snap = Snapshot(t, State.RETURNING, True, angle, HOST_LIMIT_DPS, 0.3, angle, None, True, UP)
        inp = Inputs(
            angle,
            angle,
            False,
            False,
            False,
            True,
            frozenset(),
            5.0,
            drive_inhibited=board_returning,
            board_returning=board_returning,
        )
        det = mon.check(snap, inp, 0.01)
        if det is not None:
            return det
        angle += speed_dps * 0.01
    return None


def test_the_boards_own_return_is_not_the_hosts_runaway() -> None:
    # 8.5 deg/s toward upright: over the host's own bound, within the board's profile.
    assert watch(-8.5, board_returning=False) is not None  # the host's own drive: a runaway
    assert watch(-8.5, board_returning=True) is None


def test_the_boards_return_is_still_judged() -> None:
    too_fast = watch(-13.0, board_returning=True)  # over the emergency speed + 4 deg/s
    assert too_fast is not None and too_fast.code == "runaway", too_fast
    away = watch(5.0, board_returning=True)  # away from upright: not a return at all
    assert away is not None and away.code == "runaway" and "away from upright" in away.reason
