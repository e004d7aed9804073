"""A sturdy small HTTP listener: one thread running an event loop, shared by `/metrics` and the
Twilio callbacks.

http.server's thread per connection let 300 idle clients hold 300 threads and a backlog of 5
drop half of 200 concurrent ones. Here a client costs a socket, not a thread; its request must
arrive whole within `request_timeout` and its answer be taken within as long; at most
MAX_CLIENTS are open at once (more are closed at once, until the idle ones time out); a client
that goes away is a debug line. The request line and headers are read by hand (one request per
connection, answered with `Connection: close`); a subclass answers them in `respond`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from dataclasses import dataclass, field
from http import HTTPStatus

from renewd.config.load import LISTEN_HINT, split_listen
from renewd.core.errors import RenewdError

log = logging.getLogger("renewd")

BACKLOG = 256  # connections the kernel queues while the loop is busy
MAX_CLIENTS = 512  # open at once; idle ones time out, so new ones get in again
MAX_REQUEST = 16_384  # bytes of request line and headers
REQUEST_TIMEOUT = 10.0  # seconds for a request to arrive whole, and for its answer to be taken


class ListenError(RenewdError):
    """A listener's address cannot be listened on."""


@dataclass(frozen=True)
class Request:
    """A request's line and headers (names in lower case; a repeated one is kept in `repeated`)."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    repeated: frozenset[str] = frozenset()

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @classmethod
    def parse(cls, head: bytes) -> Request:
        lines = head.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        headers: dict[str, str] = {}
        repeated: set[str] = set()
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                continue
            name = name.strip().lower()
            if name in headers:
                repeated.add(name)
            headers[name] = value.strip()
        return cls(method, rest.partition(" ")[0], headers, frozenset(repeated))


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    headers: tuple[tuple[str, str], ...] = ()


class Body:
    """A request's body, read only when asked for and within what is left of its time."""

    def __init__(self, reader: asyncio.StreamReader, deadline: float) -> None:
        self._reader = reader
        self._deadline = deadline

    async def read(self, length: int) -> bytes:
        left = self._deadline - asyncio.get_running_loop().time()
        return await asyncio.wait_for(self._reader.readexactly(length), max(left, 0.001))


class TokenBucket:
    """At most `rate` requests a second, in bursts of up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at: float | None = None

    def take(self, now: float) -> bool:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class Listener:
    """Serves `respond` on `address`; `setting` names it in errors (`serve.listen`)."""

    name = "listener"  # in its debug lines

    def __init__(
        self, address: str, setting: str, request_timeout: float = REQUEST_TIMEOUT
    ) -> None:
        host, port = split_listen(address)
        self.request_timeout = request_timeout
        self.open = 0
        self.loop = asyncio.new_event_loop()
        try:
            self.server = self.loop.run_until_complete(
                asyncio.start_server(
                    self._client, host, port, backlog=BACKLOG, limit=MAX_REQUEST, reuse_address=True
                )
            )
        except OSError as exc:
            self.loop.close()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(
                f"{setting} {address}: cannot listen there: {reason} {LISTEN_HINT}"
            ) from None
        self.thread = threading.Thread(
            target=self.loop.run_forever, name=f"renewd-{self.name}", daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()
            await self.closing()

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
        else:
            self.loop.run_until_complete(close())
        self.loop.close()

    async def closing(self) -> None:
        """What a subclass ends when the listener stops (its own tasks)."""

    async def respond(self, request: Request, body: Body) -> Answer:
        raise NotImplementedError

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            if self.open <= MAX_CLIENTS:
                await self._serve(reader, writer)
            else:
                log.debug("%s: %d clients already open; closing a new one", self.name, MAX_CLIENTS)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError) as exc:
            log.debug("%s: client went away: %s", self.name, type(exc).__name__)
        except asyncio.LimitOverrunError:
            log.debug("%s: request head over %d bytes", self.name, MAX_REQUEST)
        finally:
            self.open -= 1
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        deadline = asyncio.get_running_loop().time() + self.request_timeout
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.request_timeout)
        request = Request.parse(head)
        answer = await self.respond(request, Body(reader, deadline))
        lines = [
            f"HTTP/1.1 {answer.status} {HTTPStatus(answer.status).phrase}",
            f"Content-Type: {answer.content_type}",
            f"Content-Length: {len(answer.body)}",
            "Server: renewd",  # what `check` looks for when the address is in use
            *(f"{name}: {value}" for name, value in answer.headers),
            "Connection: close",
        ]
        writer.write("\r\n".join(lines).encode() + b"\r\n\r\n")
        if request.method != "HEAD":
            writer.write(answer.body)
        await asyncio.wait_for(writer.drain(), self.request_timeout)
