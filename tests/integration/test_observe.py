"""The metrics and health listener on loopback: many clients at once, idle half-sent requests,
clients that go away. Bounded by counts and generous timeouts, never by how fast it answers."""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from renewd.core.errors import RenewdError
from renewd.service.observe import Metrics, Observer

from support import exchange, until


def healthy() -> tuple[bool, dict[str, Any]]:
    return True, {"policy": "abc"}


@pytest.fixture
def observer() -> Iterator[Observer]:
    started = Observer("127.0.0.1:0", Metrics(), healthy, request_timeout=2.0)
    started.start()
    yield started
    started.stop()


def get(observer: Observer, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://{observer.address}{path}", timeout=60) as response:
        return response.status, response.read()


def test_two_hundred_clients_at_once_are_all_answered(observer: Observer) -> None:
    start = threading.Barrier(200)

    def one(n: int) -> tuple[int, bytes]:
        start.wait(timeout=60)
        return get(observer, "/healthz" if n % 2 else "/metrics")

    with ThreadPoolExecutor(200) as pool:
        answers = list(pool.map(one, range(200)))
    assert [status for status, _ in answers] == [200] * 200
    assert {json.loads(body)["policy"] for status, body in answers[1::2]} == {"abc"}
    assert all(b"renewd_runs_total" in body for _, body in answers[0::2])


def half_sent(observer: Observer) -> socket.socket:
    host, port = observer.address.rsplit(":", 1)
    client = socket.create_connection((host, int(port)), timeout=60)
    client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never the blank line that ends it
    return client


def closed_by_server(client: socket.socket) -> bool:
    client.settimeout(0)
    try:
        return client.recv(1) == b""
    except BlockingIOError:
        return False


def test_idle_half_sent_requests_take_no_threads_and_time_out(observer: Observer) -> None:
    threads = threading.active_count()
    idle = [half_sent(observer) for _ in range(300)]
    try:
        assert get(observer, "/healthz")[0] == 200  # answered while all 300 wait
        assert threading.active_count() == threads
        until(lambda: all(closed_by_server(c) for c in idle), "every idle client closed", 120)
    finally:
        for client in idle:
            client.close()
    assert observer.open == 0


def test_a_client_that_goes_away_is_a_debug_line(
    observer: Observer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="renewd")
    for _ in range(20):
        client = half_sent(observer)
        client.sendall(b"\r\n")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # a reset, before the answer is read
    until(lambda: observer.open == 0, "every client done")
    assert get(observer, "/healthz")[0] == 200
    assert {r.levelname for r in caplog.records} <= {"DEBUG"}
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (b"POST /metrics HTTP/1.1\r\n\r\n", 405),
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"GET /healthz?verbose=1 HTTP/1.0\r\n\r\n", 200),
        (b"\x00\xff garbage\r\n\r\n", 405),
    ],
)
def test_odd_requests_get_an_answer(observer: Observer, request_head: bytes, status: int) -> None:
    answer = exchange(observer.address, request_head)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())


def test_a_port_in_use_is_one_clear_error(observer: Observer) -> None:
    with pytest.raises(RenewdError) as refused:
        Observer(observer.address, Metrics(), healthy)
    assert str(refused.value) == (
        f"serve.listen {observer.address}: cannot listen there: Address already in use "
        '(choose another address, or "" for no listener)'
    )
