"""sd_notify: the daemon tells its manager, and never waits on it."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from renewd.service.systemd import notify

from support import until


def test_a_manager_that_stops_reading_drops_notifications_and_never_blocks_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(address)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        sent: list[bool] = []
        # far more than the kernel queues for a datagram socket nobody reads (10 by default)
        pings = threading.Thread(
            target=lambda: sent.extend(notify("WATCHDOG=1") for _ in range(500))
        )
        pings.start()
        until(lambda: len(sent) == 500, "500 notifications sent or dropped")
        pings.join()
        assert (
            sent[0] and not sent[-1]
        )  # the first arrives; once the queue is full they are dropped
        assert manager.recv(64) == b"WATCHDOG=1"


def test_without_a_manager_notify_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
