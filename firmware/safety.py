"""The board's own limits and dead-man, pure functions and small state: what it enforces
whatever the host asks."""

try:
    from firmware.ticks import ticks_add, ticks_diff
except ImportError:
    from ticks import ticks_add, ticks_diff


class Limits:
    """The board's envelope. Reported to the host in the handshake."""

    def __init__(
        self,
        upright_deg=-80.0,
        max_angle_deg=60.0,
        emergency_speed_dps=8.0,
        emergency_accel_dps2=8.0,
        host_timeout_ms=300,
        max_validity_ms=200,
        disagree_deg=2.0,
        overspeed_margin_dps=3.0,
        duty_slew_per_s=20.0,
        no_load_speed_dps=20.0,
    ):
        self.upright_deg = upright_deg
        self.max_angle_deg = max_angle_deg
        self.emergency_speed_dps = emergency_speed_dps
        self.emergency_accel_dps2 = emergency_accel_dps2
        self.host_timeout_ms = host_timeout_ms
        self.max_validity_ms = max_validity_ms
        self.disagree_deg = disagree_deg
        self.overspeed_margin_dps = overspeed_margin_dps
        self.duty_slew_per_s = duty_slew_per_s
        self.no_load_speed_dps = no_load_speed_dps


def clip_envelope(duty, primary, secondary, lim):
    """No drive further out of the envelope, judged on the safe side with two sensors: toward
    inversion stops if either says it is past max_angle; toward upright stops only if every
    reading says it is past the head-up stop (a bad sensor never blocks the way up)."""
    if primary is None:
        if secondary is None:
            return 0.0 if duty > 0.0 else duty
        hi = secondary
    elif secondary is None or primary >= secondary:
        hi = primary
    else:
        hi = secondary  # the highest reading (no list: nothing allocated per step)
    if duty > 0.0 and hi >= lim.max_angle_deg + 0.5:
        return 0.0
    if duty < 0.0 and hi <= lim.upright_deg - 3.0:
        return 0.0
    return duty


def slew(previous, target, dt, rate):
    """Move from previous toward target by at most rate*dt (duty per second)."""
    step = rate * dt
    if target > previous + step:
        return previous + step
    if target < previous - step:
        return previous - step
    return target


def fuse(primary, secondary, lim):
    """(angle, trusted): the mean when both agree; one alone is used but not trusted."""
    return fused_angle(primary, secondary), trusted(primary, secondary, lim)


def fused_angle(primary, secondary):
    """``fuse``'s angle alone (no tuple: the board's step allocates nothing for it)."""
    if primary is None:
        return secondary
    if secondary is None:
        return primary
    return 0.5 * (primary + secondary)


def trusted(primary, secondary, lim):
    """``fuse``'s verdict alone: both sensors read and agree."""
    if primary is None or secondary is None:
        return False
    return abs(primary - secondary) <= lim.disagree_deg


class Deadman:
    """Host supervision, two clocks. A command whose validity lapsed is stale: the board stops
    driving on it (``expired``). Only a host silent for host_timeout_ms is lost (``lapsed``):
    the board then returns alone. A host loop late by 150 ms (a garbage collection, a slow SD
    card) thus stops the motion for a moment instead of ending the session."""

    def __init__(self, now_ms, lim):
        self.lim = lim
        self.last_host_ms = now_ms
        self.expiry_ms = None

    def heard(self, now_ms):
        self.last_host_ms = now_ms

    def command(self, now_ms, validity_ms):
        if validity_ms > self.lim.max_validity_ms:
            validity_ms = self.lim.max_validity_ms
        self.expiry_ms = ticks_add(now_ms, validity_ms)

    def lapsed(self, now_ms):
        """None, or why the host is no longer in charge."""
        if ticks_diff(now_ms, self.last_host_ms) >= self.lim.host_timeout_ms:
            return "host silent"
        return None

    def expired(self, now_ms):
        """True when the last command's validity has lapsed: it must not be driven on."""
        return self.expiry_ms is not None and ticks_diff(now_ms, self.expiry_ms) >= 0
