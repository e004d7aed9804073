"""Debian's Chromium, headless, driven over the DevTools protocol: a real browser for the page
`forecast --out` writes.

A small client of our own over `websockets` (no tool that downloads a browser of its own). It
collects what a person would see in the console: console.error/warn calls, uncaught exceptions
and the browser's own log (failed loads, Content-Security-Policy refusals). Without Chromium
the test is skipped locally, and fails under RENEWD_REQUIRE_PEERS=1 (what CI sets; `.ci/run`
installs Debian's `chromium`).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from support import until

# The flags this machine needs (no sandbox as root, no GPU, no network but loopback).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Page:
    """One tab. `problems` holds every console error, warning, exception and browser log error."""

    def __init__(self, socket: ClientConnection, session: str) -> None:
        self._socket = socket
        self._session = session
        self._ids = itertools.count(1)
        self.problems: list[str] = []
        self._events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        message = {"id": number, "method": method, "params": params, "sessionId": self._session}
        self._socket.send(json.dumps(message))
        while True:
            answer = json.loads(self._socket.recv(timeout=60))
            if answer.get("id") == number:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self._note(answer)

    def load(self, url: str) -> None:
        """Navigate and wait for this page's load event (not about:blank's, which may come late)."""
        seen = len(self._events)
        self.send("Page.navigate", url=url)
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events[seen:]):
            self._note(json.loads(self._socket.recv(timeout=60)))
        until(
            lambda: self.evaluate("document.readyState + ' ' + location.href") == f"complete {url}",
            f"{url} loaded",
        )

    def evaluate(self, expression: str) -> Any:
        answer = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in answer:
            raise AssertionError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def _note(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning"):
            self.problems.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            self.problems.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
            self.problems.append(f"log: {params['entry'].get('text')}")


@contextmanager
def opened(url: str, width: int = 1100, height: int = 900) -> Iterator[Page]:
    """`url` loaded in a fresh headless Chromium; the page's problems collected from the start."""
    binary = chromium_binary()
    if binary is None:
        message = "Chromium is not installed (.ci/run installs Debian's chromium)"
        if os.environ.get("RENEWD_REQUIRE_PEERS"):
            pytest.fail(message)
        pytest.skip(message)
    with tempfile.TemporaryDirectory(prefix="renewd-chromium-") as profile:
        command = [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
        # its own process group: the renderer and helper processes it starts must end with it,
        # or one still writing to the profile makes removing that directory fail
        browser = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            active = Path(profile) / "DevToolsActivePort"
            until(lambda: len(_lines(active)) == 2, "Chromium's DevTools port", timeout=60)
            port, path = _lines(active)
            with connect(f"ws://127.0.0.1:{port}{path}", max_size=None) as socket:
                page = _attach(socket, width, height)
                page.load(url)
                yield page
        finally:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(timeout=30)


def _attach(socket: ClientConnection, width: int, height: int) -> Page:
    def call(number: int, method: str, **params: Any) -> dict[str, Any]:
        socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            answer = json.loads(socket.recv(timeout=60))
            if answer.get("id") == number:
                result: dict[str, Any] = answer["result"]
                return result

    target = call(1, "Target.createTarget", url="about:blank")["targetId"]
    session = call(2, "Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    page = Page(socket, session)
    for domain in ("Page", "Runtime", "Log"):
        page.send(f"{domain}.enable")
    page.send(
        "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
        mobile=False,
    )  # fmt: skip
    return page


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return []
