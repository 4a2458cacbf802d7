"""The API's pipelined asyncio Redis connection against real Redis: answers in order under
concurrency, error replies, a stalled server timing out, reconnection; asyncio and uvloop."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import uvloop

from tests.support import free_port, wait_until
from tuanbox.api.redis_async import AsyncRedis
from tuanbox.devservices import probes

LOOPS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_concurrent_calls_get_their_own_answers(loop: str, redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        client = AsyncRedis(redis_url)
        try:
            await asyncio.gather(*(client.call("SET", f"{prefix}:{i}", i) for i in range(200)))
            got = await asyncio.gather(*(client.call("GET", f"{prefix}:{i}") for i in range(200)))
            assert got == [str(i).encode() for i in range(200)]
            with pytest.raises(redis.ResponseError, match="NOSCRIPT"):
                await client.call("EVALSHA", "0" * 40, 0)
            assert await client.call("DEL", *(f"{prefix}:{i}" for i in range(200))) == 200
        finally:
            await client.aclose()

    LOOPS[loop](main())


@pytest.fixture
def own_redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own: pausing it stalls no other test."""
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: _answers(port), 10, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(10)


def _answers(port: int) -> bool:
    try:
        probes.redis("127.0.0.1", port)
    except OSError:
        return False
    return True


def test_a_stalled_server_times_out_and_the_next_call_reconnects(own_redis_url: str) -> None:
    async def main() -> None:
        client = AsyncRedis(own_redis_url, timeout_s=0.4)
        admin = redis.Redis.from_url(own_redis_url)
        try:
            assert await client.call("PING") == b"PONG"
            admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # Redis answers no one
            calls = [client.call("PING") for _ in range(3)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(r, redis.TimeoutError) for r in results), results

            async def answered() -> bytes:
                while True:
                    try:
                        return bytes(await client.call("PING"))
                    except (redis.TimeoutError, redis.ConnectionError):
                        continue  # still paused: each try times out, the next reconnects

            assert await asyncio.wait_for(answered(), 10) == b"PONG"
        finally:
            admin.execute_command("CLIENT", "UNPAUSE")
            admin.close()
            await client.aclose()

    asyncio.run(main())


def test_an_unreachable_redis_is_a_connection_error() -> None:
    async def main() -> None:
        client = AsyncRedis("redis://127.0.0.1:1/0", timeout_s=1)
        with pytest.raises(redis.ConnectionError):
            await client.call("PING")
        await client.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_calls_of_one_loop_turn_leave_in_one_write(loop: str, redis_url: str) -> None:
    async def main() -> None:
        client = AsyncRedis(redis_url)
        try:
            assert await client.call("PING") == b"PONG"  # connected
            proto = client._proto
            assert proto is not None and proto.transport is not None
            writes: list[bytes] = []
            proto.transport = _CountingTransport(proto.transport, writes)
            got = await asyncio.gather(*(client.call("ECHO", f"m{i}") for i in range(50)))
            assert got == [f"m{i}".encode() for i in range(50)]
            assert len(writes) == 1 and writes[0].count(b"ECHO") == 50
            # A call on its own still goes out on the next turn.
            assert await client.call("ECHO", "alone") == b"alone"
            assert len(writes) == 2
        finally:
            await client.aclose()

    LOOPS[loop](main())


class _CountingTransport:
    """Records each write, then hands it on (uvloop's transports cannot be patched)."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_an_answer_that_arrived_in_time_is_read_before_the_call_times_out(
    loop: str, redis_url: str
) -> None:
    # Redis answers at once, but the loop does not read the socket until past the timeout:
    # in the API, threads holding the GIL on a busy box keep the loop from reading between
    # its poll for I/O and its timers. Reading is paused here instead, and resumed just after
    # the watchdog's look that finds the call overdue. A watchdog failing the call at that
    # look answered 503 for a Redis that had answered; it must look again after the loop
    # has read its sockets.
    async def main() -> None:
        client = AsyncRedis(redis_url, timeout_s=2.0)  # the watchdog looks every 1.0 s
        loop = asyncio.get_running_loop()
        try:
            assert await client.call("PING") == b"PONG"  # connected, watchdog armed
            proto = client._proto
            assert proto is not None and proto.transport is not None
            await asyncio.sleep(0.5)
            proto.transport.pause_reading()
            call = asyncio.ensure_future(client.call("ECHO", "in time"))
            # The watchdog's looks at ~1.0 and ~2.0 s find it waiting 0.5 and 1.5 s, the one
            # at ~3.0 s overdue (2.5 s); reading resumes at ~3.1 s.
            loop.call_later(2.6, proto.transport.resume_reading)
            assert await call == b"in time"
        finally:
            await client.aclose()

    LOOPS[loop](main())
