"""Prism serving Twilio's published OpenAPI description: the contract peer for the SMS sender.

`make test` installs it into .peers/ (npm); PRISM_BIN may point elsewhere. Without it the
contract tests are skipped locally, and fail under RENEWD_REQUIRE_PEERS=1 (what CI sets).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "peers" / "twilio" / "twilio_api_v2010.json"


def prism_binary() -> str | None:
    candidates = [
        os.environ.get("PRISM_BIN", ""),
        str(ROOT / ".peers" / "node_modules" / ".bin" / "prism"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("prism")


@contextmanager
def running_prism() -> Iterator[str]:
    binary = prism_binary()
    if binary is None or not SPEC.is_file():
        message = "Prism or Twilio's API description is not installed (make test installs Prism)"
        if os.environ.get("RENEWD_REQUIRE_PEERS"):
            pytest.fail(message)
        pytest.skip(message)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [binary, "mock", "-h", "127.0.0.1", "-p", str(port), str(SPEC)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:  # Prism says when it listens; no polling, no sleeping
            if "Prism is listening" in line:
                break
        else:
            pytest.fail(f"Prism exited before listening (code {process.wait()})")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
