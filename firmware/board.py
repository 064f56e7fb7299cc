"""The motion board's logic, without any hardware: frames in, sensor samples in,
actuator settings and frames out. ``main.py`` wires it to ``machine``; the simulator's
virtual motion board wires it to the physics. Time is passed in as ticks_ms.

States (protocol.ST_*): WAIT (no host session, brake on) -> HOST (following the host's
SET_OUTPUTS within the board's envelope and slew limit) -> on host silence (300 ms):
RETURN (upright alone on the emergency profile) -> SHUTDOWN (latched, brake on, supply
open, until CLEAR). A command whose validity lapsed (100 ms from the host) is not driven
on: still in HOST, the board brings the table to a stop under its own position loop on the
emergency deceleration and holds it there, powered, until the host's next SET_OUTPUTS (a
late host loop: the session goes on) or the host's silence (the return starts from the
held table without a jolt). HOLD (latched, alarm) when acting alone is not safe: the
sensors disagree or give no reading, overspeed, the e-stop, or a return that times out.

An e-stop during the board's own return holds on the brake, but not for good: once the
e-stop is released, a RETURN press or a held UP seen on the board's own pendant inputs
resumes the return (UP as hold-to-run: releasing it pauses again). Releasing the e-stop
alone never restarts motion, and a button already held through the release does not
count: it must be pressed after it.

Sessions (protocol v2): HELLO carries the host's nonce; the board answers with a fresh
session token (from its boot id and a HELLO counter) that every later host frame must
carry, and echoes the nonce in every frame it sends. A replayed old HELLO opens a new
session with a new token, so the old frames that follow it are refused (NAK_SESSION).
"""

import struct

try:
    from firmware import protocol as P
    from firmware.ramp import Follower, Ramp
    from firmware.safety import Deadman, Limits, clip_envelope, fused_angle, slew, trusted
    from firmware.ticks import ticks_add, ticks_diff
except ImportError:
    import protocol as P
    from ramp import Follower, Ramp
    from safety import Deadman, Limits, clip_envelope, fused_angle, slew, trusted
    from ticks import ticks_add, ticks_diff

UPRIGHT_TOL_DEG = 0.5
MAX_LEAD_DEG = 1.0  # the return's setpoint never runs further ahead of the table than this:
# a table that lags is not made to sprint to catch up
SPEED_WINDOW = 10  # samples (0.1 s at 100 Hz): the sensors' noise is about 1 deg/s over it
RETURN_PLAN_FRACTION = 0.9  # plan under the emergency speed: the limit is a limit, not a target


class Sensors:
    """One sample of everything the board reads."""

    def __init__(
        self,
        primary=None,
        secondary=None,
        current_a=0.0,
        upright=False,
        overtravel_open=False,
        estop_a_open=False,
        estop_b_open=False,
        ankle_a_closed=True,
        ankle_b_closed=True,
        buttons=0,
    ):
        self.primary = primary
        self.secondary = secondary
        self.current_a = current_a
        self.upright = upright
        self.overtravel_open = overtravel_open
        self.estop_a_open = estop_a_open
        self.estop_b_open = estop_b_open
        self.ankle_a_closed = ankle_a_closed
        self.ankle_b_closed = ankle_b_closed
        self.buttons = buttons  # bit i set: protocol.BUTTONS[i] held


BTN_UP = 1 << 2  # protocol.BUTTONS order: start, stop, up, down, return
BTN_RETURN = 1 << 4


def _cdeg(v):
    return P.NO_READING if v is None else max(-32767, min(32767, int(round(v * 100))))


def session_token(boot_id, n):
    """The n-th session token of a boot: never 0, and not repeated within 65536 HELLOs."""
    t = (boot_id * 251 + n * 40503 + 1) & 0xFFFF
    return t or 1


class Board:
    def __init__(self, now_ms, limits=None, boot_id=0):
        self.lim = limits or Limits()
        self.state = P.ST_WAIT
        self.last_ms = now_ms
        self.session = False
        self.boot_id = boot_id & 0xFFFF
        self.hellos = 0
        self.token = 0  # this session's token (0: none)
        self.host_nonce = 0  # echoed in every frame sent
        self.resumable = False  # held by an e-stop during the return: RETURN/UP resume it
        self.resume_by = 0  # BTN_RETURN (latched) or BTN_UP (hold-to-run) while resumed
        self.prev_buttons = 0
        self.last_seq = 0
        self.tx_seq = 0
        self.deadman = Deadman(now_ms, self.lim)
        self.cmd_duty = 0.0
        self.cmd_flags = P.FLAG_BRAKE
        self.duty = 0.0  # applied
        self.brake = True
        self.relay = False
        self.alarm = False
        self.heartbeat = False
        self.angle = None
        self.trusted = False
        self.speed = 0.0
        self._hist_angle = [0.0] * SPEED_WINDOW  # preallocated ring: no allocation per step
        self._hist_ms = [0] * SPEED_WINDOW
        self._hist_n = 0
        self._hist_i = 0
        self.ramp = None
        self.load_duty = 0.0  # the duty that last held the table still under the host: the load
        self.follower = None
        self.return_deadline_ms = 0
        self.torque_first = False  # a return from the brake: holding duty first, then release
        self.stopping = False  # in HOST with a lapsed command: stopping and holding on our own loop
        self.commanded = False  # a SET_OUTPUTS was taken since the loop last looked (main.Loop)
        self.stop_goal = 0.0
        self.reason = ""
        self.sample = Sensors()
        # Replies are built in place (protocol.frame_into) and handed to ``out`` (the UART's
        # write): nothing is allocated per frame. ``on_frame`` collects them instead.
        self.out = None
        self._ack_buf = bytearray(P.SIZES[P.ACK] + 6)
        self._nak_buf = bytearray(P.SIZES[P.NAK] + 6)
        self._status_buf = bytearray(P.SIZES[P.STATUS] + 6)

    # ------------------------------------------------------------------ frames
    def _frame(self, mtype, *values):
        self.tx_seq = (self.tx_seq + 1) & 0xFF
        return P.pack_s(self.tx_seq, mtype, self.host_nonce, *values)

    def _ack(self, seq):
        self.tx_seq = (self.tx_seq + 1) & 0xFF
        buf = self._ack_buf
        struct.pack_into(P.FULL_FORMATS[P.ACK], buf, 4, self.host_nonce, seq)
        self.out(P.frame_into(buf, self.tx_seq, P.ACK, P.SIZES[P.ACK]))

    def _nak(self, seq, reason, session=None):
        self.tx_seq = (self.tx_seq + 1) & 0xFF
        buf = self._nak_buf
        nonce = self.host_nonce if session is None else session
        struct.pack_into(P.FULL_FORMATS[P.NAK], buf, 4, nonce, seq, reason)
        self.out(P.frame_into(buf, self.tx_seq, P.NAK, P.SIZES[P.NAK]))

    def on_frame(self, seq, mtype, payload, now_ms):
        """Handle one verified frame from the host; returns the reply frames (bytes)."""
        frames = []
        out = self.out
        self.out = lambda frame: frames.append(bytes(frame))
        try:
            self.handle(seq, mtype, payload, len(payload), now_ms)
        finally:
            self.out = out
        return frames

    def handle(self, seq, mtype, payload, n, now_ms):
        """Handle one verified frame (its payload is ``payload[:n]``); the replies go to
        ``out``. Allocates nothing for the frames of a session (SET_OUTPUTS, PING, CLEAR)."""
        session = (payload[0] << 8) | payload[1] if n >= 2 else None
        size = P.SIZES.get(mtype, -1)
        valid = size >= 0 and n == size  # the layout of a known type (protocol.unpack)
        if mtype == P.HELLO:
            if not valid or payload[2] != P.PROTO_VERSION:
                # Another layout or another number: another protocol version. Answered in
                # the caller's session so it can tell why; nothing else changes.
                self._nak(seq, P.NAK_VERSION, session or 0)
                return
            self.hellos += 1
            self.token = session_token(self.boot_id, self.hellos)
            self.host_nonce = session
            self.session = True
            self.last_seq = seq
            # Not "heard": a host that only greets (it refused our limits, or never gets our
            # answers) is not in charge, and must not keep the board from returning alone.
            lim = self.lim
            self.out(
                self._frame(
                    P.HELLO_ACK,
                    P.PROTO_VERSION,
                    P.FW_VERSION[0],
                    P.FW_VERSION[1],
                    int(round(lim.upright_deg * 100)),
                    int(round(lim.max_angle_deg * 100)),
                    int(round(lim.emergency_speed_dps * 100)),
                    int(round(lim.emergency_accel_dps2 * 100)),
                    lim.host_timeout_ms,
                    lim.max_validity_ms,
                    self.boot_id,
                    self.token,
                )
            )
            return
        if not self.session:
            self._nak(seq, P.NAK_NO_HELLO)
            return
        if session != self.token:
            self._nak(seq, P.NAK_SESSION)  # another session's frame: not heard
            return
        if seq == self.last_seq:
            self._ack(seq)  # a retransmission: acknowledged, not executed again
            return
        if not P.seq_newer(seq, self.last_seq):
            self._nak(seq, P.NAK_STALE_SEQ)
            return
        if not valid:
            self._nak(seq, P.NAK_BAD_PAYLOAD if size >= 0 else P.NAK_UNKNOWN)
            return
        self.last_seq = seq
        self.deadman.heard(now_ms)
        st = self.state
        if mtype == P.SET_OUTPUTS:
            if st == P.ST_RETURN or st == P.ST_SHUTDOWN or st == P.ST_HOLD:
                self._nak(seq, P.NAK_SHUTDOWN)
                return
            duty = (payload[2] << 8) | payload[3]
            if duty >= 0x8000:
                duty -= 0x10000
            self.cmd_duty = max(-1.0, min(1.0, duty / 1000.0))
            self.cmd_flags = payload[4]
            self.deadman.command(now_ms, (payload[5] << 8) | payload[6])
            self.state = P.ST_HOST
            self.stopping = False
            self.commanded = True
            self._ack(seq)
            return
        if mtype == P.PING:
            self._ack(seq)
            return
        if mtype == P.CLEAR:
            if st == P.ST_RETURN:
                self._nak(seq, P.NAK_SHUTDOWN)  # never stop a return half way
                return
            if st == P.ST_SHUTDOWN or st == P.ST_HOLD:
                self.state = P.ST_WAIT
                self.reason = ""
                self.deadman.expiry_ms = None
            self._ack(seq)
            return
        self._nak(seq, P.NAK_UNKNOWN)

    def status_frame(self):
        """The STATUS telemetry as bytes (a copy of ``status_into``'s frame)."""
        return bytes(self.status_into())

    def status_into(self):
        """The STATUS telemetry, built in place: the returned buffer is reused next time."""
        s = self.sample
        bits = (
            (P.IN_UPRIGHT if s.upright else 0)
            | (P.IN_OVERTRAVEL_OPEN if s.overtravel_open else 0)
            | (P.IN_ESTOP_A_OPEN if s.estop_a_open else 0)
            | (P.IN_ESTOP_B_OPEN if s.estop_b_open else 0)
            | (P.IN_ANKLE_A_CLOSED if s.ankle_a_closed else 0)
            | (P.IN_ANKLE_B_CLOSED if s.ankle_b_closed else 0)
            | ((s.buttons & 0x1F) << P.IN_BUTTON_SHIFT)
        )
        out = (
            (P.OUT_BRAKE if self.brake else 0)
            | (P.OUT_RELAY if self.relay else 0)
            | (P.OUT_ALARM if self.alarm else 0)
        )
        self.tx_seq = (self.tx_seq + 1) & 0xFF
        buf = self._status_buf
        struct.pack_into(
            P.FULL_FORMATS[P.STATUS],
            buf,
            4,
            self.host_nonce & 0xFFFF,
            self.last_ms & 0xFFFF,
            _cdeg(s.primary),
            _cdeg(s.secondary),
            max(0, min(65535, int(round(s.current_a * 100)))),
            bits,
            self.state,
            int(round(self.duty * 1000)),
            out,
            self.last_seq,
        )
        return P.frame_into(buf, self.tx_seq, P.STATUS, P.SIZES[P.STATUS])

    # ------------------------------------------------------------------ control
    def _start_return(self, now_ms, why):
        self.reason = why
        self.resumable = False
        self.resume_by = 0
        lim = self.lim
        if self.angle is None or not self.trusted:
            self._hold(
                "cannot return alone: " + ("no angle" if self.angle is None else "sensors disagree")
            )
            return
        if abs(self.angle - lim.upright_deg) <= UPRIGHT_TOL_DEG:
            self.state = P.ST_SHUTDOWN  # already upright: nothing to move
            return
        self.state = P.ST_RETURN
        self.ramp = Ramp(self.angle)
        self.ramp.vel = self.speed if abs(self.speed) < lim.emergency_speed_dps else 0.0
        self.follower = Follower(lim.no_load_speed_dps)
        # Bumpless: from what was applied while driving; from the brake, from the duty that
        # last held the table (the user's weight), so releasing the brake does not drop them.
        held = self.brake or self.duty == 0.0
        self.follower.integ = (
            self.load_duty if held else self.duty - self.follower.ff * self.ramp.vel
        )
        self.torque_first = held
        distance = abs(self.angle - lim.upright_deg)
        allow_s = distance / (RETURN_PLAN_FRACTION * lim.emergency_speed_dps) * 1.5 + 5.0
        self.return_deadline_ms = ticks_add(now_ms, int(1000 * allow_s))

    def _begin_stop(self):
        """The host's command went stale: stop on the emergency deceleration where the table
        is going, bumpless from the duty applied (the same follower the return uses)."""
        self.stopping = True
        self.ramp = None
        if self.angle is None or not self.trusted:
            return  # nothing to follow: the brake stops it
        lim = self.lim
        v = self.speed if abs(self.speed) < lim.emergency_speed_dps else 0.0
        self.ramp = Ramp(self.angle)
        self.ramp.vel = v
        self.stop_goal = self.angle + v * abs(v) / (2.0 * lim.emergency_accel_dps2)
        self.follower = Follower(lim.no_load_speed_dps)
        self.follower.integ = self.duty - self.follower.ff * v

    def _hold(self, why, resumable=False):
        self.state = P.ST_HOLD
        self.reason = why
        self.resumable = resumable
        self.resume_by = 0

    def _resume_on_pendant(self, now_ms, buttons, estop):
        """An e-stop held the board's own return; released, a fresh RETURN press resumes it
        (latched), a fresh UP press resumes it while UP stays held. Presses must begin after
        the release: a button held through it, or the release alone, moves nothing."""
        pressed = buttons & ~self.prev_buttons
        if estop or not (pressed & (BTN_RETURN | BTN_UP)):
            return
        by = BTN_RETURN if pressed & BTN_RETURN else BTN_UP
        self._start_return(now_ms, "resumed by " + ("RETURN" if by == BTN_RETURN else "UP held"))
        if self.state == P.ST_RETURN:
            self.resumable = True
            self.resume_by = by

    def _track_speed(self, now_ms):
        """Speed over the last SPEED_WINDOW samples (a difference over 10 ms is all noise)."""
        if self.angle is None or not self.trusted:
            self._hist_n = 0  # a mean that includes a bad sensor says nothing about speed
            self.speed = 0.0
            return
        i = self._hist_i
        if self._hist_n == SPEED_WINDOW:
            span = ticks_diff(now_ms, self._hist_ms[i]) / 1000.0
            if span > 0:
                self.speed = (self.angle - self._hist_angle[i]) / span
        else:
            self._hist_n += 1
        self._hist_angle[i] = self.angle
        self._hist_ms[i] = now_ms
        self._hist_i = (i + 1) % SPEED_WINDOW

    def _stop_step(self, sample, estop, dt):
        """Drive the stop of a lapsed command; False when there is nothing to drive (the host
        had the brake on or the supply off, the e-stop, no trusted angle): the host's output
        block then applies its flags with a zero target, which is the brake."""
        flags = self.cmd_flags
        driving = flags & P.FLAG_POWER and not flags & P.FLAG_BRAKE
        if estop or not driving or self.ramp is None or self.angle is None or not self.trusted:
            self.cmd_duty = 0.0
            return False
        lim = self.lim
        self.ramp.step(self.stop_goal, lim.emergency_speed_dps, lim.emergency_accel_dps2, dt)
        target = self.follower.duty(self.ramp.pos, self.ramp.vel, self.angle, dt)
        self.duty = clip_envelope(
            slew(self.duty, target, dt, lim.duty_slew_per_s), sample.primary, sample.secondary, lim
        )
        self.brake, self.relay = False, True
        if abs(self.speed) < 0.5:
            self.load_duty = self.duty
        return True

    def _follow_host(self, sample, estop, dt):
        """The host's last command, within the envelope and the slew limit. A stale command
        that could not be stopped on our own loop is the brake."""
        lim = self.lim
        flags = self.cmd_flags
        target = (
            0.0 if estop else clip_envelope(self.cmd_duty, sample.primary, sample.secondary, lim)
        )
        self.relay = bool(flags & P.FLAG_POWER)
        if not self.relay:
            target = 0.0
        self.duty = slew(self.duty, target, dt, lim.duty_slew_per_s) if target != 0.0 else 0.0
        self.brake = bool(flags & P.FLAG_BRAKE) or estop or self.stopping
        self.alarm = bool(flags & P.FLAG_ALARM)
        if not self.brake and self.relay and abs(self.speed) < 0.5:
            self.load_duty = self.duty

    def step(self, now_ms, sample):
        """One control step: returns (duty, brake, relay, alarm, heartbeat)."""
        self.update(now_ms, sample)
        return self.duty, self.brake, self.relay, self.alarm, self.heartbeat

    def update(self, now_ms, sample):
        """One control step; the outputs are left in duty, brake, relay, alarm and heartbeat
        (no tuple: the board's loop reads them, nothing is allocated for them)."""
        lim = self.lim
        dt = ticks_diff(now_ms, self.last_ms) / 1000.0
        dt = 0.0 if dt < 0 else (0.1 if dt > 0.1 else dt)
        self.last_ms = now_ms
        self.sample = sample
        self.angle = fused_angle(sample.primary, sample.secondary)
        self.trusted = trusted(sample.primary, sample.secondary, lim)
        self._track_speed(now_ms)
        estop = sample.estop_a_open or sample.estop_b_open
        st = self.state
        if st == P.ST_HOST:
            why = self.deadman.lapsed(now_ms)
            if why:
                self.stopping = False
                self._start_return(now_ms, why)
            elif not self.stopping and self.deadman.expired(now_ms):
                self._begin_stop()
        elif st == P.ST_WAIT and self.angle is not None:
            upright = abs(self.angle - lim.upright_deg) <= UPRIGHT_TOL_DEG
            silent = ticks_diff(now_ms, self.deadman.last_host_ms) >= lim.host_timeout_ms
            if (
                silent and not upright
            ):  # powered up (or the host vanished) with the user off upright
                self._start_return(now_ms, "no host")
        elif st == P.ST_HOLD and self.resumable:
            self._resume_on_pendant(now_ms, sample.buttons, estop)
        st = self.state
        if (st == P.ST_HOST or st == P.ST_RETURN) and abs(
            self.speed
        ) > lim.emergency_speed_dps + lim.overspeed_margin_dps:
            self._hold("overspeed %.1f deg/s" % self.speed)
        if self.state == P.ST_RETURN:
            if estop or (self.resume_by == BTN_UP and not sample.buttons & BTN_UP):
                if not self.torque_first:
                    self.load_duty = (
                        self.follower.integ
                    )  # what carried the user here: the resume starts from it
                if estop:
                    self._hold(
                        "e-stop during the return: release it, then press RETURN or hold UP", True
                    )
                else:
                    self._hold("return paused: UP released; press RETURN or hold UP", True)
            elif self.angle is None or not self.trusted:
                self._hold("sensors lost during the return")
            elif ticks_diff(now_ms, self.return_deadline_ms) > 0:
                self._hold("return timed out")
        st = self.state
        if st == P.ST_HOST:
            if not (self.stopping and self._stop_step(sample, estop, dt)):
                self._follow_host(sample, estop, dt)
        elif st == P.ST_RETURN and self.torque_first:
            # Starting from the brake: build the holding duty first, then release, so the
            # user's weight is carried when the brake lets go (no sag, no catch-up surge).
            hold = self.follower.integ
            self.duty = clip_envelope(
                slew(self.duty, hold, dt, lim.duty_slew_per_s),
                sample.primary,
                sample.secondary,
                lim,
            )
            self.brake, self.relay, self.alarm = True, True, True
            if abs(self.duty - hold) < 1e-6:
                self.torque_first = False
        elif st == P.ST_RETURN:
            ramp = self.ramp
            if abs(ramp.pos - self.angle) < MAX_LEAD_DEG or ramp.done:
                ramp.step(
                    lim.upright_deg,
                    RETURN_PLAN_FRACTION * lim.emergency_speed_dps,
                    lim.emergency_accel_dps2,
                    dt,
                )
            target = self.follower.duty(ramp.pos, ramp.vel, self.angle, dt)
            self.duty = clip_envelope(
                slew(self.duty, target, dt, lim.duty_slew_per_s),
                sample.primary,
                sample.secondary,
                lim,
            )
            self.brake, self.relay, self.alarm = False, True, True
            if ramp.done and abs(self.angle - lim.upright_deg) <= UPRIGHT_TOL_DEG:
                self.state = P.ST_SHUTDOWN
                self.duty, self.brake, self.relay = 0.0, True, False
        else:  # WAIT, SHUTDOWN, HOLD: brake on, supply open
            self.duty, self.brake, self.relay = 0.0, True, False
            self.alarm = st == P.ST_HOLD or (st == P.ST_SHUTDOWN and self.reason != "")
        self.prev_buttons = sample.buttons
        self.heartbeat = not self.heartbeat  # the charge pump follows the board's own loop
