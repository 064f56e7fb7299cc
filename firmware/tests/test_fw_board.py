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


NONCE = 0x4242


def payload(session, *rest):
    """A payload as the host sends it: the session word, then the fields."""
    return bytes(((session >> 8) & 0xFF, session & 0xFF)) + bytes(rest)


def hello(b, seq, now=0, nonce=NONCE):
    """HELLO; returns the HELLO_ACK's field values (the token is the last)."""
    return replies(b.on_frame(seq, P.HELLO, payload(nonce, P.PROTO_VERSION), now))[0][1]


def connected(now=0, angle=UP):
    b = Board(now, boot_id=77)
    hello(b, 1, now)
    b.step(now, at(angle))
    return b


def drive(b, seq, duty_milli, now, flags=P.FLAG_POWER, validity=100, token=None):
    import struct

    tok = b.token if token is None else token
    return replies(
        b.on_frame(seq, P.SET_OUTPUTS, struct.pack(">HhBH", tok, duty_milli, flags, validity), now)
    )


def clear(b, seq, now):
    return replies(b.on_frame(seq, P.CLEAR, payload(b.token), now))


def test_nothing_is_obeyed_before_the_handshake():
    b = Board(0)
    r = drive(b, 1, 500, 0)
    assert r[0][0] == P.NAK and r[0][1][1] == P.NAK_NO_HELLO
    assert b.step(10, at(UP))[:3] == (0.0, True, False)


def test_handshake_reports_version_and_limits():
    b = Board(0, boot_id=5)
    r = replies(b.on_frame(9, P.HELLO, payload(NONCE, P.PROTO_VERSION), 0))
    assert r[0][0] == P.HELLO_ACK
    v = r[0][1]
    assert v[0] == P.PROTO_VERSION and v[3] == -8000 and v[4] == 6000 and v[7] == 300
    assert v[9] == 5 and v[10] == b.token and b.token != 0
    assert replies(Board(0).on_frame(1, P.HELLO, payload(NONCE, 99), 0))[0][1][1] == P.NAK_VERSION
    # A protocol-1 HELLO (one byte, no session word) is another version too.
    assert replies(Board(0).on_frame(1, P.HELLO, bytes((1,)), 0))[0][1][1] == P.NAK_VERSION


def test_every_board_frame_echoes_the_hosts_nonce():
    b = connected()
    frames = b.on_frame(2, P.PING, payload(b.token), 0) + [b.status_frame()]
    for f in frames:
        for _, _, p in P.Decoder().feed(f):
            assert P.session_of(p) == NONCE


def test_a_frame_of_another_session_is_refused_and_not_heard():
    b = connected(angle=20.0)
    r = drive(b, 2, 500, 0, token=(b.token + 1) & 0xFFFF)
    assert r[0][0] == P.NAK and r[0][1][1] == P.NAK_SESSION
    assert b.cmd_duty == 0.0 and b.state == P.ST_WAIT and b.last_seq == 1


def test_a_replayed_hello_then_an_old_command_is_not_executed():
    b = connected(angle=0.0)
    old_token = b.token
    assert drive(b, 2, 300, 0)[0][0] == P.ACK  # the old session's command
    hello(b, 10, 5, nonce=0x1111)  # a new session (the host reconnected)
    assert drive(b, 11, 0, 6, flags=P.FLAG_BRAKE)[0][0] == P.ACK
    # An attacker (or stale bytes in a buffer) replays the old HELLO and the old command.
    hello(b, 1, 7, nonce=NONCE)
    assert b.token != old_token  # a replayed HELLO gets a fresh token
    r = drive(b, 2, 300, 8, token=old_token)
    assert r[0][1][1] == P.NAK_SESSION and b.cmd_duty == 0.0 and b.cmd_flags == P.FLAG_BRAKE


def test_session_tokens_do_not_repeat_within_a_boot():
    b = Board(0, boot_id=1234)
    seen = set()
    for i in range(300):
        hello(b, i & 0xFF, i)
        assert b.token != 0 and b.token not in seen
        seen.add(b.token)


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


def test_a_lapsed_command_brakes_and_only_host_silence_returns_alone_then_latches():
    b = connected(angle=30.0)
    drive(b, 2, 0, 0, flags=P.FLAG_POWER | P.FLAG_BRAKE, validity=100)
    b.step(50, at(30.0))
    assert b.state == P.ST_HOST and not b.stopping
    duty, brake, _, _, _ = b.step(100, at(30.0))
    assert b.state == P.ST_HOST and b.stopping and duty == 0.0 and brake  # stale: not driven on
    b.step(290, at(30.0))
    assert b.state == P.ST_HOST
    b.step(300, at(30.0))
    assert b.state == P.ST_RETURN and b.reason == "host silent"
    duty, brake, relay, alarm, _ = b.step(310, at(30.0))
    assert relay and alarm and duty <= 0.0
    # Feed the board a table that follows its ramp exactly, until it is upright.
    t, angle = 310, 30.0
    while b.state == P.ST_RETURN and t < 60000:
        t += 10
        if not b.torque_first:
            angle = b.ramp.pos
        b.step(t, at(angle))
    assert b.state == P.ST_SHUTDOWN and abs(angle - UP) < 0.5
    assert b.step(t + 10, at(UP))[:3] == (0.0, True, False)
    # Latched: commands are refused until an explicit CLEAR.
    assert drive(b, 3, 500, t + 20)[0][1][1] == P.NAK_SHUTDOWN
    assert clear(b, 4, t + 30)[0][0] == P.ACK
    assert b.state == P.ST_WAIT


def test_a_late_host_stops_the_motion_on_the_board_loop_and_its_next_command_resumes():
    """A host loop late by 150 ms (a GC pause): the board decelerates the moving table on the
    emergency deceleration and holds it powered, then obeys the host again; no return, no latch."""
    b = connected(angle=0.0)
    t, angle, seq = 0, 0.0, 2
    for t in range(0, 500, 10):  # the host drives toward inversion at 4 deg/s
        drive(b, seq, 200, t)
        seq += 1
        angle += 0.04
        b.step(t, at(angle))
    assert abs(b.speed - 4.0) < 0.2
    last = t
    v_prev = None
    while t < last + 290:  # the host is silent for 290 ms, just short of lost
        t += 10
        duty, brake, relay, _, _ = b.step(t, at(angle))
        if not b.stopping:
            angle += 0.04  # still driven on the last command until it lapses
            continue
        if v_prev is None:
            assert t == last + 100 and abs(b.ramp.vel - 4.0) < 0.5  # lapsed: the stop begins
            v_prev = b.ramp.vel
        angle = b.ramp.pos  # a table that follows the board's own setpoint
        assert not brake and relay  # stopped powered, not dropped on the brake
        assert abs(b.ramp.vel - v_prev) <= 8.0 * 0.01 + 1e-6  # the emergency deceleration
        v_prev = b.ramp.vel
    assert b.state == P.ST_HOST and b.stopping and 0.0 < b.ramp.vel < 4.0 - 1.4
    assert b.stop_goal - angle < 1.1  # it stops within v^2/2a of where the lapse found it
    drive(b, seq, 150, t + 10)
    b.step(t + 10, at(angle))
    assert b.state == P.ST_HOST and not b.stopping and b.cmd_duty == 0.15


def test_host_silence_returns_alone_whatever_the_validity():
    b = connected(angle=20.0)
    drive(
        b, 2, 0, 0, flags=P.FLAG_POWER | P.FLAG_BRAKE, validity=60000
    )  # validity is clipped to 200
    b.step(150, at(20.0))
    assert b.state == P.ST_HOST and not b.stopping
    b.step(200, at(20.0))
    assert b.state == P.ST_HOST and b.stopping
    b.step(300, at(20.0))
    assert b.state == P.ST_RETURN


def test_at_upright_a_lapse_only_latches():
    b = connected()
    drive(b, 2, 0, 0, flags=P.FLAG_BRAKE, validity=50)
    b.step(60, at(UP))
    assert b.state == P.ST_HOST and b.stopping
    b.step(300, at(UP))
    assert b.state == P.ST_SHUTDOWN


def test_sensors_that_disagree_hold_on_the_brake_instead_of_returning():
    b = connected(angle=30.0)
    drive(b, 2, 0, 0, flags=P.FLAG_BRAKE, validity=50)
    b.step(60, Sensors(primary=30.0, secondary=25.0))
    duty, brake, relay, alarm, _ = b.step(300, Sensors(primary=30.0, secondary=25.0))
    assert b.state == P.ST_HOLD and duty == 0.0 and brake and not relay and alarm


def test_estop_zeroes_the_drive_and_brakes():
    b = connected(angle=0.0)
    drive(b, 2, 600, 0)
    b.step(10, at(0.0))
    duty, brake, _, _, _ = b.step(20, at(0.0, estop_a_open=True))
    assert duty == 0.0 and brake


def test_envelope_limits_whatever_the_host_asks():
    lim = Limits()
    assert clip_envelope(0.5, 60.6, 60.0, lim) == 0.0  # either sensor past max: no further down
    assert clip_envelope(-0.5, 60.6, 60.6, lim) == -0.5  # the way up is never blocked
    assert (
        clip_envelope(-0.5, -83.5, -79.0, lim) == -0.5
    )  # one sensor alone cannot block the way up
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


def returning_alone(angle=30.0):
    """A board that lost its host while the table is inverted: returning on its own."""
    b = connected(angle=angle)
    drive(b, 2, 0, 0, flags=P.FLAG_POWER | P.FLAG_BRAKE, validity=100)
    b.step(100, at(angle))
    assert b.state == P.ST_HOST and b.stopping  # a stale command: stopped, not yet alone
    b.step(300, at(angle))
    assert b.state == P.ST_RETURN and b.reason == "host silent"
    return b


RETURN_BTN = 1 << 4
UP_BTN = 1 << 2


def test_estop_during_the_own_return_holds_then_return_press_resumes_it():
    """Issue 11 repro 5: the e-stop holds the board's return, but not for good."""
    b = returning_alone()
    b.step(310, at(30.0, estop_a_open=True))
    assert b.state == P.ST_HOLD and b.resumable
    # Released: nothing moves by itself, however long.
    t = 320
    for t in range(320, 2200, 10):
        duty, brake, relay, alarm, _ = b.step(t, at(30.0))
        assert b.state == P.ST_HOLD and duty == 0.0 and brake and alarm
    # RETURN pressed (a fresh press): the return resumes and stays on after the release.
    b.step(t + 10, at(30.0, buttons=RETURN_BTN))
    assert b.state == P.ST_RETURN
    b.step(t + 20, at(30.0))
    assert b.state == P.ST_RETURN


def test_a_button_held_through_the_estop_release_moves_nothing():
    b = returning_alone()
    b.step(310, at(30.0, estop_a_open=True, buttons=RETURN_BTN))
    b.step(320, at(30.0, buttons=RETURN_BTN))  # released while RETURN is held
    b.step(330, at(30.0, buttons=RETURN_BTN))
    assert b.state == P.ST_HOLD
    b.step(340, at(30.0))
    b.step(350, at(30.0, buttons=RETURN_BTN))  # pressed again: now it counts
    assert b.state == P.ST_RETURN


def test_a_press_while_the_estop_is_still_pressed_moves_nothing():
    b = returning_alone()
    b.step(310, at(30.0, estop_a_open=True))
    b.step(320, at(30.0, estop_a_open=True, buttons=UP_BTN | RETURN_BTN))
    assert b.state == P.ST_HOLD


def test_held_up_resumes_the_return_as_hold_to_run():
    b = returning_alone()
    b.step(310, at(30.0, estop_a_open=True))
    b.step(320, at(30.0))
    b.step(330, at(30.0, buttons=UP_BTN))
    assert b.state == P.ST_RETURN
    b.step(340, at(30.0, buttons=UP_BTN))
    assert b.state == P.ST_RETURN
    duty, brake, _, _, _ = b.step(350, at(30.0))  # UP released: pauses on the brake
    assert b.state == P.ST_HOLD and b.resumable and duty == 0.0 and brake
    b.step(360, at(30.0, buttons=UP_BTN))  # held again: goes on
    assert b.state == P.ST_RETURN


def test_the_resumed_return_reaches_upright_and_latches():
    b = returning_alone()
    b.step(310, at(30.0, estop_a_open=True))
    b.step(320, at(30.0))
    b.step(330, at(30.0, buttons=RETURN_BTN))
    t, angle = 330, 30.0
    while b.state == P.ST_RETURN and t < 60000:
        t += 10
        angle = b.ramp.pos
        b.step(t, at(angle))
    assert b.state == P.ST_SHUTDOWN and abs(angle - UP) < 0.5


def test_holds_for_unsafe_motion_are_not_resumed_by_buttons():
    b = connected(angle=30.0)
    drive(b, 2, 0, 0, flags=P.FLAG_BRAKE, validity=50)
    b.step(300, Sensors(primary=30.0, secondary=25.0))
    assert b.state == P.ST_HOLD and not b.resumable
    b.step(310, Sensors(primary=30.0, secondary=25.0, buttons=RETURN_BTN))
    assert b.state == P.ST_HOLD


def test_a_host_that_only_greets_does_not_keep_the_board_from_returning_alone():
    """A host that refused the board (or never gets its answers) sends HELLOs, never
    commands: off upright, the board still returns the user after its host timeout."""
    b = Board(0)
    for t in range(0, 400, 10):
        if t % 100 == 0:
            hello(b, (t // 100 + 1) & 0xFF, t)
        b.step(t, at(40.0))
    assert b.state == P.ST_RETURN and b.reason == "no host"
