"""The supervisor as the control loop sees it: two calls per tick, neither of which waits.

``merge(now, inputs)`` (the service) or ``events(now)`` (the simulator) take the remote
presses the way the pendant's come in; ``publish(now, ctrl, alarm, brake)`` hands the
servers the table's picture. Both swallow their own errors: supervision is an extra, and
it must never be the reason the table stops coming back.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any, Callable, TextIO

from controller.app.supervisor.config import Supervision, is_loopback
from controller.app.supervisor.remote import Press, RemotePendant
from controller.app.supervisor.status import StatusBoard
from controller.core.errors import InputError
from hal.interfaces import Inputs
from sim.scenario import Event

Log = Callable[..., None]
SWITCH_INTERVAL_S = 0.001


class Supervisor:
    def __init__(
        self,
        supervision: Supervision,
        data: Path,
        log: Log,
        user: str | None = None,
        program: str | None = None,
        audit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.supervision, self.data, self.log = supervision, data, log
        self.history_audit = audit  # the history's audit log, when a session is recorded
        self.board = StatusBoard(user, program)
        self.pendant = RemotePendant(audit=self._audit)
        self.server: Any = None
        self.bridge: Any = None

    def _audit(self, now: float, press: Press) -> None:
        record = {"t_s": round(now, 3), "button": press.button, "who": press.who}
        self.log("remote_press", **record)
        if self.history_audit is not None:
            self.history_audit({"event": "remote_press", **record})

    # ------------------------------------------------------------------ start and stop
    def start(self, out: TextIO = sys.stdout) -> list[str]:
        """Bind the page and connect the bridge (in the background). Returns what could not
        start (an address in use, a token file others can read, a bad TLS file ...): the
        caller runs the table without that part, since supervision is never a reason for the
        table not to bring its person upright."""
        # The servers share the interpreter with the control loop: a thread that wants the lock
        # gets it after at most this long (5 ms by default), so the loop waits 1 ms at most.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        failed: list[str] = []
        web = self.supervision.web
        if web is not None:
            try:
                self._start_web(out)
            except InputError as exc:
                failed += [str(p) for p in exc.problems]
            except Exception as exc:  # OSError: the address is in use or not this machine's
                reason = getattr(exc, "strerror", None) or exc
                failed.append(f"--web: cannot listen on {web.host}:{web.port}: {reason}")
            if failed and self.server is not None:
                self.server.stop()
                self.server = None
        if self.supervision.mqtt is not None:
            try:
                from controller.app.supervisor.mqtt import MqttBridge

                self.bridge = MqttBridge(self.supervision.mqtt, self.board, self.pendant, self.log)
                self.bridge.start()
            except Exception as exc:  # a TLS file paho cannot use, ...
                self.bridge = None
                failed.append(f"--mqtt: {type(exc).__name__}: {exc}")
        return failed

    def _start_web(self, out: TextIO) -> None:
        from controller.app.supervisor.auth import load_tokens
        from controller.app.supervisor.server import SupervisorServer

        web = self.supervision.web
        assert web is not None
        tokens = load_tokens(self.data)
        self.server = SupervisorServer(
            web.host, web.port, self.board, self.pendant, tokens, log=self.log
        )
        self.server.start()
        self._announce(tokens, out)

    def _announce(self, tokens: Any, out: TextIO) -> None:
        from controller.app.supervisor.auth import TOKEN_FILES

        web = self.supervision.web
        assert web is not None and self.server is not None
        host = web.host if web.host not in ("0.0.0.0", "::", "") else socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        url = f"http://{host}:{self.server.port}/"
        print(f"invtable: supervisor page at {url}", file=out, flush=True)
        if not is_loopback(web.host):
            print(
                "invtable: the page is open to the network (plain HTTP): use it on a trusted LAN",
                file=out,
                flush=True,
            )
        if "operator" in tokens.created:
            # Printed once, when the token is made; afterwards it is only in the file.
            link = f"{url}#token={tokens.operator}"
            print(
                f"invtable: new supervisor token in {self.data / TOKEN_FILES['operator']} "
                f"(shown only now): open {link}",
                file=out,
            )
            try:
                import qrcode

                qr = qrcode.QRCode(border=1)
                qr.add_data(link)
                qr.print_ascii(out=out, invert=True)
            except Exception as exc:  # the link above still works
                print(f"invtable: (no QR code: {exc})", file=out)
            print(
                f"invtable: viewer token (may watch, not press) in "
                f"{self.data / TOKEN_FILES['viewer']}",
                file=out,
                flush=True,
            )

    def close(self) -> None:
        for part in (self.bridge, self.server):
            if part is not None:
                try:
                    part.stop()
                except Exception as exc:  # stopping must go on
                    self.log("error", message=f"supervisor stop: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ the control thread
    def merge(self, now: float, inputs: Inputs) -> Inputs:
        """The service: remote presses held in the pendant's buttons for a tap."""
        try:
            self.pendant.step(now)
            held = self.pendant.held
        except Exception:
            return inputs
        return inputs._replace(buttons=inputs.buttons | held) if held else inputs

    def events(self, now: float) -> list[Event]:
        """The simulator: remote presses as the world events a pendant makes."""
        try:
            pressed, released = self.pendant.step(now)
        except Exception:
            return []
        return [Event(now, "press", p.button) for p in pressed] + [
            Event(now, "release", b) for b in released
        ]

    def publish(self, now: float, ctrl: Any, alarm: bool, brake: bool) -> None:
        self.board.publish(now, ctrl, alarm, brake)
