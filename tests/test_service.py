"""The service on hardware, without a Pi: gpiozero's MockFactory via its environment
variables, systemd's notify socket faked with a datagram socket, signals for real."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

MOCK_ENV = {"GPIOZERO_PIN_FACTORY": "mock", "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}


def gpio_config(tmp_path: Path) -> Path:
    path = tmp_path / "gpio.toml"
    path.write_text('[hardware]\nbackend = "gpio"\n')
    return path


def fake_systemd(tmp_path: Path, watchdog_usec: int) -> tuple[socket.socket, dict]:
    """A datagram socket standing in for systemd's notify socket, and the environment that
    points the service at it with a watchdog period."""
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(10.0)
    return sock, {
        **os.environ,
        **MOCK_ENV,
        "NOTIFY_SOCKET": str(sock_path),
        "WATCHDOG_USEC": str(watchdog_usec),
    }


def test_service_notifies_ready_and_watchdog_and_stops_safe_on_sigterm(tmp_path: Path) -> None:
    sock, env = fake_systemd(tmp_path, 200000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "run", "--config", str(gpio_config(tmp_path))],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        messages = []
        while (
            sum(m == "WATCHDOG=1" for m in messages) < 6
        ):  # 0.5 s of pings: past the boot self-test
            messages.append(sock.recv(4096).decode())
        assert messages[0].startswith("READY=1")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    log = [json.loads(line) for line in stdout.splitlines()]
    assert log[-2]["event"] == "stopping" and log[-2]["reason"] == "SIGTERM"
    # Read back from the output pins before they were released: motor off, brake on, relay open.
    assert log[-1] == {"event": "stopped", "motor_cmd": 0.0, "brake": True, "motor_power": False}
    # Every transition and fault is logged with its reason (nothing is wired: the self-test fails).
    assert any(e["event"] == "transition" for e in log)
    assert any(e["event"] == "fault" and "selftest_failed" in e["message"] for e in log)


class StepClock:
    """The service loop's clock, injected: each wait returns at its deadline plus a tick's
    compute time; ``stall_at`` makes one wait return ``stall_s`` late (a GC pause, a slow
    disk). The loop's cadence is then exact, whatever else the machine is doing."""

    def __init__(
        self, stall_at: float | None = None, stall_s: float = 0.0, cost_s: float = 0.0005
    ) -> None:
        self.t = 0.0
        self.stall_at, self.stall_s, self.cost_s = stall_at, stall_s, cost_s

    def now(self) -> float:
        return self.t

    def wait_until(self, t: float) -> None:
        self.t = max(self.t + self.cost_s, t)
        if self.stall_at is not None and t >= self.stall_at:
            self.t += self.stall_s
            self.stall_at = None


class FakeNotifier:
    """systemd's notify socket, in memory: what was sent and when (by the injected clock)."""

    def __init__(self, clock: StepClock, watchdog_interval_s: float = 0.2) -> None:
        self.clock = clock
        self.watchdog_interval_s = watchdog_interval_s
        self.sent: list[tuple[float, str]] = []

    def notify(self, message: str) -> bool:
        self.sent.append((self.clock.now(), message))
        return True

    def close(self) -> None:
        pass


def run_in_process(clock: StepClock, duration: float) -> tuple[FakeNotifier, list[dict]]:
    from controller.app.service import JsonLog, run_service
    from controller.core.config import Config
    from sim.table import SimTable

    cfg = Config()
    notifier = FakeNotifier(clock)
    out = io.StringIO()
    code = run_service(
        cfg,
        duration=duration,
        log=JsonLog(out),
        clock=clock,
        notifier=notifier,  # type: ignore[arg-type]
        make_hardware=lambda: SimTable(
            angle_deg=cfg.limits.upright_deg, upright_deg=cfg.limits.upright_deg
        ),
    )
    assert code == 0
    return notifier, [json.loads(line) for line in out.getvalue().splitlines()]


def test_watchdog_pings_come_from_the_loop_at_half_the_period() -> None:
    """One ping per watchdog interval (0.2 s, half of WATCHDOG_USEC=400000), sent from the
    loop's own ticks: exact with an injected clock (the subprocess version of this test
    counted pings against the wall clock of a shared machine)."""
    clock = StepClock()
    notifier, log = run_in_process(clock, 1.0)
    messages = [m for _, m in notifier.sent]
    assert messages[0].startswith("READY=1") and messages[-1] == "STOPPING=1"
    pings = [t for t, m in notifier.sent if m == "WATCHDOG=1"]
    assert len(pings) == 5  # at 0, 0.2, 0.4, 0.6 and 0.8 s of a 1 s loop
    assert all(0.2 <= b - a <= 0.2 + 0.01 for a, b in zip(pings, pings[1:], strict=False)), pings
    stopping = next(e for e in log if e["event"] == "stopping")
    assert stopping["ticks"] == 100 and stopping["late_ticks"] == 0


def test_a_stalled_loop_stops_the_pings_and_is_logged_not_a_fault() -> None:
    """A 0.5 s stall (longer than the hardware dead-man, shorter than systemd's watchdog):
    no ping goes out during it (the pings come only from the loop), the late ticks are
    counted in the log, and the controller latches nothing for the lateness itself."""
    clock = StepClock(stall_at=0.3, stall_s=0.5)
    notifier, log = run_in_process(clock, 1.5)
    pings = [t for t, m in notifier.sent if m == "WATCHDOG=1"]
    assert not any(0.3 < t < 0.8 for t in pings), pings
    stopping = next(e for e in log if e["event"] == "stopping")
    assert (
        stopping["ticks"] == 150
        and stopping["late_ticks"] >= 40
        and stopping["max_late_ms"] == pytest.approx(500.0)
    )
    assert not any(e["event"] == "fault" and "runaway" in e["message"] for e in log), log


def test_run_on_gpio_without_a_pi_says_why(tmp_path: Path) -> None:
    env_clean = {k: v for k, v in os.environ.items() if not k.startswith("GPIOZERO")}
    res = subprocess.run(
        [sys.executable, "-m", "controller", "run", "--config", str(gpio_config(tmp_path))],
        cwd=ROOT,
        env=env_clean,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 2
    assert (
        "hardware.backend" in res.stderr
        and "Raspberry Pi" in res.stderr
        and "Traceback" not in res.stderr
    )


def test_io_shows_inputs_and_pulses_with_the_relay_open(tmp_path: Path) -> None:
    env = {**os.environ, **MOCK_ENV}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller",
            "io",
            "--config",
            str(gpio_config(tmp_path)),
            "--duration",
            "0.25",
            "--pulse",
            "buzzer",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0, res.stderr
    assert (
        "estop=PRESSED/OPEN" in res.stdout and "pulse buzzer=on" in res.stdout
    )  # nothing wired: open


def test_io_refuses_to_pulse_the_brake_or_the_relay() -> None:
    for output in ("brake_release", "motor_relay"):
        res = run_cli("io", "--pulse", output)
        assert res.code == 2 and f"--pulse: {output}" in res.stderr


def test_install_service_writes_the_unit_and_never_replaces_a_config(tmp_path: Path) -> None:
    res = run_cli("install-service", "--root", tmp_path)
    assert res.code == 0, res.stderr
    unit = (tmp_path / "etc/systemd/system/invtable.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=1s",
        "Restart=on-failure",
        "User=invtable",
        "SupplementaryGroups=gpio spi",
        "ExecStart=",
        "run --config /etc/invtable/config.toml",
    ):
        assert line in unit, line
    config = tmp_path / "etc/invtable/config.toml"
    assert run_cli("config", "check", config).code == 0
    config.write_text("# mine\n")
    assert run_cli("install-service", "--root", tmp_path).code == 0
    assert config.read_text() == "# mine\n"  # nothing lost


def test_service_on_the_serial_backend_without_a_board_latches_link_lost(tmp_path: Path) -> None:
    """No motion board on the line (pyserial's loop:// echoes our own frames back): the
    handshake fails, nothing is obeyed, the controller holds with the link fault."""
    cfg = tmp_path / "serial.toml"
    cfg.write_text('[hardware]\nbackend = "serial"\n[hardware.serial]\nurl = "loop://"\n')
    res = subprocess.run(
        [sys.executable, "-m", "controller", "run", "--config", str(cfg), "--duration", "0.5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0, res.stderr
    log = [json.loads(line) for line in res.stdout.splitlines()]
    assert any(e["event"] == "fault" and "link_lost" in e["message"] for e in log), log
    assert log[-1]["event"] == "stopping" and log[-1]["state"] == "fault"
