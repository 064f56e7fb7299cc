"""The service on hardware, without a Pi: gpiozero's MockFactory via its environment
variables, systemd's notify socket faked with a datagram socket, signals for real."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

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
    return sock, {**os.environ, **MOCK_ENV, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": str(watchdog_usec)}


def test_service_notifies_ready_and_watchdog_and_stops_safe_on_sigterm(tmp_path: Path) -> None:
    sock, env = fake_systemd(tmp_path, 200000)
    proc = subprocess.Popen([sys.executable, "-m", "controller", "run", "--config", str(gpio_config(tmp_path))],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        messages = []
        while sum(m == "WATCHDOG=1" for m in messages) < 6:  # 0.5 s of pings: past the boot self-test
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


def test_watchdog_pings_come_from_the_loop_at_half_the_period(tmp_path: Path) -> None:
    sock, env = fake_systemd(tmp_path, 400000)
    res = subprocess.run([sys.executable, "-m", "controller", "run", "--config", str(gpio_config(tmp_path)),
                          "--duration", "1.0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    messages = []
    sock.settimeout(0.5)
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except TimeoutError:
        pass
    sock.close()
    pings = messages.count("WATCHDOG=1")
    assert 3 <= pings <= 7, messages  # one per 0.2 s over 1 s of loop (not asserted tighter: timing)
    assert messages[-1] == "STOPPING=1"


def test_run_on_gpio_without_a_pi_says_why(tmp_path: Path) -> None:
    env_clean = {k: v for k, v in os.environ.items() if not k.startswith("GPIOZERO")}
    res = subprocess.run([sys.executable, "-m", "controller", "run", "--config", str(gpio_config(tmp_path))],
                         cwd=ROOT, env=env_clean, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "hardware.backend" in res.stderr and "Raspberry Pi" in res.stderr and "Traceback" not in res.stderr


def test_io_shows_inputs_and_pulses_with_the_relay_open(tmp_path: Path) -> None:
    env = {**os.environ, **MOCK_ENV}
    res = subprocess.run([sys.executable, "-m", "controller", "io", "--config", str(gpio_config(tmp_path)),
                          "--duration", "0.25", "--pulse", "buzzer"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert "estop=PRESSED/OPEN" in res.stdout and "pulse buzzer=on" in res.stdout  # nothing wired: open


def test_io_refuses_to_pulse_the_brake_or_the_relay() -> None:
    for output in ("brake_release", "motor_relay"):
        res = run_cli("io", "--pulse", output)
        assert res.code == 2 and f"--pulse: {output}" in res.stderr


def test_install_service_writes_the_unit_and_never_replaces_a_config(tmp_path: Path) -> None:
    res = run_cli("install-service", "--root", tmp_path)
    assert res.code == 0, res.stderr
    unit = (tmp_path / "etc/systemd/system/invtable.service").read_text()
    for line in ("Type=notify", "WatchdogSec=1s", "Restart=on-failure", "User=invtable",
                 "SupplementaryGroups=gpio spi", "ExecStart=", "run --config /etc/invtable/config.toml"):
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
    res = subprocess.run([sys.executable, "-m", "controller", "run", "--config", str(cfg), "--duration", "0.5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    log = [json.loads(line) for line in res.stdout.splitlines()]
    assert any(e["event"] == "fault" and "link_lost" in e["message"] for e in log), log
    assert log[-1]["event"] == "stopping" and log[-1]["state"] == "fault"
