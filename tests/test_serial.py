"""The serial backend: hal.serial over a real pseudo-terminal to the virtual motion board
(the firmware on the machine shim), driven in lockstep with a simulated clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import serial

from controller.core.config import Config
from controller.core.profile import trapezoid_time
from firmware import protocol as P
from hal.interfaces import Inputs, Outputs
from hal.serial.backend import LINK_TIMEOUT_S, PING_EVERY, PINGS_UNANSWERED, SerialTable
from sim.runner import run_scenario
from sim.scenario import scenario_from_dict
from sim.serial_world import SerialMockHal, VirtualBoard, Wire
from sim.table import SimTable
from sim.timing import IDEAL, Timing

HOLDING = Outputs(motor_cmd=0.0, brake=True, alarm=False, heartbeat=False, motor_power=True)


class Rig:
    """One table, one board on a wire, one host; ``tick`` is one lockstep 10 ms, exactly as
    the runner ticks the serial backend."""

    def __init__(
        self,
        opener: Callable[..., Any] | None = None,
        timing: Timing = IDEAL,
        cfg: Config | None = None,
        board_limits: dict | None = None,
    ) -> None:
        self.t = 0.0
        self.table = SimTable(angle_deg=-80.0, upright_deg=-80.0)
        self.table.ankle_lock_closed = True
        self.wire = Wire()
        self.cfg = cfg or Config()
        self.board = VirtualBoard(self.table, self.cfg, self.wire, 0.0, timing=timing)
        for key, value in (board_limits or {}).items():  # a board flashed with other limits
            setattr(self.board.board.lim, key, value)
        self.mock = SerialMockHal(self.board, self.wire, lambda: self.t, opener=opener)
        self.host = self.mock.hal

    def tick(self, out: Outputs = HOLDING) -> Inputs:
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
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.close()


def test_handshake_then_telemetry_becomes_inputs(rig: Rig) -> None:
    inp = rig.tick()
    assert rig.host.board_info is not None and rig.host.board_info.proto == P.PROTO_VERSION
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
    real = rig.board.board.handle  # the board's loop hands every frame to handle()

    def deaf_to_pings(seq: int, mtype: int, payload: bytes, n: int, now: int) -> None:
        if mtype != P.PING:
            real(seq, mtype, payload, n, now)

    rig.board.board.handle = deaf_to_pings
    results = [rig.tick().link_ok for _ in range(PING_EVERY * (PINGS_UNANSWERED + 1) + 2)]
    assert results[1] and not results[-1]


def test_a_port_that_fails_to_open_is_retried_with_a_new_handshake() -> None:
    calls = {"n": 0}

    def flaky(url: str, **kw: Any) -> serial.SerialBase:
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


@pytest.mark.parametrize(
    "fault,at_s,mass",
    [
        ("link_loss", 45.0, 136.0),
        ("controller_hang", 45.0, 136.0),
        ("link_loss", 20.0, 80.0),
        ("controller_hang", 20.0, 50.0),
    ],
)
def test_the_board_alone_brings_the_user_upright_in_time(
    fault: str, at_s: float, mass: float
) -> None:
    """Acceptance: within the board's dead-man period plus 1.2x the ideal emergency return."""
    height = {136.0: 198.0, 80.0: 178.0, 50.0: 147.0}[mass]
    data = {
        "scenario": {"name": fault, "duration_s": at_s + 30.0, "seed": 2},
        "user": {"mass_kg": mass, "height_cm": height},
        "config": {"session": {"target_deg": 60.0, "hold_s": 20.0}},
        "events": [
            {"at_s": 0.5, "do": "set", "input": "ankle_lock", "value": True},
            {"at_s": 1.0, "do": "tap", "input": "start"},
            {"at_s": at_s, "do": "fault", "fault": fault},
        ],
    }
    scenario = scenario_from_dict(data, "acceptance")
    result = run_scenario(scenario, backend="serial")
    assert result.violations == [], result.violations
    start = next(r for r in result.rows if r.t_s >= at_s)
    upright = next(r.t_s for r in result.rows if r.t_s >= at_s and r.angle_deg <= -80.0 + 0.5)
    m = scenario.config.motion
    ideal = trapezoid_time(start[2] + 80.0, m.emergency_speed_dps, m.emergency_accel_dps2)
    deadman = 0.3
    assert upright - at_s <= deadman + 1.2 * ideal, (upright - at_s, ideal)
    assert max(abs(r.velocity_dps) for r in result.rows if r.t_s >= at_s) <= m.emergency_speed_dps
    assert result.summary["ended_upright"]


# ---------------------------------------------------------------- protocol v2, host side
def status_payload(nonce: int, primary_cdeg: int, bits: int) -> bytes:
    return P.pack_s(0, P.STATUS, nonce, 1, primary_cdeg, primary_cdeg, 0, bits, P.ST_HOST, 0, 0, 0)[
        4:-2
    ]


def test_the_host_refuses_a_board_whose_limits_differ_from_its_config() -> None:
    cfg = Config()
    r = Rig(cfg=cfg, board_limits={"max_angle_deg": 90.0})
    try:
        driving = Outputs(motor_cmd=0.3, brake=False, alarm=False, heartbeat=True, motor_power=True)
        results = [r.tick(driving) for _ in range(30)]
        assert not any(i.link_ok for i in results)
        assert "max_angle_deg 90.00 on the board, 60.00 in the config" in r.host.refused
        b = r.board.board
        assert (
            b.state == P.ST_WAIT and b.cmd_duty == 0.0 and r.table.outputs.motor_cmd == 0.0
        )  # never commanded
    finally:
        r.close()


def test_the_host_refuses_a_board_of_another_protocol_version() -> None:
    host = SerialTable("loop://", blocking_handshake=False, nonce_source=lambda: 0x1234)
    try:
        lim = (P.PROTO_VERSION + 1, 2, 0, -8000, 9000, 800, 800, 300, 200, 1, 99)
        host.frames.put((1, P.HELLO_ACK, P.pack_s(1, P.HELLO_ACK, 0x1234, *lim)[4:-2]))
        inp = host.read()
        assert (
            not inp.link_ok
            and f"protocol version {P.PROTO_VERSION + 1} on the board" in host.refused
        )
        host.write(HOLDING)
        assert host._tx_seq == 1  # the HELLO was the only frame: nothing commands a refused board
    finally:
        host.close()


def test_a_far_ahead_status_is_dropped_and_does_not_keep_the_link_alive(rig: Rig) -> None:
    """Issue 12: a forged STATUS far ahead (33 deg, ankle unlocked) was reported for 47 ticks
    with the link healthy. Now it is never used, and never refreshes the link."""
    for _ in range(5):
        assert rig.tick().link_ok
    fake = status_payload(rig.host._nonce, 3300, P.IN_ANKLE_A_CLOSED)
    rig.host.frames.put(((rig.host._rx_seq + 100) & 0xFF, P.STATUS, fake))
    inp = rig.tick()
    assert (
        inp.link_ok and inp.angle_primary_deg == pytest.approx(-80.0, abs=0.1) and inp.ankle_locked
    )
    for _ in range(20):  # the real frames after it are still accepted
        assert rig.tick().link_ok
    rig.board.link_cut = True
    ok = []
    for _ in range(40):  # only forged frames arrive now: the link must go stale
        rig.host.frames.put(((rig.host._rx_seq + 100) & 0xFF, P.STATUS, fake))
        inp = rig.tick()
        ok.append(inp.link_ok)
        assert inp.angle_primary_deg == pytest.approx(-80.0, abs=0.1)
    assert not ok[-1] and ok.index(False) * 0.01 <= LINK_TIMEOUT_S + 0.011


def test_frames_of_another_session_are_dropped(rig: Rig) -> None:
    for _ in range(3):
        rig.tick()
    old = status_payload((rig.host._nonce + 1) & 0xFFFF, 3300, 0)
    rig.host.frames.put(((rig.host._rx_seq + 1) & 0xFF, P.STATUS, old))
    inp = rig.tick()
    assert inp.link_ok and inp.angle_primary_deg == pytest.approx(-80.0, abs=0.1)


def test_the_host_greets_a_board_that_reset_and_goes_on() -> None:
    r = Rig()
    try:
        driving = Outputs(motor_cmd=0.0, brake=True, alarm=False, heartbeat=True, motor_power=True)
        for _ in range(10):
            assert r.tick(driving).link_ok
        first_boot = r.host.boot_id
        r.board = VirtualBoard(
            r.table, r.cfg, r.wire, r.t
        )  # the board resets (watchdog, brown-out)
        r.mock.board = r.board
        ok = [r.tick(driving).link_ok for _ in range(30)]
        assert ok[-1] and all(ok[10:])
        assert r.host.board_resets == 1 and r.host.boot_id != first_boot
        assert r.board.board.state == P.ST_HOST  # following the host again
    finally:
        r.close()


class SlowOnce:
    """A pyserial port whose n-th write times out once (a slow USB-serial adapter)."""

    def __init__(self, port: serial.SerialBase, at: int) -> None:
        self.port, self.at, self.n = port, at, 0

    def write(self, data: bytes) -> int:
        self.n += 1
        if self.n == self.at:
            raise serial.SerialTimeoutException("Write timeout")
        return self.port.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.port, name)


def test_one_slow_write_is_a_late_tick_not_a_lost_link() -> None:
    r = Rig(opener=lambda url, **kw: SlowOnce(serial.serial_for_url(url, **kw), at=20))
    try:
        ok = [r.tick().link_ok for _ in range(60)]
        assert r.host.write_timeouts == 1 and r.host._port is not None
        assert all(ok[1:]), ok
    finally:
        r.close()


# ---------------------------------------------------------------- [timing] in the serial world
def drive_until(r: Rig, ticks: int, out: Outputs) -> list[int]:
    """The board's commanded duty (milli) after each tick."""
    seen = []
    for _ in range(ticks):
        r.tick(out)
        seen.append(int(round(r.board.board.cmd_duty * 1000)))
    return seen


def test_link_latency_delays_frames_both_ways_in_simulated_time() -> None:
    for latency_ms, ticks_late in ((0.0, 0), (5.0, 1), (20.0, 2), (25.0, 3)):
        r = Rig(timing=Timing(link_latency_ms=latency_ms))
        try:
            # The host's start-up handshake takes no simulated time (as the service's
            # blocking handshake before its loop): telemetry from the first tick.
            assert r.tick().link_ok
            for _ in range(9):
                inp = r.tick()
                assert inp.link_ok
            # Board -> host: the STATUS read at t left the board ticks_late ticks earlier. Its
            # time field is the board's last control step: in ideal lockstep the one on the
            # host's answer the tick before; with latency, the host's answer arrives by the
            # board's next pass, which steps on it first and then reports (firmware Loop.poll).
            stepped_ms = r.host.status.board_ms
            answer_ms = 10 if latency_ms == 0 else 0
            sent_ms = round((r.t - 0.01 - 0.01 * ticks_late) * 1000)
            assert stepped_ms == sent_ms - answer_ms, (latency_ms, stepped_ms)
            # Host -> board: the command written at tick k is taken at tick k + ticks_late.
            seen = drive_until(
                r,
                6,
                Outputs(motor_cmd=0.1, brake=True, alarm=False, heartbeat=True, motor_power=True),
            )
            assert seen.index(100) == ticks_late, (latency_ms, seen)
        finally:
            r.close()


def test_the_board_on_its_own_clock_steps_between_the_hosts_ticks() -> None:
    r = Rig(timing=Timing(board_clock="own"))
    try:
        assert 1000 <= r.board.offset_us <= 9000 and r.board.offset_us % 1000 == 0
        for _ in range(20):
            inp = r.tick()
            assert inp.link_ok
        # The STATUS the host reads at t was sent by the board's step at t - 10 ms + offset;
        # its time field is the board's last control step: on the host's answer to its
        # previous STATUS, which its loop read the moment it arrived, at the host's tick
        # before (t - 20 ms), not at its next step (firmware Loop.poll).
        assert r.host.status.board_ms == round((r.t - 0.02) * 1000)
        seen = drive_until(
            r, 4, Outputs(motor_cmd=0.1, brake=True, alarm=False, heartbeat=True, motor_power=True)
        )
        assert seen.index(100) == 0  # taken the moment it arrives, at the host's tick
    finally:
        r.close()


def test_the_boards_own_clock_offset_is_seeded() -> None:
    def offset(seed: int) -> int:
        w = Wire()
        try:
            b = VirtualBoard(
                SimTable(angle_deg=-80.0, upright_deg=-80.0),
                Config(),
                w,
                0.0,
                timing=Timing(board_clock="own"),
                seed=seed,
            )
            return b.offset_us
        finally:
            w.close()

    assert offset(1) == offset(1)
    assert len({offset(s) for s in range(20)}) > 1


# ---------------------------------------------------------------- issue 11 repro 5, through the CLI
def estop_during_own_return(path: Path, way_back: list[dict]) -> Path:
    """A 40 deg session; the link is cut at 30 s (the board returns alone); the e-stop is
    tapped during that return; then ``way_back`` on the pendant."""
    lines = [
        "[scenario]",
        'name = "e-stop during the board\'s own return"',
        "duration_s = 90.0",
        "seed = 5",
        "[config.session]",
        "target_deg = 40.0",
        "hold_s = 60.0",
    ]
    events = [
        {"at_s": 0.5, "do": '"set"', "input": '"ankle_lock"', "value": "true"},
        {"at_s": 1.0, "do": '"tap"', "input": '"start"'},
        {"at_s": 30.0, "do": '"fault"', "fault": '"link_loss"'},
        {"at_s": 33.0, "do": '"set"', "input": '"estop"', "value": "true"},
        {"at_s": 33.2, "do": '"set"', "input": '"estop"', "value": "false"},
    ] + way_back
    for ev in events:
        lines.append("[[events]]")
        lines += [f"{k} = {v}" for k, v in ev.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "way_back",
    [
        [{"at_s": 45.0, "do": '"tap"', "input": '"return"'}],
        [
            {"at_s": 45.0, "do": '"press"', "input": '"up"'},
            {"at_s": 85.0, "do": '"release"', "input": '"up"'},
        ],
    ],
    ids=["return", "hold-up"],
)
def test_an_estop_tap_during_the_boards_own_return_does_not_strand_the_user(
    tmp_path: Path, way_back: list[dict]
) -> None:
    from tests.conftest import run_scenario_cli

    run = run_scenario_cli(
        estop_during_own_return(tmp_path / "repro5.toml", way_back), tmp_path, "--backend", "serial"
    )
    assert "Traceback" not in run.stderr
    at = {round(r["t_s"], 2): r["angle_deg"] for r in run.trace}
    assert at[33.0] < at[30.0] - 5.0  # the board was returning alone ...
    assert at[34.0] > 0.0  # ... and the e-stop caught it inverted
    assert abs(at[44.9] - at[34.0]) < 0.5  # held while nobody asked (released at 33.2)
    assert run.trace[-1]["angle_deg"] <= -80.0 + 0.5  # the true angle: upright at the end
    assert max(abs(r["velocity_dps"]) for r in run.trace if r["t_s"] >= 30.0) <= 8.0
