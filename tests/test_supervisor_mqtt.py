"""Issue 15: the table on a real MQTT broker (Debian's ``mosquitto``) with Home Assistant
discovery: retained discovery configs, state updates, RETURN only when allowed, the last
will on a killed service, and a broker that is gone changing nothing the controller does."""

from __future__ import annotations

import json
import queue
import select
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from controller.app.supervisor.config import MqttConfig
from controller.app.supervisor.mqtt import MqttBridge
from controller.app.supervisor.remote import RemotePendant
from controller.app.supervisor.status import Status, StatusBoard
from tests.conftest import ROOT

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
needs_broker = pytest.mark.skipif(
    MOSQUITTO is None,
    reason="the MQTT tests need Debian's mosquitto broker: sudo apt-get install mosquitto "
    "(.ci/run installs it when root)",
)
WAIT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [str(MOSQUITTO), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(400):  # until the broker process listens (at most ~20 s)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, "mosquitto exited at start"
                select.select([], [], [], 0.05)
        else:
            raise AssertionError("mosquitto did not start listening")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Listener:
    """A Home Assistant stand-in: every message on the topics, in a queue."""

    def __init__(self, port: int, *topics: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="")
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.client.on_connect = lambda c, *_: [c.subscribe(t, qos=1) for t in topics]
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def until(self, want: Any, what: str) -> tuple[str, bytes, bool]:
        while True:
            try:
                msg = self.messages.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"no MQTT message: {what}") from None
            if want(*msg):
                return msg

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def bridge(port: int, allow_return: bool) -> tuple[MqttBridge, StatusBoard, RemotePendant]:
    board, pendant = StatusBoard(), RemotePendant()
    b = MqttBridge(
        MqttConfig(host="127.0.0.1", port=port, table_id="t1", allow_return=allow_return),
        board,
        pendant,
    )
    return b, board, pendant


@needs_broker
def test_discovery_is_retained_and_the_state_follows(broker: int) -> None:
    b, board, _ = bridge(broker, allow_return=False)
    first = Listener(broker, "invtable/t1/availability")
    b.start()
    try:
        first.until(lambda t, p, r: p == b"online", "online")
        first.close()
        with board._lock:
            board._status = Status(state="hold", angle_deg=25.0, session_s=40.0, seq=7)
        # A late subscriber (Home Assistant restarting) still gets every config: retained.
        late = Listener(broker, "homeassistant/#", "invtable/t1/state")
        configs: dict[str, dict] = {}
        while len(configs) < 4:
            topic, payload, retained = late.until(
                lambda t, p, r: t.startswith("homeassistant/"), "discovery configs"
            )
            assert retained
            configs[topic] = json.loads(payload)
        assert set(configs) == {
            "homeassistant/sensor/invtable_t1/angle/config",
            "homeassistant/sensor/invtable_t1/state/config",
            "homeassistant/sensor/invtable_t1/time_off_upright/config",
            "homeassistant/binary_sensor/invtable_t1/alarm/config",
        }  # no RETURN button without allow_return
        angle = configs["homeassistant/sensor/invtable_t1/angle/config"]
        assert angle["state_topic"] == "invtable/t1/state"
        assert angle["availability_topic"] == "invtable/t1/availability"
        _, payload, _ = late.until(
            lambda t, p, r: t == "invtable/t1/state" and json.loads(p)["state"] == "hold",
            "the state",
        )
        assert json.loads(payload)["angle_deg"] == 25.0
        with board._lock:
            board._status = Status(state="returning", angle_deg=-10.0, seq=8)
        late.until(
            lambda t, p, r: t == "invtable/t1/state" and json.loads(p)["state"] == "returning",
            "the state's update",
        )
        late.close()
    finally:
        b.stop()


@needs_broker
def test_return_button_only_when_allowed_and_it_reaches_the_pendant_queue(broker: int) -> None:
    b, _, pendant = bridge(broker, allow_return=True)
    ha = Listener(broker, "homeassistant/button/#", "invtable/t1/availability")
    b.start()
    try:
        _, payload, _ = ha.until(lambda t, p, r: t.startswith("homeassistant/button/"), "button")
        button = json.loads(payload)
        assert button["command_topic"] == "invtable/t1/command/return"
        ha.until(lambda t, p, r: p == b"online", "online")
        ha.client.publish("invtable/t1/command/return", "START", qos=1).wait_for_publish(10)
        ha.client.publish("invtable/t1/command/return", "PRESS", qos=1).wait_for_publish(10)
        # the bridge's thread puts the press in the bounded queue; the next tick takes it
        press = pendant._queue.get(timeout=WAIT_S)
        assert pendant._queue.empty()  # "START" was not a press of anything
        presses = [press]
        assert [(p.button, p.who) for p in presses] == [("return", "mqtt@127.0.0.1")]
    finally:
        ha.close()
        b.stop()


@needs_broker
def test_the_last_will_says_offline_when_the_service_is_killed(broker: int, tmp_path: Path) -> None:
    events = tmp_path / "events.json"
    events.write_text("[]")
    ha = Listener(broker, "invtable/t1/#")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker}\ntable_id = "t1"\n')
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "supervised_run.py"),
            str(events),
            "--config",
            str(cfg),
            "--data",
            str(tmp_path / "d"),
            "--duration",
            "600",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        ha.until(lambda t, p, r: t.endswith("availability") and p == b"online", "online")
        ha.until(lambda t, p, r: t.endswith("/state") and json.loads(p)["state"] == "idle", "idle")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        _, _, _ = ha.until(
            lambda t, p, r: t.endswith("availability") and p == b"offline", "the last will"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
        ha.close()


def test_a_broker_that_is_gone_changes_nothing_the_controller_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same scripted session in simulated time, with and without ``--mqtt`` to a port
    where no broker listens: the same transitions at the same instants."""
    import functools

    import controller.app.simcmd as runsim
    from controller.app import cli
    from controller.core.clock import SimClock
    from controller.core.config import Config
    from sim.runner import RunResult
    from sim.scenario import Event, Scenario
    from tests.test_supervisor import ScriptedPendant, tap

    real = runsim.run_bench
    runs = []
    for extra in ([], ["--mqtt", f"127.0.0.1:{free_port()}"]):
        result = RunResult(
            Scenario(
                name="bench",
                duration_s=0.0,
                seed=0,
                mass_kg=80.0,
                height_cm=175.0,
                config=Config(),
                events=(),
            )
        )
        script = [(0.5, Event(0.5, "set", "ankle_lock", True)), *tap(1.0, "start")]
        monkeypatch.setattr(
            runsim,
            "run_bench",
            functools.partial(
                real, clock=SimClock(), pendant=ScriptedPendant(script), result=result
            ),
        )
        data = tmp_path / f"d{len(runs)}"
        assert cli.main(["run", "--data", str(data), "--duration", "60", *extra]) == 0
        runs.append([(round(t.t_s, 3), t.dest) for t in result.transitions])
    assert runs[0] == runs[1] and "ramp" in [s for _, s in runs[0]]
