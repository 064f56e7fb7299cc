"""Issue 15: the supervisor's API, its security and its way into the control thread.

The HTTP tests talk to the real aiohttp application (aiohttp's test server on a loopback
port); the rate limiter reads an injected clock. The end-to-end tests run ``invtable run
--web`` through the real CLI with the bench in simulated time: a scripted person at the
pendant, and presses sent over real HTTP at chosen instants of the session, so the trace
says exactly what a remote press did."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controller.app import cli
from controller.app.supervisor.auth import RateLimiter, ReplayGuard, Tokens, load_tokens
from controller.app.supervisor.config import load_supervision, parse_address
from controller.app.supervisor.remote import TAP_S, RemotePendant
from controller.app.supervisor.server import SupervisorServer
from controller.app.supervisor.status import StatusBoard
from controller.core.config import Config
from controller.core.errors import InputError
from sim.runner import RunResult
from sim.scenario import Event, Scenario
from tests.conftest import run_cli

OP, VIEW = "o" * 32, "v" * 32


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make_server(clock: FakeClock | None = None) -> tuple[SupervisorServer, RemotePendant]:
    pendant = RemotePendant()
    server = SupervisorServer(
        "127.0.0.1",
        0,
        StatusBoard("ann", "beginner"),
        pendant,
        Tokens(OP, VIEW),
        clock=clock or FakeClock(),
    )
    return server, pendant


def with_client(server: SupervisorServer, body: Callable[[TestClient], Awaitable[None]]) -> None:
    async def main() -> None:
        server._stopping = asyncio.Event()
        async with TestClient(TestServer(server.app())) as client:
            await body(client)

    asyncio.run(main())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rid(i: int) -> dict[str, str]:
    return {"request_id": f"request-{i:04d}"}


# ------------------------------------------------------------------ the API's doors
def test_status_needs_a_token_and_a_viewer_may_watch() -> None:
    server, _ = make_server()

    async def body(c: TestClient) -> None:
        r = await c.get("/api/status")
        assert r.status == 401 and "WWW-Authenticate" in r.headers
        r = await c.get("/api/status", headers=bearer("x" * 32))
        assert r.status == 401
        r = await c.get("/api/status", headers={"Authorization": OP})  # no "Bearer "
        assert r.status == 401
        r = await c.get("/api/status", headers=bearer(VIEW))
        data = await r.json()
        assert r.status == 200 and data["role"] == "viewer"
        for key in (
            "state",
            "angle_deg",
            "session_s",
            "limit_s",
            "user",
            "program",
            "alarm",
            "faults",
            "interlocks",
        ):
            assert key in data
        assert data["user"] == "ann" and data["program"] == "beginner"
        r = await c.get("/")
        assert r.status == 200 and "RETURN" in await r.text()

    with_client(server, body)


def test_presses_need_the_operator_token_and_a_fresh_request_id() -> None:
    clock = FakeClock()
    server, pendant = make_server(clock)

    async def body(c: TestClient) -> None:
        r = await c.post("/api/return", json=rid(1))
        assert r.status == 401
        r = await c.post("/api/return", json=rid(2), headers=bearer("wrong-token-123456"))
        assert r.status == 401
        r = await c.post("/api/return", json=rid(3), headers=bearer(VIEW))
        assert r.status == 403
        assert pendant.step(0.0) == ([], [])  # nothing refused reached the control thread
        r = await c.post("/api/return", json=rid(4), headers=bearer(OP))
        assert r.status == 202
        r = await c.post("/api/return", json=rid(4), headers=bearer(OP))  # replayed
        assert r.status == 409
        r = await c.post("/api/stop", json=rid(5), headers=bearer(OP))
        assert r.status == 202
        clock.t += 60.0  # past the presses' rate limit
        r = await c.post("/api/stop", data=b"not json", headers=bearer(OP))
        assert r.status == 400
        r = await c.post("/api/stop", json={"request_id": "x"}, headers=bearer(OP))
        assert r.status == 400
        r = await c.post("/api/stop", data=b"{" + b" " * 10000 + b"}", headers=bearer(OP))
        assert r.status == 413
        pressed, _ = pendant.step(1.0)
        assert [(p.button, p.who) for p in pressed] == [
            ("return", "operator@127.0.0.1 (web)"),
            ("stop", "operator@127.0.0.1 (web)"),
        ]

    with_client(server, body)


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/api/start"),
        ("POST", "/api/down"),
        ("POST", "/api/up"),
        ("POST", "/api/jog"),
        ("POST", "/api/move"),
        ("POST", "/api/program"),
        ("PUT", "/api/return"),
        ("GET", "/api/return"),
        ("GET", "/api/stop"),
        ("GET", "/api/start"),
        ("POST", "/api/status"),
        ("DELETE", "/api/stop"),
    ],
)
def test_no_motion_endpoint_and_no_state_changing_get(method: str, path: str) -> None:
    """Nothing remote can start, jog or move toward inversion: no such route exists; RETURN and
    STOP only by POST. Even with the operator token, nothing reaches the control thread."""
    server, pendant = make_server()

    async def body(c: TestClient) -> None:
        r = await c.request(method, path, json=rid(1), headers=bearer(OP))
        assert r.status in (404, 405)
        assert pendant.step(0.0) == ([], [])

    with_client(server, body)


def test_responses_never_carry_the_token() -> None:
    server, _ = make_server()

    async def body(c: TestClient) -> None:
        seen = b""
        for method, path, token in [
            ("GET", "/api/status", OP),
            ("GET", "/api/status", VIEW),
            ("GET", "/", OP),
            ("GET", "/page.js", OP),
            ("POST", "/api/return", OP),
            ("POST", "/api/return", VIEW),
            ("POST", "/api/start", OP),
            ("GET", "/api/status", "bad-token-xxxxxxxx"),
        ]:
            r = await c.request(method, path, json=rid(7), headers=bearer(token))
            seen += await r.read() + str(r.headers).encode()
        assert OP.encode() not in seen and VIEW.encode() not in seen

    with_client(server, body)


def test_a_flood_of_presses_is_limited_and_the_queue_stays_bounded() -> None:
    clock = FakeClock()
    server, pendant = make_server(clock)

    async def body(c: TestClient) -> None:
        codes = [
            (await c.post("/api/return", json=rid(i), headers=bearer(OP))).status for i in range(40)
        ]
        assert codes.count(202) == 5 and codes.count(429) == 35
        clock.t += 2.0  # one more press per 2 s
        r = await c.post("/api/return", json=rid(100), headers=bearer(OP))
        assert r.status == 202
        r = await c.post("/api/return", json=rid(101), headers=bearer(OP))
        assert r.status == 429

    with_client(server, body)
    pressed, _ = pendant.step(0.0)
    assert [p.button for p in pressed] == ["return"]  # six presses of one button: one tap


def test_a_flood_of_bad_tokens_is_limited() -> None:
    server, _ = make_server()

    async def body(c: TestClient) -> None:
        codes = [
            (await c.get("/api/status", headers=bearer(f"guess-{i:012d}"))).status
            for i in range(30)
        ]
        assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}
        # ... and the right token is refused as well for a while: guessing costs time
        assert (await c.get("/api/status", headers=bearer(OP))).status in (200, 429)

    with_client(server, body)


def test_a_full_queue_refuses_the_press_without_waiting() -> None:
    clock = FakeClock()
    server, pendant = make_server(clock)
    for _ in range(8):
        assert pendant.offer("stop", "test")
    assert not pendant.offer("stop", "test")

    async def body(c: TestClient) -> None:
        r = await c.post("/api/return", json=rid(1), headers=bearer(OP))
        assert r.status == 503

    with_client(server, body)


def test_the_stream_pushes_the_status_and_counts_its_clients() -> None:
    server, _ = make_server()

    async def body(c: TestClient) -> None:
        assert (await c.get("/api/stream")).status == 401
        r = await c.get("/api/stream", headers=bearer(VIEW))
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        line = await asyncio.wait_for(r.content.readline(), timeout=10)
        assert line.startswith(b"data: ")
        assert json.loads(line[6:])["role"] == "viewer"
        assert server.streams == 1
        r.close()

    with_client(server, body)


def test_64_feeds_connect_a_press_still_goes_through_and_more_are_refused() -> None:
    """64 live feeds at once (more than the 50 asked; one address, within its request rate):
    the server still takes a press; past 64 feeds it answers 503 rather than grow."""
    clock = FakeClock()
    server, pendant = make_server(clock)

    async def body(c: TestClient) -> None:
        feeds = []
        for _ in range(64):
            clock.t += 1.0  # within the request rate
            r = await c.get("/api/stream", headers=bearer(VIEW))
            assert r.status == 200
            await asyncio.wait_for(r.content.readline(), timeout=10)
            feeds.append(r)
        assert server.streams == 64
        clock.t += 1.0
        assert (await c.get("/api/stream", headers=bearer(VIEW))).status == 503
        r = await c.post("/api/return", json=rid(1), headers=bearer(OP))
        assert r.status == 202
        for r in feeds:
            r.close()

    with_client(server, body)
    assert [p.button for p in pendant.step(0.0)[0]] == ["return"]


# ------------------------------------------------------------------ the parts
def test_remote_pendant_takes_only_return_and_stop_and_taps_like_the_keyboard() -> None:
    p = RemotePendant()
    for button in ("start", "down", "up", "jog", ""):
        with pytest.raises(ValueError):
            p.offer(button, "x")
    assert p.offer("return", "op")
    pressed, released = p.step(1.0)
    assert [x.button for x in pressed] == ["return"] and released == []
    assert p.held == {"return"}
    assert p.step(1.0 + TAP_S - 0.01) == ([], [])
    assert p.step(1.0 + TAP_S) == ([], ["return"])
    assert p.held == frozenset()


def test_tokens_are_created_0600_once_and_a_loose_file_is_refused(tmp_path: Path) -> None:
    t = load_tokens(tmp_path / "d")
    assert t.created == ("operator", "viewer") and t.operator != t.viewer
    for name in ("supervisor.token", "supervisor-viewer.token"):
        assert stat.S_IMODE((tmp_path / "d" / name).stat().st_mode) == 0o600
    again = load_tokens(tmp_path / "d")
    assert again.created == () and again.operator == t.operator
    assert again.role_of(f"Bearer {t.operator}") == "operator"
    assert again.role_of(f"Bearer {t.viewer}") == "viewer"
    assert again.role_of(f"Bearer {t.operator}x") is None and again.role_of(None) is None
    os.chmod(tmp_path / "d" / "supervisor.token", 0o644)
    with pytest.raises(InputError, match="readable by others"):
        load_tokens(tmp_path / "d")


def test_rate_limiter_and_replay_guard_forget_the_oldest() -> None:
    clock = FakeClock()
    lim = RateLimiter(rate=1.0, burst=2, clock=clock, max_keys=3)
    assert [lim.allow("a") for _ in range(3)] == [True, True, False]
    clock.t = 1.0
    assert lim.allow("a") and not lim.allow("a")
    for k in "bcdef":
        lim.allow(k)
    assert len(lim._buckets) == 3
    guard = ReplayGuard(size=2)
    assert guard.first_time("x") and not guard.first_time("x")
    guard.first_time("y"), guard.first_time("z")
    assert guard.first_time("x")  # forgotten after two newer ids


@pytest.mark.parametrize(
    "text, expected",
    [
        ("8080", ("127.0.0.1", 8080)),
        (":8080", ("127.0.0.1", 8080)),
        ("192.168.1.20:8000", ("192.168.1.20", 8000)),
        ("pi.local", ("pi.local", 8765)),
        ("[::1]:9000", ("::1", 9000)),
    ],
)
def test_web_addresses_default_to_this_machine_only(text: str, expected: tuple) -> None:
    assert parse_address(text, 8765, "command line", "--web") == expected


def test_web_and_mqtt_tables_are_checked_with_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[web]\nlisten = "0.0.0.0:8080"\n[mqtt]\nhost = "broker"\nallow_return = true\n')
    sup = load_supervision(cfg)
    assert sup.web is not None and (sup.web.host, sup.web.port) == ("0.0.0.0", 8080)
    assert sup.mqtt is not None and sup.mqtt.allow_return and sup.mqtt.port == 1883
    assert load_supervision(cfg, web="9000").web.port == 9000  # type: ignore[union-attr]
    assert load_supervision(None).web is None  # default: no page
    cfg.write_text('[web]\nlisten = "x:99999"\nport = 3\n[mqtt]\nport = "a"\nprefix = "a/b"\n')
    with pytest.raises(InputError) as exc:
        load_supervision(cfg)
    keys = {p.key for p in exc.value.problems}
    assert {"web.listen", "web.port", "mqtt.port", "mqtt.prefix"} <= keys


def test_run_refuses_a_bad_web_address_before_anything_runs(tmp_path: Path) -> None:
    res = run_cli("run", "--web", "127.0.0.1:99999", "--duration", "1", "--data", tmp_path)
    assert res.code == 2 and "--web" in res.stderr and "Traceback" not in res.stderr
    cfg = tmp_path / "c.toml"
    cfg.write_text("[mqtt]\nhots = 'x'\n")
    res = run_cli("config", "check", cfg)
    assert res.code == 2 and "mqtt.hots" in res.stderr


# ------------------------------------------------------------------ through the real CLI
class ScriptedPendant:
    """A person at the pendant in simulated time; a callable runs on the control thread at
    its instant (here: a request over real HTTP to the running page)."""

    quit = False

    def __init__(self, script: list[tuple[float, Any]]) -> None:
        self.script = sorted(script, key=lambda item: item[0])

    def poll(self, now: float) -> list:
        due = []
        while self.script and self.script[0][0] <= now + 1e-9:
            action = self.script.pop(0)[1]
            if callable(action):
                action()
            else:
                due.append(action)
        return due


def tap(at_s: float, button: str) -> list[tuple[float, Any]]:
    return [
        (at_s, Event(at_s, "press", button)),
        (at_s + 0.2, Event(at_s + 0.2, "release", button)),
    ]


def http(url: str, token: str, body: dict | None = None, method: str = "POST") -> int:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=bearer(token))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def run_supervised(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    script: Callable[[Callable[[str], str], dict], list[tuple[float, Any]]],
    duration: float,
    extra: tuple[str, ...] = (),
) -> tuple[int, RunResult, dict]:
    """``invtable run --web 127.0.0.1:0`` in simulated time. ``script(url, codes)`` gets the
    page's address (once it is bound) and a dict to put the HTTP answers in."""
    import controller.app.simcmd as runsim
    from controller.app.supervisor import runtime
    from controller.core.clock import SimClock

    started: dict[str, Any] = {}
    real_start = runtime.Supervisor.start

    def start(self: runtime.Supervisor, out: Any = None) -> list[str]:
        failed = real_start(self)
        started["sup"] = self
        return failed

    monkeypatch.setattr(runtime.Supervisor, "start", start)

    def url(path: str) -> str:
        return f"http://127.0.0.1:{started['sup'].server.port}{path}"

    codes: dict[str, int] = {}
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
    monkeypatch.setattr(
        runsim,
        "run_bench",
        functools.partial(
            runsim.run_bench,
            clock=SimClock(),
            pendant=ScriptedPendant(script(url, codes)),
            result=result,
        ),
    )
    data = tmp_path / "data"
    code = cli.main(
        ["run", "--web", "127.0.0.1:0", "--data", str(data), "--duration", str(duration), *extra]
    )
    codes["operator"] = 0  # the token itself is not returned
    return code, result, codes


def token_of(tmp_path: Path, viewer: bool = False) -> str:
    name = "supervisor-viewer.token" if viewer else "supervisor.token"
    return (tmp_path / "data" / name).read_text().strip()


def states(result: RunResult) -> list[tuple[float, str]]:
    return [(round(t.t_s, 2), t.dest) for t in result.transitions]


def test_return_from_the_page_brings_the_person_upright_through_the_real_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A session runs; at 10 s a viewer's RETURN is refused (403) and changes nothing; at 12 s
    the operator's RETURN enters the control thread like the pendant's, the emergency return
    follows in that tick, and the table ends upright and idle."""

    def script(url: Callable[[str], str], codes: dict) -> list:
        def viewer() -> None:
            codes["viewer"] = http(url("/api/return"), token_of(tmp_path, True), rid(1))

        def operator() -> None:
            codes["operator_return"] = http(url("/api/return"), token_of(tmp_path), rid(2))

        return [
            (0.5, Event(0.5, "set", "ankle_lock", True)),
            *tap(1.0, "start"),
            (10.0, viewer),
            (12.0, operator),
        ]

    code, result, codes = run_supervised(monkeypatch, tmp_path, script, 60.0)
    assert code == 0
    assert codes["viewer"] == 403 and codes["operator_return"] == 202
    seen = states(result)
    assert "ramp" in [s for _, s in seen]
    first_er = next(t for t, s in seen if s == "emergency_return")
    assert 12.0 <= first_er <= 12.02, seen  # the next tick after the press
    assert all(s != "emergency_return" for t, s in seen if t < 12.0)
    assert seen[-1][1] == "idle"
    assert result.rows[-1][2] <= -79.0  # upright


def test_stop_from_the_page_pauses_and_nothing_remote_moves_the_table_down(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Idle with the ankle lock closed: every motion endpoint is refused and the table never
    leaves upright. Then a session; STOP from the page pauses it, and more attempts at
    start/down from the network leave it paused where it stood."""

    def script(url: Callable[[str], str], codes: dict) -> list:
        def attempts(tag: str) -> Callable[[], None]:
            def go() -> None:
                for i, path in enumerate(("/api/start", "/api/down", "/api/up", "/api/jog")):
                    codes[f"{tag}{path}"] = http(url(path), token_of(tmp_path), rid(10 * i))
                codes[f"{tag}-get-stop"] = http(url("/api/stop"), token_of(tmp_path), None, "GET")

            return go

        def stop() -> None:
            codes["stop"] = http(url("/api/stop"), token_of(tmp_path), rid(99))

        return [
            (0.5, Event(0.5, "set", "ankle_lock", True)),
            (2.0, attempts("idle")),
            *tap(5.0, "start"),
            (12.0, stop),
            (14.0, attempts("paused")),
        ]

    code, result, codes = run_supervised(monkeypatch, tmp_path, script, 20.0)
    assert code == 0
    assert codes["stop"] == 202
    refused = {k: v for k, v in codes.items() if k not in ("stop", "operator")}
    assert len(refused) == 10 and set(refused.values()) <= {404, 405}, refused
    seen = states(result)
    assert all(t >= 5.0 for t, s in seen if s == "ramp"), seen  # nothing moved before START
    paused_at = next(t for t, s in seen if s == "paused")
    assert 12.0 <= paused_at <= 12.02
    assert seen[-1][1] == "paused"  # the network's start/down after it changed nothing
    angle_at_pause = next(r[2] for r in result.rows if r[0] >= 13.0)
    assert all(r[2] <= angle_at_pause + 0.5 for r in result.rows if r[0] >= 13.0)


def test_a_page_that_cannot_start_never_keeps_the_table_from_running(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The page's address is taken and the token file is readable by others: the run says so
    loudly, runs the table without the page (the session and its way back as without it) and
    exits 1 at the end. A restarted service must bring its person upright whatever the page."""
    import socket

    import controller.app.simcmd as runsim
    from controller.core.clock import SimClock

    data = tmp_path / "data"
    data.mkdir()
    (data / "supervisor.token").write_text("t" * 32)
    os.chmod(data / "supervisor.token", 0o644)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    real = runsim.run_bench
    outcomes = []
    try:
        for extra in ([], ["--web", f"127.0.0.1:{port}"]):
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
            where = data if extra else tmp_path / "plain"  # each run its own simulated table
            code = cli.main(["run", "--data", str(where), "--duration", "40", *extra])
            outcomes.append((code, states(result)))
    finally:
        taken.close()
    assert outcomes[0][0] == 0 and outcomes[1][0] == 1
    assert outcomes[0][1] == outcomes[1][1] and "ramp" in [s for _, s in outcomes[0][1]]
    # and with the token file fixed, the address in use is what it says
    os.chmod(data / "supervisor.token", 0o600)
    (data / "sim_table.json").unlink()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        res = run_cli(
            "run",
            "--web",
            f"127.0.0.1:{taken.getsockname()[1]}",
            "--duration",
            "0.5",
            "--data",
            data,
        )
    finally:
        taken.close()
    assert res.code == 1 and "SUPERVISION ERROR: --web: cannot listen on" in res.stderr
    assert "stopped at" in res.stdout and "Traceback" not in res.stderr


def test_a_remote_press_is_in_the_history_audit_with_who_pressed_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``run --user --program --web``: the page shows the person and program, and the operator's
    RETURN is written to the history's audit log (audit.jsonl) with who pressed it."""
    res = run_cli(
        "user",
        "add",
        "ann",
        "--height-cm",
        "175",
        "--weight-kg",
        "80",
        "--screening",
        "no",
        "--data",
        tmp_path / "data",
    )
    assert res.code == 0, res.stderr

    def script(url: Callable[[str], str], codes: dict) -> list:
        def look() -> None:
            req = urllib.request.Request(url("/api/status"), headers=bearer(token_of(tmp_path)))
            with urllib.request.urlopen(req, timeout=10) as resp:
                codes["status"] = json.loads(resp.read())

        def operator() -> None:
            codes["return"] = http(url("/api/return"), token_of(tmp_path), rid(3))

        return [
            (0.5, Event(0.5, "set", "ankle_lock", True)),
            *tap(1.0, "start"),
            (5.0, look),
            (8.0, operator),
        ]

    code, result, codes = run_supervised(
        monkeypatch,
        tmp_path,
        script,
        60.0,
        # a first session needs a named supervisor (issue 19)
        ("--user", "ann", "--program", "progressive", "--supervised-by", "Sam"),
    )
    assert code == 0 and codes["return"] == 202
    assert codes["status"]["user"] == "ann" and codes["status"]["program"] == "progressive"
    assert codes["status"]["state"] == "ramp" and codes["status"]["step"] == 1
    lines = [json.loads(x) for x in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()]
    press = [x for x in lines if x["event"] == "remote_press"]
    assert len(press) == 1 and press[0]["button"] == "return"
    assert press[0]["who"] == "operator@127.0.0.1 (web)" and press[0]["t_s"] == 8.0
    assert any(x.get("to") == "emergency_return" for x in lines)


def test_the_service_loop_takes_remote_presses_like_the_pendant_and_publishes_its_status() -> None:
    """``run_service`` (the loop on the Pi) with the supervisor, on an injected clock: the
    person closes the ankle lock and presses START on the table's pendant; a remote RETURN
    offered at 5 s is in the next tick's buttons, the emergency return follows in that tick,
    and the press is logged with who pressed it. The board shows the table's state."""
    import io

    from controller.app.service import JsonLog, run_service
    from controller.app.supervisor.config import Supervision
    from controller.app.supervisor.runtime import Supervisor
    from sim.table import SimTable
    from tests.test_service import FakeNotifier, StepClock

    cfg = Config()
    table = SimTable(angle_deg=cfg.limits.upright_deg, upright_deg=cfg.limits.upright_deg)
    out = io.StringIO()
    sup = Supervisor(Supervision(), Path("/nonexistent"), JsonLog(out))
    seen: dict[str, str] = {}

    def act(t: float) -> None:
        if t == 0.5:
            table.ankle_lock_closed = True
        elif t == 1.0:
            table.press("start")
        elif t == 1.2:
            table.release("start")
        elif t == 4.0:
            seen["before"] = sup.board.latest().state
        elif t == 5.0:
            assert sup.pendant.offer("return", "operator@192.0.2.7 (web)")

    class ActingClock(StepClock):
        def wait_until(self, t: float) -> None:
            super().wait_until(t)
            act(round(t, 2))

    class Moving:
        """The simulated table, its physics stepped one period per tick (the world moves)."""

        def read(self) -> Any:
            return table.read()

        def write(self, outputs: Any) -> None:
            table.write(outputs)
            table.advance(0.01)

        def safe_stop(self) -> None:
            table.safe_stop()

        def close(self) -> None:
            table.close()

    clock = ActingClock()
    code = run_service(
        cfg,
        duration=8.0,
        log=JsonLog(out),
        clock=clock,
        notifier=FakeNotifier(clock),  # type: ignore[arg-type]
        make_hardware=Moving,
        supervisor=sup,
    )
    assert code == 0
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    er = [x for x in lines if x["event"] == "transition" and x["dest"] == "emergency_return"]
    assert len(er) == 1, [x for x in lines if x["event"] != "input"]
    assert 5.0 <= er[0]["t_s"] <= 5.011 and er[0]["trigger"] == "press_return"
    press = [x for x in lines if x["event"] == "remote_press"]
    assert (
        press
        == [
            {
                "event": "remote_press",
                "t_s": press[0]["t_s"],
                "button": "return",
                "who": "operator@192.0.2.7 (web)",
            }
        ]
        and 5.0 <= press[0]["t_s"] <= 5.011
    )
    assert seen["before"] == "ramp"
    assert sup.board.latest().state in ("emergency_return", "idle")


def test_a_status_that_cannot_be_read_shows_the_alarm_and_never_raises() -> None:
    board = StatusBoard()

    class Broken:
        cfg = None  # status_of fails on it

    board.publish(0.0, Broken(), False, True)
    s = board.latest()
    assert s.state == "unknown" and s.alarm and s.seq == 1
    board.publish(0.05, Broken(), False, True)  # within EVERY_S: not rebuilt
    assert board.latest().seq == 1
