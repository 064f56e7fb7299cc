"""The ``[web]`` and ``[mqtt]`` tables of a config file, and the ``--web``/``--mqtt`` options.

The core's loader leaves these application tables to us (``controller.core.config.APP_TABLES``);
every problem is reported with the file and the dotted key, like the rest of the config.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.core.config import read_toml
from controller.core.errors import InputError, Problem

DEFAULT_WEB_PORT = 8765
DEFAULT_MQTT_PORT = 1883
TOPIC_PART = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class WebConfig:
    """``[web]``: where the supervisor page listens (None: no page, the default)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_WEB_PORT


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """``[mqtt]``: the broker, and what the table publishes there."""

    host: str
    port: int = DEFAULT_MQTT_PORT
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    prefix: str = "invtable"
    discovery_prefix: str = "homeassistant"
    table_id: str = "table"
    allow_return: bool = False


@dataclass(frozen=True, slots=True)
class Supervision:
    web: WebConfig | None = None
    mqtt: MqttConfig | None = None


def parse_address(text: str, default_port: int, source: str, key: str) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST``, ``:PORT`` or ``PORT``; an IPv6 host in brackets. The host
    defaults to 127.0.0.1 (only this machine) unless a LAN address is named."""
    text = text.strip()
    host, port_text = "127.0.0.1", str(default_port)
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise InputError([Problem(source, key, f"{text!r}: unclosed '[' in an IPv6 address")])
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise InputError([Problem(source, key, f"{text!r}: expected ':PORT' after ']'")])
            port_text = rest[1:]
    elif text.isdigit():
        port_text = text
    elif ":" in text:
        host_part, port_text = text.rsplit(":", 1)
        host = host_part or host
    elif text:
        host = text
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InputError(
            [Problem(source, key, f"{text!r}: the port must be 1 .. 65535 (0: any free port)")]
        )
    if not host or any(c.isspace() for c in host):
        raise InputError([Problem(source, key, f"{text!r}: not a host name or address")])
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


WEB_KEYS = {"listen": str}
MQTT_KEYS: dict[str, type | tuple[type, ...]] = {
    "host": str,
    "port": int,
    "username": str,
    "password": str,
    "tls": bool,
    "ca_file": str,
    "prefix": str,
    "discovery_prefix": str,
    "table_id": str,
    "allow_return": bool,
}


def _check_table(
    data: Any, table: str, keys: dict[str, Any], source: str, problems: list[Problem]
) -> dict[str, Any]:
    if not isinstance(data, dict):
        problems.append(Problem(source, table, "must be a table"))
        return {}
    out = {}
    for key, value in data.items():
        if key not in keys:
            problems.append(
                Problem(
                    source, f"{table}.{key}", f"unknown key (known in [{table}]: {', '.join(keys)})"
                )
            )
        elif not isinstance(value, keys[key]) or (keys[key] is int and isinstance(value, bool)):
            problems.append(
                Problem(source, f"{table}.{key}", f"must be a {keys[key].__name__}, got {value!r}")
            )
        else:
            out[key] = value
    return out


def load_supervision(
    path: Path | None, web: str | None = None, mqtt: str | None = None
) -> Supervision:
    """The config file's ``[web]``/``[mqtt]`` with the command line's ``--web``/``--mqtt`` over
    them. InputError names every problem."""
    data = read_toml(path) if path is not None else {}
    source = str(path) if path is not None else "command line"
    problems: list[Problem] = []
    web_table = _check_table(data.get("web", {}), "web", WEB_KEYS, source, problems)
    mqtt_table = _check_table(data.get("mqtt", {}), "mqtt", MQTT_KEYS, source, problems)
    web_cfg = None
    listen, where = (
        (web, ("command line", "--web"))
        if web
        else (web_table.get("listen"), (source, "web.listen"))
    )
    if listen:
        try:
            web_cfg = WebConfig(*parse_address(listen, DEFAULT_WEB_PORT, *where))
        except InputError as exc:
            problems += exc.problems
    mqtt_cfg = None
    host = mqtt_table.get("host")
    port = mqtt_table.get("port", DEFAULT_MQTT_PORT)
    if mqtt:
        try:
            host, port = parse_address(mqtt, DEFAULT_MQTT_PORT, "command line", "--mqtt")
        except InputError as exc:
            problems += exc.problems
    elif mqtt_table and not host:
        problems.append(Problem(source, "mqtt.host", "is required in an [mqtt] table"))
    if host and (not isinstance(port, int) or not 1 <= port <= 65535):
        problems.append(Problem(source, "mqtt.port", f"{port!r}: the port must be 1 .. 65535"))
    for key in ("prefix", "discovery_prefix", "table_id"):
        value = mqtt_table.get(key)
        if value is not None and not TOPIC_PART.match(value):
            problems.append(
                Problem(source, f"mqtt.{key}", f"{value!r}: 1-64 letters, digits, '_' or '-'")
            )
    if ("username" in mqtt_table) != ("password" in mqtt_table):
        problems.append(Problem(source, "mqtt.password", "username and password go together"))
    ca = mqtt_table.get("ca_file")
    if ca is not None and not Path(ca).is_file():
        problems.append(Problem(source, "mqtt.ca_file", f"{ca}: no such file"))
    if problems:
        raise InputError(problems)
    if host:
        fields = {k: v for k, v in mqtt_table.items() if k not in ("host", "port")}
        mqtt_cfg = MqttConfig(host=host, port=port, **fields)
    return Supervision(web_cfg, mqtt_cfg)
