"""Loopback sinks for the delivery benchmarks, each in a process of its own.

    python bench/sinks.py smtp [--port N] [--dir DIR]   aiosmtpd, STARTTLS + AUTH, trustme cert
    python bench/sinks.py sms  [--port N]               Twilio-speaking HTTP server (aiohttp)

Both listen on 127.0.0.1 only, accept everything (no failures injected) and count what arrives.
When ready a sink prints one JSON line (port, and for SMTP the CA file a client must trust plus
the login). It then reads commands on stdin, one a line, and answers each with one JSON line:

    stats         {"count": n, "first": t, "last": t, "bytes": b}  (t: time.monotonic() in the sink)
    stats times   the same plus "times": every arrival time, for rates and gaps
    reset         zero the counters
    quit / EOF    print the final stats and exit

The SMS sink also answers `GET /stats` over HTTP. `Sink` below starts one from Python.
A separate process keeps the sink's own CPU time out of the client's interpreter (the point on a
2-core machine is that the client under test and its peer do not share one GIL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

USER, PASSWORD = "bench", "bench-pass"
ACCOUNT = "AC" + "0" * 32
TOKEN = "bench-token"  # noqa: S105 - a loopback sink's, accepted unchecked


class Tally:
    """Arrivals, counted under a lock: the server thread adds, the control loop reads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: list[float] = []
        self.bytes = 0

    def add(self, size: int) -> None:
        now = time.monotonic()
        with self.lock:
            self.times.append(now)
            self.bytes += size

    def stats(self, times: bool = False) -> dict[str, Any]:
        with self.lock:
            stamps = list(self.times)
            size = self.bytes
        out: dict[str, Any] = {
            "count": len(stamps),
            "first": stamps[0] if stamps else None,
            "last": stamps[-1] if stamps else None,
            "bytes": size,
        }
        if times:
            out["times"] = stamps
        return out

    def reset(self) -> None:
        with self.lock:
            self.times.clear()
            self.bytes = 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def control(tally: Tally, ready: dict[str, Any], out: IO[str] = sys.stdout) -> None:
    """Announce readiness, then answer commands from stdin until quit or EOF."""
    print(json.dumps(ready), file=out, flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "stats":
            print(json.dumps(tally.stats(times="times" in command[1:])), file=out, flush=True)
        elif command[0] == "reset":
            tally.reset()
            print(json.dumps({"ok": True}), file=out, flush=True)
        elif command[0] == "quit":
            break
        else:
            print(json.dumps({"error": f"unknown command {command[0]!r}"}), file=out, flush=True)
    print(json.dumps(tally.stats()), file=out, flush=True)


# -- SMTP -------------------------------------------------------------------------------------


def serve_smtp(port: int, directory: Path) -> None:
    import trustme
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    # aiosmtpd logs a deprecation of its own Session.login_data at every login
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    tally = Tally()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            tally.add(len(envelope.content or b""))
            return "250 2.0.0 Message accepted for delivery"

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if (
            isinstance(data, LoginPassword)
            and data.login == USER.encode()
            and data.password == PASSWORD.encode()
        ):
            return AuthResult(success=True, auth_data=data.login)
        return AuthResult(success=False, handled=False)

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca_file = directory / "sink-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_tls)
    port = port or free_port()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        server_hostname="sink.test",
        ready_timeout=10,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
        data_size_limit=10 * 1024 * 1024,
    )
    controller.start()
    try:
        ready = {"kind": "smtp", "host": "127.0.0.1", "port": port, "ca_file": str(ca_file)}
        control(tally, {**ready, "username": USER, "password": PASSWORD})
    finally:
        controller.stop()


# -- SMS (Twilio's Messages resource) ---------------------------------------------------------


def serve_sms(port: int) -> None:
    from aiohttp import web

    tally = Tally()
    port = port or free_port()

    async def create(request: web.Request) -> web.Response:
        form = await request.post()  # parse the form as Twilio would
        tally.add(request.content_length or 0)
        sid = request.match_info["sid"]
        return web.json_response(
            {
                "sid": "SM" + uuid.uuid4().hex,
                "account_sid": sid,
                "status": "queued",
                "to": str(form.get("To", "")),
                "from": str(form.get("From", "")),
                "body": str(form.get("Body", "")),
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{sid}/Messages/SM.json",
            },
            status=201,
        )

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(tally.stats(times=request.query.get("times") == "1"))

    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", create)
    app.router.add_get("/stats", stats)
    app.router.add_get("/count", stats)

    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        control(
            tally,
            {
                "kind": "sms",
                "host": "127.0.0.1",
                "port": port,
                "url": f"http://127.0.0.1:{port}",
                "account_sid": ACCOUNT,
            },
        )
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


# -- starting one from Python -----------------------------------------------------------------


class Sink:
    """A sink in a child process: `with Sink("smtp", tmp) as s: s.port, s.ca_file, s.stats()`."""

    def __init__(self, kind: str, directory: Path | None = None, port: int = 0) -> None:
        self.kind = kind
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix=f"sink-{kind}-")
        self.directory = directory or Path(self._tmp.name)  # type: ignore[union-attr]
        command = [sys.executable, str(Path(__file__).resolve()), kind, "--port", str(port)]
        if kind == "smtp":
            command += ["--dir", str(self.directory)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        line = self._read()
        if line is None:
            raise RuntimeError(f"the {kind} sink did not start (exit {self.process.wait()})")
        self.info: dict[str, Any] = line

    @property
    def port(self) -> int:
        return int(self.info["port"])

    @property
    def ca_file(self) -> str:
        return str(self.info["ca_file"])

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def _read(self) -> dict[str, Any] | None:
        if self.process.stdout is None:
            return None
        line = self.process.stdout.readline()
        return json.loads(line) if line else None

    def _ask(self, command: str) -> dict[str, Any]:
        if self.process.stdin is None:
            raise RuntimeError(f"the {self.kind} sink has no control pipe")
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self._read()
        if answer is None:
            raise RuntimeError(f"the {self.kind} sink went away")
        return answer

    def stats(self, times: bool = False) -> dict[str, Any]:
        return self._ask("stats times" if times else "stats")

    def reset(self) -> None:
        self._ask("reset")

    def close(self) -> dict[str, Any] | None:
        final = None
        if self.process.poll() is None:
            with contextlib.suppress(RuntimeError, BrokenPipeError):
                final = self._ask("quit")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
        return final

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("smtp", "sms"))
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument(
        "--dir", type=Path, help="smtp: where the CA file goes (default: a temp dir)"
    )
    args = parser.parse_args()
    if args.kind == "smtp":
        if args.dir:
            serve_smtp(args.port, args.dir)
        else:
            with tempfile.TemporaryDirectory(prefix="sink-smtp-") as tmp:
                serve_smtp(args.port, Path(tmp))
    else:
        serve_sms(args.port)


if __name__ == "__main__":
    main()
