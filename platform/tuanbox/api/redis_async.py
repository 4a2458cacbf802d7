"""The API process's asyncio Redis connection for burst paths: one pipelined connection.

The burst paths (flash-sale reservations, group joins) make one Redis call per request, on
the event loop. redis-py's asyncio client spends ~60 us of CPU per call here (pool
checkout, health checks, argument encoding in Python); this connection spends ~10-20 us:
commands are packed by hiredis and answered in order (RESP is FIFO per connection), so
concurrent requests share one socket without a pool. Commands issued in the same turn of the
event loop leave in one write (auto-pipelining, flushed by the loop's next callback): under a
burst, a socket write per request was a tenth of a worker's CPU, and Redis reads them in one
go too. A call not answered
within `timeout_s` closes the connection and fails every call in flight on it (their
answers could no longer be told apart); the next call reconnects.

Made at the app's startup, closed at shutdown. Without a lifespan (a TestClient used
without `with`) each caller gets a connection of its own for the request.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis
import redis
from fastapi import FastAPI, Request

STATE_KEY = "redis_async"


def _pack(args: tuple[str | bytes | int, ...]) -> bytes:
    # hiredis's stub types the argument as a 1-tuple; it takes a tuple of any length.
    return hiredis.pack_command(args)  # type: ignore[arg-type]


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[tuple[float, asyncio.Future[Any]]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self._outbox: list[bytes] = []  # packed commands of this loop turn, not yet written

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)

    def send(self, command: bytes) -> None:
        """Queue a packed command; the loop turn's commands are written together."""
        self._outbox.append(command)
        if len(self._outbox) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        commands, self._outbox = self._outbox, []
        # A lost connection has failed these commands' waiters already (connection_lost).
        if self.transport is not None and not self.lost:
            self.transport.write(b"".join(commands))

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            _, fut = self.waiting.popleft()
            if not fut.done():
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        while self.waiting:
            _, fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(redis.ConnectionError(f"Redis connection lost: {exc}"))


class AsyncRedis:
    """A pipelined Redis connection; `await call(*args)` sends one command."""

    def __init__(self, url: str, *, timeout_s: float = 2.0) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    async def call(self, *args: str | bytes | int) -> Any:
        """The command's reply; an error reply raises redis.ResponseError, a dead or slow
        connection redis.ConnectionError or redis.TimeoutError."""
        proto = self._proto
        if proto is None or proto.lost:
            proto = await self._connect()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        proto.waiting.append((time.monotonic(), fut))
        proto.send(_pack(args))
        reply = await fut
        if isinstance(reply, hiredis.ReplyError):
            raise redis.ResponseError(str(reply))
        return reply

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._proto is not None and not self._proto.lost:
                return self._proto
            parts = urlsplit(self._url)
            if parts.scheme not in ("redis", "rediss"):
                raise redis.ConnectionError(f"unsupported Redis URL scheme {parts.scheme!r}")
            loop = asyncio.get_running_loop()
            try:
                _, proto = await asyncio.wait_for(
                    loop.create_connection(
                        _Protocol,
                        parts.hostname or "127.0.0.1",
                        parts.port or 6379,
                        ssl=ssl.create_default_context() if parts.scheme == "rediss" else None,
                    ),
                    self._timeout_s,
                )
            except (OSError, TimeoutError) as exc:
                raise redis.ConnectionError(f"Redis unreachable: {exc}") from exc
            hello: list[tuple[str | bytes | int, ...]] = []
            if parts.password is not None:
                secret = unquote(parts.password)
                user = unquote(parts.username) if parts.username else None
                hello.append(("AUTH", user, secret) if user else ("AUTH", secret))
            db = parts.path.lstrip("/")
            if db and db != "0":
                hello.append(("SELECT", int(db)))
            # Written before any other caller can use the connection, so theirs come after.
            pending = []
            for command in hello:
                fut: asyncio.Future[Any] = loop.create_future()
                proto.waiting.append((time.monotonic(), fut))
                assert proto.transport is not None
                proto.transport.write(_pack(command))
                pending.append(fut)
            self._proto = proto
            self._arm_watchdog(proto)
            for fut in pending:
                reply = await fut
                if isinstance(reply, hiredis.ReplyError):
                    assert proto.transport is not None
                    proto.transport.close()
                    raise redis.ConnectionError(f"Redis refused the connection: {reply}")
            return proto

    def _arm_watchdog(self, proto: _Protocol) -> None:
        """Every half timeout: a connection whose oldest call waits too long is closed.

        Overdue is judged twice, the second time after the loop has read its sockets: when
        the loop itself was held (a thread holding the GIL, a busy box), the answer may be
        sitting unread in the socket, and uvloop runs due timers before it polls for I/O.
        Failing that call would turn a slow loop into a 503 that Redis never caused."""
        loop = asyncio.get_running_loop()

        def overdue() -> asyncio.Future[Any] | None:
            if proto.waiting and time.monotonic() - proto.waiting[0][0] > self._timeout_s:
                return proto.waiting[0][1]
            return None

        def check() -> None:
            suspect = overdue()
            if suspect is not None:
                # A timer, not call_soon: it runs after the loop's next poll for I/O.
                self._watchdog = loop.call_later(self._timeout_s / 10, confirm, suspect)
            elif not proto.lost:
                self._watchdog = loop.call_later(self._timeout_s / 2, check)

        def confirm(suspect: asyncio.Future[Any]) -> None:
            if overdue() is suspect:
                waiting = list(proto.waiting)
                proto.waiting.clear()
                for _, fut in waiting:
                    if not fut.done():
                        fut.set_exception(redis.TimeoutError("Redis did not answer in time"))
                proto.lost = True
                if proto.transport is not None:
                    proto.transport.abort()
            if not proto.lost:
                self._watchdog = loop.call_later(self._timeout_s / 2, check)

        self._watchdog = loop.call_later(self._timeout_s / 2, check)

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()


def open_client(app: FastAPI) -> None:
    setattr(app.state, STATE_KEY, AsyncRedis(app.state.settings.redis_url))


async def close_client(app: FastAPI) -> None:
    client: AsyncRedis | None = getattr(app.state, STATE_KEY, None)
    if client is not None:
        setattr(app.state, STATE_KEY, None)
        await client.aclose()


@asynccontextmanager
async def redis_for(request: Request) -> AsyncIterator[AsyncRedis]:
    """The app's connection (or, outside a lifespan, one for this request only)."""
    client: AsyncRedis | None = getattr(request.app.state, STATE_KEY, None)
    if client is not None:
        yield client
        return
    own = AsyncRedis(request.app.state.settings.redis_url)
    try:
        yield own
    finally:
        await own.aclose()
