"""The `tuanbox bridge` process: composition root of one bridge, run until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.dispatch.bridge import Bridge
from tuanbox.fulfilment.lifecycle import Context
from tuanbox.fulfilment.pickup import load_signing_key
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.bridge")
# No ping before each transaction: it is one more round trip per claim and per inbound batch,
# and the bridge needs none: a connection that died with the server fails its transaction as
# a transient error (the pool then replaces every connection), which the outbox loop retries
# on its next pass and the inbound worker in place.
BRIDGE_PRE_PING = False


def build_bridge(settings: Settings, *, client_id: str | None, durable: bool | None) -> Bridge:
    engine = make_engine(settings.database_url, pool_pre_ping=BRIDGE_PRE_PING)
    ctx = Context(settings, load_signing_key(settings))
    factory = make_session_factory(engine, settings)
    return Bridge(settings, factory, ctx, client_id=client_id, durable=durable)


def run_bridge(settings: Settings, *, client_id: str | None, durable: bool | None) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bridge = build_bridge(settings, client_id=client_id, durable=durable)
    bridge.start()
    log.info(
        "bridge running",
        extra={
            "client_id": bridge.client_id,
            "durable": bridge.durable,
            "broker": f"{settings.mqtt_host}:{settings.mqtt_port}",
        },
    )
    stop.wait()
    bridge.stop()
    log.info("bridge stopped", extra={"published": bridge.stats.published})
