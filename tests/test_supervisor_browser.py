"""Issue 15: the supervisor page in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) against ``invtable run --web`` as a real process.

The page must load, show the angle changing in a session, sound the alarm when a fault
latches, bring the person upright with its RETURN, and show "connection lost" when the feed
stops. Waits are for conditions on the page (WebDriverWait), never fixed sleeps. Screenshots
go to $INVTABLE_SCREENSHOTS when it is set (docs/supervision.md shows them)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import ROOT

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="the browser tests need Debian's chromium and chromium-driver: "
    "sudo apt-get install chromium chromium-driver (.ci/run installs them when root)",
)
WAIT_S = 60.0


class Service:
    """``invtable run --web 127.0.0.1:0`` with a scripted person, as a process."""

    def __init__(self, tmp: Path, events: list[list[Any]]) -> None:
        script = tmp / "events.json"
        script.write_text(json.dumps(events))
        self.data = tmp / "data"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "supervised_run.py"),
                str(script),
                "--web",
                "127.0.0.1:0",
                "--data",
                str(self.data),
                "--duration",
                "600",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "supervisor page at " in line:
                self.url = line.split("supervisor page at ", 1)[1].strip()
                break
        else:
            raise AssertionError("no page address: " + "".join(self.lines))
        self.token = (self.data / "supervisor.token").read_text().strip()

    def output(self) -> str:
        assert self.proc.stdout is not None
        return "".join(self.lines) + self.proc.stdout.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM  # type: ignore[assignment]
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=430,1400",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=DriverService(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def text(driver: Any, element: str) -> str:
    return str(driver.find_element("id", element).text)


def wait(driver: Any, condition: Any, message: str, timeout: float = WAIT_S) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d), message)


def visible(driver: Any, element: str) -> bool:
    return bool(driver.find_element("id", element).is_displayed())


def shot(driver: Any, name: str) -> None:
    folder = os.environ.get("INVTABLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def open_page(driver: Any, svc: Service) -> None:
    driver.get(f"{svc.url}#token={svc.token}")
    wait(driver, lambda d: text(d, "state") not in ("", "CONNECTING..."), "no status shown")
    assert "token" not in driver.current_url  # the token left the address bar


def test_page_shows_a_live_session_and_its_return_brings_the_person_upright(
    tmp_path: Path, browser: Any
) -> None:
    svc = Service(
        tmp_path,
        [
            [0.5, "set", "ankle_lock", True],
            [6.0, "press", "start", True],
            [6.2, "release", "start", True],
        ],
    )
    try:
        open_page(browser, svc)
        wait(
            browser,
            lambda d: text(d, "state") == "IDLE" and text(d, "ankle") == "locked",
            "idle with the ankle lock closed",
        )
        assert not visible(browser, "banner") and not visible(browser, "alarm")
        shot(browser, "idle")
        wait(browser, lambda d: text(d, "state") == "RAMP", "the session's ramp")
        first = float(text(browser, "angle"))
        wait(browser, lambda d: float(text(d, "angle")) > first + 3.0, "the angle rising")
        wait(browser, lambda d: float(text(d, "angle")) > -40.0, "well into the session")
        assert text(browser, "step").startswith("1 of 1")
        shot(browser, "session")
        browser.find_element("id", "btn-return").click()
        wait(browser, lambda d: text(d, "state") == "EMERGENCY RETURN", "the return from the page")
        wait(browser, lambda d: text(d, "state") == "IDLE", "upright again")
        assert float(text(browser, "angle")) <= -79.0
        assert "RETURN sent" in text(browser, "action-result")
    finally:
        svc.stop()
    out = svc.output()
    assert '"remote_press"' in out and '"who":"operator@127.0.0.1 (web)"' in out
    # the service stopped: the page says so
    wait(browser, lambda d: visible(d, "banner"), "the connection-lost banner", timeout=10.0)


def test_page_sounds_the_alarm_when_a_fault_latches_and_shows_a_frozen_feed(
    tmp_path: Path, browser: Any
) -> None:
    svc = Service(
        tmp_path,
        [
            [0.5, "set", "ankle_lock", True],
            [1.0, "press", "start", True],
            [1.2, "release", "start", True],
            [6.0, "fault", "angle_sensor_stuck", True],
        ],
    )
    try:
        open_page(browser, svc)
        wait(browser, lambda d: visible(d, "alarm"), "the alarm")
        assert "fault latched" in text(browser, "alarm-reasons")
        wait(
            browser,
            lambda d: "angle_sensor" in text(d, "faults") or "sensor" in text(d, "faults"),
            "the fault's reason",
        )
        shot(browser, "alarm")
        # A feed that stops without closing (the service frozen, the Wi-Fi gone): the
        # page's watchdog shows the banner, and it goes once the feed comes back.
        svc.proc.send_signal(signal.SIGSTOP)
        wait(browser, lambda d: visible(d, "banner"), "the banner on a frozen feed", timeout=10.0)
        svc.proc.send_signal(signal.SIGCONT)
        wait(browser, lambda d: not visible(d, "banner"), "the banner gone again", timeout=30.0)
    finally:
        svc.stop()


def test_a_viewer_token_watches_but_cannot_press(tmp_path: Path, browser: Any) -> None:
    svc = Service(tmp_path, [[0.5, "set", "ankle_lock", True]])
    try:
        viewer = (svc.data / "supervisor-viewer.token").read_text().strip()
        browser.get(f"{svc.url}#token={viewer}")
        wait(browser, lambda d: text(d, "state") == "IDLE", "the status for a viewer")
        assert not browser.find_element("id", "btn-return").is_enabled()
        assert not browser.find_element("id", "btn-stop").is_enabled()
    finally:
        svc.stop()
