"""The table on an MQTT broker, with Home Assistant discovery (paho-mqtt).

Everything runs on paho's network thread and one publisher thread: the control loop only
publishes its Status to the board, so a lost or slow broker never touches it (paho
reconnects in the background; while it is away nothing queues up without bound).

Topics (``prefix`` = ``invtable``, ``id`` = ``[mqtt] table_id``):

- ``invtable/<id>/availability``: ``online``, and the last will ``offline`` (retained);
- ``invtable/<id>/state``: the Status as JSON (retained), at each change, at most 2 per second;
- ``invtable/<id>/command/return``: ``PRESS`` presses RETURN, only with ``allow_return = true``;
- ``homeassistant/<component>/invtable_<id>/<object>/config``: retained discovery configs.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable

from controller.app.supervisor.auth import RateLimiter
from controller.app.supervisor.config import MqttConfig
from controller.app.supervisor.remote import RemotePendant
from controller.app.supervisor.status import StatusBoard
from controller.core.clock import monotonic

PUBLISH_EVERY_S = 0.5
KEEPALIVE_S = 30


class MqttBridge:
    def __init__(
        self,
        cfg: MqttConfig,
        board: StatusBoard,
        pendant: RemotePendant,
        log: Callable[..., None] | None = None,
    ) -> None:
        import paho.mqtt.client as mqtt

        self.cfg, self.board, self.pendant = cfg, board, pendant
        self._log = log
        self.base = f"{cfg.prefix}/{cfg.table_id}"
        self.availability = f"{self.base}/availability"
        self.state_topic = f"{self.base}/state"
        self.return_topic = f"{self.base}/command/return"
        self.presses = RateLimiter(rate=0.5, burst=3, clock=monotonic)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        client = self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"invtable-{cfg.table_id}"
        )
        client.will_set(self.availability, "offline", qos=1, retain=True)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            client.tls_set(ca_certs=cfg.ca_file)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(64)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message

    def log(self, event: str, **fields: Any) -> None:
        """Never raises: an exception in a paho callback would end paho's network thread."""
        if self._log is not None:
            try:
                self._log(event, **fields)
            except Exception:
                pass

    # ------------------------------------------------------------------ discovery
    def discovery(self) -> dict[str, dict[str, Any] | None]:
        """topic -> config (None: remove it, the RETURN button when it is not allowed)."""
        tid = f"invtable_{self.cfg.table_id}"
        device = {
            "identifiers": [tid],
            "name": f"Inversion table {self.cfg.table_id}",
            "manufacturer": "invtable",
            "model": "motorized inversion table",
        }
        common = {"availability_topic": self.availability, "device": device}
        root = self.cfg.discovery_prefix

        def entity(component: str, obj: str, **fields: Any) -> tuple[str, dict[str, Any]]:
            body = {"unique_id": f"{tid}_{obj}", "object_id": f"{tid}_{obj}", **common, **fields}
            return f"{root}/{component}/{tid}/{obj}/config", body

        items: dict[str, dict[str, Any] | None] = dict(
            [
                entity(
                    "sensor",
                    "angle",
                    name="Angle",
                    state_topic=self.state_topic,
                    value_template="{{ value_json.angle_deg }}",
                    unit_of_measurement="°",
                ),
                entity(
                    "sensor",
                    "state",
                    name="State",
                    state_topic=self.state_topic,
                    value_template="{{ value_json.state }}",
                ),
                entity(
                    "sensor",
                    "time_off_upright",
                    name="Time off upright",
                    state_topic=self.state_topic,
                    value_template="{{ value_json.session_s }}",
                    unit_of_measurement="s",
                    device_class="duration",
                ),
                entity(
                    "binary_sensor",
                    "alarm",
                    name="Alarm",
                    state_topic=self.state_topic,
                    value_template="{{ 'ON' if value_json.alarm else 'OFF' }}",
                    device_class="problem",
                ),
            ]
        )
        topic, button = entity(
            "button",
            "return",
            name="RETURN upright",
            command_topic=self.return_topic,
            payload_press="PRESS",
        )
        items[topic] = button if self.cfg.allow_return else None
        return items

    # ------------------------------------------------------------------ paho callbacks
    def _on_connect(self, client: Any, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.log("mqtt", message=f"broker refused the connection: {reason}")
            return
        self.log("mqtt", message=f"connected to {self.cfg.host}:{self.cfg.port}")
        for topic, body in self.discovery().items():
            client.publish(topic, "" if body is None else json.dumps(body), qos=1, retain=True)
        client.publish(self.availability, "online", qos=1, retain=True)
        if self.cfg.allow_return:
            client.subscribe(self.return_topic, qos=1)
        self._publish_state(self.board.latest().to_json())

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if not self._stop.is_set():
            self.log("mqtt", message=f"broker lost ({reason}); reconnecting in the background")

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        if msg.topic != self.return_topic or not self.cfg.allow_return:
            return
        if msg.payload.strip() != b"PRESS":
            self.log("mqtt", message=f"ignored {msg.payload[:32]!r} on {msg.topic}")
            return
        if not self.presses.allow("mqtt"):
            self.log("mqtt", message="RETURN ignored: too many presses")
            return
        if not self.pendant.offer("return", f"mqtt@{self.cfg.host}"):
            self.log("mqtt", message="RETURN not taken: the controller's queue is full")

    # ------------------------------------------------------------------ the publisher
    def _publish_state(self, status: dict[str, Any]) -> None:
        self.client.publish(self.state_topic, json.dumps(status), qos=0, retain=True)

    def _publisher(self) -> None:
        last: tuple[Any, ...] | None = None
        while not self._stop.wait(PUBLISH_EVERY_S):
            status = self.board.latest().to_json()
            key = tuple(v for k, v in status.items() if k not in ("seq", "t_s"))
            if key != last and self.client.is_connected():
                self._publish_state(status)
                last = key

    def start(self) -> None:
        """Never waits for the broker: the connection is made (and remade) in the background."""
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._publisher, name="invtable-mqtt", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """A clean stop says ``offline`` itself (a crash leaves it to the last will)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        try:
            if self.client.is_connected():
                self.client.publish(
                    self.availability, "offline", qos=1, retain=True
                ).wait_for_publish(timeout=2.0)
            self.client.disconnect()
        finally:
            self.client.loop_stop()
