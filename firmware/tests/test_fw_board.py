"""Board logic with a fake clock (plain integers as ticks_ms): no threads, no sleeps.
Runs on CPython (pytest) and on the MicroPython unix port (run.py)."""
try:
    from firmware import protocol as P
    from firmware.board import Board, Sensors
    from firmware.ramp import Ramp
    from firmware.safety import Limits, clip_envelope, slew
    from firmware.ticks import ticks_add, ticks_diff
except ImportError:
    import protocol as P
    from board import Board, Sensors
    from ramp import Ramp
    from safety import Limits, clip_envelope, slew
    from ticks import ticks_add, ticks_diff

UP = -80.0


def at(angle, **kw):
    return Sensors(primary=angle, secondary=angle, upright=angle <= UP + 1.5, **kw)


def replies(frames):
    out = []
    for f in frames:
        out += P.Decoder().feed(f)
    return [(t, P.unpack(t, p)) for _, t, p in out]


def connected(now=0, angle=UP):
    b = Board(now)
    b.on_frame(1, P.HELLO, bytes((P.PROTO_VERSION,)), now)
    b.step(now, at(angle))
    return b


def drive(b, seq, duty_milli, now, flags=P.FLAG_POWER, validity=100):
    import struct
    return replies(b.on_frame(seq, P.SET_OUTPUTS, struct.pack(">hBH", duty_milli, flags, validity), now))


def test_nothing_is_obeyed_before_the_handshake():
    b = Board(0)
    r = drive(b, 1, 500, 0)
    assert r[0][0] == P.NAK and r[0][1][1] == P.NAK_NO_HELLO
    assert b.step(10, at(UP))[:3] == (0.0, True, False)


def test_handshake_reports_version_and_limits():
    b = Board(0)
    r = replies(b.on_frame(9, P.HELLO, bytes((P.PROTO_VERSION,)), 0))
    assert r[0][0] == P.HELLO_ACK
    v = r[0][1]
    assert v[0] == P.PROTO_VERSION and v[3] == -8000 and v[4] == 6000 and v[7] == 300
    assert replies(Board(0).on_frame(1, P.HELLO, bytes((99,)), 0))[0][1][1] == P.NAK_VERSION


def test_follows_the_host_within_the_slew_limit():
    b = connected()
    assert drive(b, 2, 500, 0)[0][0] == P.ACK
    duty, brake, relay, _, _ = b.step(10, at(UP))
    assert relay and not brake
    assert abs(duty - 0.2) < 1e-9  # 20 duty/s for 10 ms
    for t in range(20, 60, 10):
        drive(b, 2 + t // 10, 500, t)
        duty = b.step(t, at(UP))[0]
    assert duty == 0.5


def test_a_replayed_or_older_command_is_never_executed():
    b = connected()
    drive(b, 5, 200, 0)
    drive(b, 6, 300, 1)
    r = drive(b, 5, 200, 2)  # replay of an older frame
    assert r[0][0] == P.NAK and r[0][1][1] == P.NAK_STALE_SEQ
    assert b.cmd_duty == 0.3
    r = drive(b, 6, 999, 3)  # same seq again: a retransmission, acknowledged, not executed
    assert r[0][0] == P.ACK and b.cmd_duty == 0.3


def test_validity_lapse_off_upright_returns_alone_then_latches():
    b = connected(angle=30.0)
    drive(b, 2, 0, 0, flags=P.FLAG_POWER | P.FLAG_BRAKE, validity=100)
    b.step(50, at(30.0))
    assert b.state == P.ST_HOST
    b.step(100, at(30.0))
    assert b.state == P.ST_RETURN and b.reason == "command validity lapsed"
    duty, brake, relay, alarm, _ = b.step(110, at(30.0))
    assert not brake and relay and alarm and duty <= 0.0
    # Feed the board a table that follows its ramp exactly, until it is upright.
    t, angle = 110, 30.0
    while b.state == P.ST_RETURN and t < 60000:
        t += 10
        angle = b.ramp.pos
        b.step(t, at(angle))
    assert b.state == P.ST_SHUTDOWN and abs(angle - UP) < 0.5
    assert b.step(t + 10, at(UP))[:3] == (0.0, True, False)
    # Latched: commands are refused until an explicit CLEAR.
    assert drive(b, 3, 500, t + 20)[0][1][1] == P.NAK_SHUTDOWN
    assert replies(b.on_frame(4, P.CLEAR, b"", t + 30))[0][0] == P.ACK
    assert b.state == P.ST_WAIT


def test_host_silence_is_a_lapse_too():
    b = connected(angle=20.0)
    drive(b, 2, 0, 0, flags=P.FLAG_POWER | P.FLAG_BRAKE, validity=60000)  # validity is clipped to 200
    b.step(150, at(20.0))
    assert b.state == P.ST_HOST
    b.step(200, at(20.0))
    assert b.state == P.ST_RETURN


def test_at_upright_a_lapse_only_latches():
    b = connected()
    drive(b, 2, 0, 0, flags=P.FLAG_BRAKE, validity=50)
    b.step(60, at(UP))
    assert b.state == P.ST_SHUTDOWN


def test_sensors_that_disagree_hold_on_the_brake_instead_of_returning():
    b = connected(angle=30.0)
    drive(b, 2, 0, 0, flags=P.FLAG_BRAKE, validity=50)
    duty, brake, relay, alarm, _ = b.step(60, Sensors(primary=30.0, secondary=25.0))
    assert b.state == P.ST_HOLD and duty == 0.0 and brake and not relay and alarm


def test_estop_zeroes_the_drive_and_brakes():
    b = connected(angle=0.0)
    drive(b, 2, 600, 0)
    b.step(10, at(0.0))
    duty, brake, _, _, _ = b.step(20, at(0.0, estop_a_open=True))
    assert duty == 0.0 and brake


def test_envelope_limits_whatever_the_host_asks():
    lim = Limits()
    assert clip_envelope(0.5, 60.6, 60.0, lim) == 0.0        # either sensor past max: no further down
    assert clip_envelope(-0.5, 60.6, 60.6, lim) == -0.5      # the way up is never blocked
    assert clip_envelope(-0.5, -83.5, -79.0, lim) == -0.5    # one sensor alone cannot block the way up
    assert clip_envelope(-0.5, -83.5, -83.2, lim) == 0.0
    assert slew(0.0, 1.0, 0.01, 20.0) == 0.2


def test_a_powered_up_board_returns_a_user_left_inverted_when_no_host_comes():
    b = Board(0)
    b.step(0, at(40.0))
    b.step(200, at(40.0))
    assert b.state == P.ST_WAIT
    b.step(300, at(40.0))
    assert b.state == P.ST_RETURN and b.reason == "no host"


def test_ramp_is_bounded_and_never_overshoots():
    for goal, start_v in ((10.0, 0.0), (-7.3, 0.0), (0.05, 0.0), (3.0, -2.0), (-40.0, 3.5)):
        r = Ramp(0.0)
        r.vel = start_v
        prev_v = start_v
        for _ in range(5000):
            r.step(goal, 4.0, 4.0, 0.01)
            assert abs(r.vel) <= 4.0 + 1e-9
            # Every step within amax*dt, except the one that lands on the goal: the distance
            # left is then below 2*amax*dt^2, and it stops from at most 2*amax*dt.
            limit = 2 * 4.0 * 0.01 if (r.done and prev_v != 0.0) else 4.0 * 0.01
            assert abs(r.vel - prev_v) <= limit + 1e-6, (goal, r.pos, r.vel, prev_v)
            if start_v * goal >= 0:
                assert (r.pos - goal) * (1 if goal > 0 else -1) <= 1e-9  # never past the goal
            prev_v = r.vel
        assert r.done and r.pos == goal


def test_ticks_arithmetic_survives_the_wrap():
    near = ticks_add(0, -5)  # just below the wrap, whatever the port's period
    later = ticks_add(near, 10)
    assert later == 5 and ticks_diff(later, near) == 10 and ticks_diff(near, later) == -10


def test_status_frame_carries_the_sample_and_the_state():
    b = connected(angle=12.34)
    b.step(10, at(12.34, buttons=0b00101))
    v = replies([b.status_frame()])[0][1]
    assert v[1] == 1234 and v[2] == 1234 and v[5] == P.ST_WAIT
    assert v[4] >> P.IN_BUTTON_SHIFT == 0b00101
