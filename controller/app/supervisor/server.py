"""The supervisor page and its JSON API (aiohttp), on its own thread and event loop.

The control loop never waits for it: the server reads the latest ``Status`` from the board
and offers presses to the bounded ``RemotePendant`` queue, nothing more. Routes (and only
these; anything else is 404, a wrong method 405, and no GET changes anything):

- ``GET /``, ``/page.js``, ``/page.css``: the page (static, holds no data);
- ``GET /api/status``: the status (viewer or operator token);
- ``GET /api/stream``: Server-Sent Events, the status at every change, at least every 0.5 s;
- ``POST /api/return``, ``POST /api/stop``: the operator token and a fresh ``request_id``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from importlib import resources
from typing import Any, Callable

from aiohttp import web

from controller.app.supervisor.auth import OPERATOR, RateLimiter, ReplayGuard, Tokens
from controller.app.supervisor.remote import RemotePendant
from controller.app.supervisor.status import Status, StatusBoard
from controller.core.clock import monotonic

STREAM_EVERY_S = 0.1  # how often the feed looks for a new status
KEEPALIVE_S = 0.5  # an unchanged status is sent again this often: the page's watchdog is 1.5 s
MAX_STREAMS = 64
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
}
STATIC = {
    "/": ("page.html", "text/html"),
    "/page.js": ("page.js", "text/javascript"),
    "/page.css": ("page.css", "text/css"),
}


def _static(name: str) -> bytes:
    return (resources.files("controller.app.supervisor") / "static" / name).read_bytes()


class SupervisorServer:
    """``start()`` binds (or raises OSError) and serves on a daemon thread; ``stop()`` ends it."""

    def __init__(
        self,
        host: str,
        port: int,
        board: StatusBoard,
        pendant: RemotePendant,
        tokens: Tokens,
        clock: Callable[[], float] = monotonic,
        log: Callable[..., None] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.board, self.pendant, self.tokens = board, pendant, tokens
        self.log = log or (lambda event, **fields: None)
        self.actions = RateLimiter(rate=0.5, burst=5, clock=clock)  # presses per client
        self.requests = RateLimiter(rate=20.0, burst=40, clock=clock)  # any API call per client
        self.failures = RateLimiter(rate=0.2, burst=10, clock=clock)  # bad tokens per client
        self.replay = ReplayGuard()
        self.streams = 0
        self._events: dict[tuple[int, str], bytes] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._assets = {path: (_static(name), ctype) for path, (name, ctype) in STATIC.items()}

    # ------------------------------------------------------------------ the app
    def app(self) -> web.Application:
        app = web.Application(client_max_size=4096, middlewares=[self._headers])
        for path in STATIC:
            app.router.add_get(path, self._asset)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/stream", self._stream)
        app.router.add_post("/api/return", self._action)
        app.router.add_post("/api/stop", self._action)
        return app

    @web.middleware
    async def _headers(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except web.HTTPException as exc:  # 404, 405, 413: aiohttp's own, with our headers
            for k, v in HEADERS.items():
                exc.headers.setdefault(k, v)
            raise
        for k, v in HEADERS.items():
            resp.headers.setdefault(k, v)
        return resp

    async def _asset(self, request: web.Request) -> web.Response:
        body, ctype = self._assets[request.path]
        return web.Response(body=body, content_type=ctype, charset="utf-8")

    def _client(self, request: web.Request) -> str:
        return request.remote or "?"

    def _auth(self, request: web.Request, need: str | None) -> str | web.Response:
        """The caller's role, or the refusal: 429 past the rate, 401 without a valid token,
        403 for a viewer asking to press."""
        client = self._client(request)
        if not self.requests.allow(client):
            return _error(429, "too many requests")
        role = self.tokens.role_of(request.headers.get("Authorization"))
        if role is None:
            if not self.failures.allow(client):
                return _error(429, "too many failed attempts")
            return _error(
                401,
                "a valid bearer token is needed",
                {"WWW-Authenticate": 'Bearer realm="invtable"'},
            )
        if need == OPERATOR and role != OPERATOR:
            return _error(403, "the viewer token may watch, not press")
        return role

    async def _status(self, request: web.Request) -> web.Response:
        role = self._auth(request, None)
        if isinstance(role, web.Response):
            return role
        return web.json_response(self.board.latest().to_json() | {"role": role})

    async def _action(self, request: web.Request) -> web.Response:
        role = self._auth(request, OPERATOR)
        if isinstance(role, web.Response):
            return role
        client = self._client(request)
        if not self.actions.allow(client):
            return _error(429, "too many presses: wait a few seconds")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, 'the body must be JSON: {"request_id": "<8-64 letters/digits>"}')
        rid = body.get("request_id") if isinstance(body, dict) else None
        if not isinstance(rid, str) or not REQUEST_ID.match(rid):
            return _error(400, "request_id: 8-64 letters, digits, '_' or '-', fresh each press")
        if not self.replay.first_time(rid):
            return _error(409, "request_id already used: a replayed request is not pressed again")
        button = request.path.rsplit("/", 1)[1]
        who = f"{role}@{client} (web)"
        if not self.pendant.offer(button, who):
            return _error(503, "the controller's queue is full: press again")
        try:
            self.log("remote_request", button=button, who=who)
        except Exception:  # the press is queued; a log that fails must not say otherwise
            pass
        return web.json_response({"accepted": button, "who": who}, status=202)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        role = self._auth(request, None)
        if isinstance(role, web.Response):
            return role
        if self.streams >= MAX_STREAMS:
            return _error(503, f"at most {MAX_STREAMS} live feeds")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **HEADERS})
        self.streams += 1
        try:
            await resp.prepare(request)
            last_seq, quiet, chunk = -1, 0.0, b""
            assert self._stopping is not None
            while not self._stopping.is_set():
                status = self.board.latest()
                if status.seq != last_seq or quiet >= KEEPALIVE_S:
                    if status.seq != last_seq:
                        chunk = self._event(status, role)
                    await asyncio.wait_for(resp.write(chunk), timeout=2.0)
                    last_seq, quiet = status.seq, 0.0
                await asyncio.sleep(STREAM_EVERY_S)
                quiet += STREAM_EVERY_S
        except (ConnectionResetError, asyncio.TimeoutError, asyncio.CancelledError):
            pass  # the client went away or stopped reading
        finally:
            self.streams -= 1
        return resp

    def _event(self, status: Status, role: str) -> bytes:
        """The feed's event for a status, serialized once for every client of that role."""
        key = (status.seq, role)
        cached = self._events.get(key)
        if cached is None:
            data = json.dumps(status.to_json() | {"role": role}, separators=(",", ":"))
            cached = f"data: {data}\n\n".encode()
            if len(self._events) > 8:
                self._events.clear()
            self._events[key] = cached
        return cached

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        """Bind on a new thread's loop; raise the OSError here when the address is unusable."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._bind())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_until_complete(self._serve_until_stopped())
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, name="invtable-web", daemon=True)
        self._thread.start()
        ready.wait(timeout=30.0)
        if failure:
            raise failure[0]

    async def _bind(self) -> None:
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]  # port 0: the one the system chose

    async def _serve_until_stopped(self) -> None:
        assert self._stopping is not None and self._runner is not None
        await self._stopping.wait()
        await self._runner.cleanup()

    def stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop already ended
                pass
        if self._thread is not None:
            self._thread.join(timeout=5.0)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
