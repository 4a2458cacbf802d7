"""A Redis Stream consumer as a process of its own (`tuanbox flash-orders`,
`tuanbox group-joins`): its engine and Redis client, stopped by SIGTERM or SIGINT after the
batch in hand, and the supervisor loop both consumers' `run` is (`poll_until`)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
from sqlalchemy.orm import Session

from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.worker.streams")


class StreamConsumer(Protocol):
    name: str

    def run(self, stop: Callable[[], bool]) -> None: ...


def poll_until(
    stop: Callable[[], bool],
    step: Callable[[], object],
    *,
    what: str,
    after_failure: Callable[[], None],
    logger: logging.Logger = log,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Call `step` until `stop()`. A failing step is logged, `after_failure` runs (a
    consumer then re-reads its own pending entries first) and the step is retried after a
    pause, 0.1 s doubled per failure up to 5 s, so a failing dependency is not hammered."""
    backoff = 0.1
    while not stop():
        try:
            step()
            backoff = 0.1
        except Exception:  # the supervisor loop: logged, and it goes on
            logger.exception("%s step failed; retrying", what)
            after_failure()
            sleep(backoff)
            backoff = min(backoff * 2, 5.0)


# (Redis client, session factory) -> the consumer
Build = Callable[[redis.Redis, Callable[[], Session]], StreamConsumer]


def run_until_signalled(settings: Settings, build: Build, *, what: str) -> None:
    """Consume until SIGTERM or SIGINT, finishing the current batch."""
    from tuanbox.db.engine import make_engine, make_session_factory

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    engine = make_engine(settings.database_url)
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=10.0, socket_connect_timeout=5.0
    )
    consumer = build(client, make_session_factory(engine, settings))
    log.info(f"{what} started", extra={"consumer": consumer.name})
    try:
        consumer.run(stopping.is_set)
    finally:
        client.close()
        engine.dispose()
