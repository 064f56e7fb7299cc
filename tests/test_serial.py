"""The serial backend: hal.serial over a real pseudo-terminal to the virtual motion board
(the firmware on the machine shim), driven in lockstep with a simulated clock."""
from __future__ import annotations

import pytest
import serial

from controller.config import Config
from controller.profile import trapezoid_time
from firmware import protocol as P
from hal.interfaces import Outputs
from hal.serial.backend import LINK_TIMEOUT_S, PINGS_UNANSWERED, PING_EVERY, SerialTable
from sim.runner import run_scenario
from sim.scenario import scenario_from_dict
from sim.serial_world import SerialMockHal, VirtualBoard, Wire
from sim.timing import IDEAL, Timing
from sim.table import SimTable

HOLDING = Outputs(motor_cmd=0.0, brake=True, alarm=False, heartbeat=False, motor_power=True)


class Rig:
    """One table, one board on a wire, one host; ``tick`` is one lockstep 10 ms, exactly as
    the runner ticks the serial backend."""

    def __init__(self, opener=None, timing: Timing = IDEAL, cfg: Config | None = None) -> None:  # noqa: ANN001
        self.t = 0.0
        self.table = SimTable(angle_deg=-80.0, upright_deg=-80.0)
        self.table.ankle_lock_closed = True
        self.wire = Wire()
        self.cfg = cfg or Config()
        self.board = VirtualBoard(self.table, self.cfg, self.wire, 0.0, timing=timing)
        self.mock = SerialMockHal(self.board, self.wire, lambda: self.t, opener=opener)
        self.host = self.mock.hal

    def tick(self, out: Outputs = HOLDING):  # noqa: ANN201
        self.board.before(self.t)
        inputs = self.mock.read()
        self.mock.write(out)
        self.board.after(self.t)
        self.table.advance(0.01)
        self.t += 0.01
        return inputs

    def close(self) -> None:
        self.mock.close()
        self.wire.close()


@pytest.fixture
def rig():  # noqa: ANN201
    r = Rig()
    yield r
    r.close()


def test_handshake_then_telemetry_becomes_inputs(rig: Rig) -> None:
    inp = rig.tick()
    assert rig.host.board_info is not None and rig.host.board_info[0] == P.PROTO_VERSION
    assert inp.link_ok and not inp.drive_inhibited
    assert inp.angle_primary_deg == pytest.approx(-80.0, abs=0.1) and inp.upright_switch
    assert not inp.estop_pressed and inp.ankle_locked


def test_a_cut_link_is_seen_after_its_timeout(rig: Rig) -> None:
    for _ in range(5):
        assert rig.tick().link_ok
    rig.board.link_cut = True
    states = [rig.tick().link_ok for _ in range(int(LINK_TIMEOUT_S / 0.01) + 3)]
    assert states[0] and not states[-1]
    # Lost by the first of: three pings unanswered (one per 0.1 s) or no telemetry for 0.3 s.
    assert 0.2 <= states.index(False) * 0.01 <= LINK_TIMEOUT_S + 0.011


def test_unanswered_pings_are_a_link_fault_even_with_telemetry(rig: Rig) -> None:
    real = rig.board.board.on_frame

    def deaf_to_pings(seq, mtype, payload, now):  # noqa: ANN001, ANN202
        return [] if mtype == P.PING else real(seq, mtype, payload, now)

    rig.board.board.on_frame = deaf_to_pings
    results = [rig.tick().link_ok for _ in range(PING_EVERY * (PINGS_UNANSWERED + 1) + 2)]
    assert results[1] and not results[-1]


def test_a_port_that_fails_to_open_is_retried_with_a_new_handshake() -> None:
    calls = {"n": 0}

    def flaky(url, **kw):  # noqa: ANN001, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 1:
            raise serial.SerialException("device not ready")
        return serial.serial_for_url(url, **kw)

    r = Rig(opener=flaky)
    try:
        assert not r.tick().link_ok and r.host.last_error.startswith("SerialException")
        for _ in range(120):  # 1.2 s: the host reopens after 1 s and says HELLO again
            inp = r.tick()
        assert calls["n"] == 2 and r.host.board_info is not None and inp.link_ok
    finally:
        r.close()


def test_no_board_on_the_line_reads_as_unsafe_and_never_raises() -> None:
    host = SerialTable("loop://", blocking_handshake=True)  # echoes our own frames: no HELLO_ACK
    try:
        inp = host.read()
        assert not inp.link_ok and inp.estop_pressed and inp.angle_primary_deg is None
        host.write(HOLDING)
    finally:
        host.close()


@pytest.mark.parametrize("fault,at_s,mass", [("link_loss", 45.0, 136.0), ("controller_hang", 45.0, 136.0),
                                             ("link_loss", 20.0, 80.0), ("controller_hang", 20.0, 50.0)])
def test_the_board_alone_brings_the_user_upright_in_time(fault: str, at_s: float, mass: float) -> None:
    """Acceptance: within the board's dead-man period plus 1.2x the ideal emergency return."""
    height = {136.0: 198.0, 80.0: 178.0, 50.0: 147.0}[mass]
    data = {"scenario": {"name": fault, "duration_s": at_s + 30.0, "seed": 2},
            "user": {"mass_kg": mass, "height_cm": height},
            "config": {"session": {"target_deg": 60.0, "hold_s": 20.0}},
            "events": [{"at_s": 0.5, "do": "set", "input": "ankle_lock", "value": True},
                       {"at_s": 1.0, "do": "tap", "input": "start"},
                       {"at_s": at_s, "do": "fault", "fault": fault}]}
    scenario = scenario_from_dict(data, "acceptance")
    result = run_scenario(scenario, backend="serial")
    assert result.violations == [], result.violations
    start = next(r for r in result.rows if r[0] >= at_s)
    upright = next(r[0] for r in result.rows if r[0] >= at_s and r[2] <= -80.0 + 0.5)
    m = scenario.config.motion
    ideal = trapezoid_time(start[2] + 80.0, m.emergency_speed_dps, m.emergency_accel_dps2)
    deadman = 0.3
    assert upright - at_s <= deadman + 1.2 * ideal, (upright - at_s, ideal)
    assert max(abs(r[3]) for r in result.rows if r[0] >= at_s) <= m.emergency_speed_dps
    assert result.summary["ended_upright"]
