"""The bridge's outbound side: claim due commands (committed) and publish them at QoS 1;
expire commands past their TTL and stall accepted ones past the accepted timeout."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from edge.protocol.topics import topic
from tuanbox.db.engine import bind_settings, session_scope
from tuanbox.dispatch import outbox
from tuanbox.dispatch.stats import BridgeStats
from tuanbox.fulfilment import inbound
from tuanbox.settings import Settings


class Outbound:
    """One bridge's passes over the outbox (its outbox loop calls them)."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        client: mqtt.Client,
        stats: BridgeStats,
        *,
        clock: Callable[[], datetime],
        connected: threading.Event,
        autocommit: Engine | None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.client = client
        self.stats = stats
        self.clock = clock
        self.connected = connected
        # PostgreSQL's engine in autocommit (the claim and the housekeeping's read are one
        # statement each there); None elsewhere.
        self._autocommit = autocommit
        # Set while the in-flight window (command_max_in_flight) holds due commands back: an
        # ack that settles one then wakes the outbox loop instead of leaving it to the poll.
        self.held_back = False
        # When the earliest retry or accepted timeout comes due, as of the last housekeeping.
        self.due_at: datetime | None = None

    def tick(self) -> int:
        """One whole pass over the outbox; returns how many commands were published."""
        now = self.clock()
        published = self.publish_due(now) if self.connected.is_set() else 0
        self.housekeeping(now)
        return published

    def housekeeping(self, now: datetime) -> None:
        """Expire commands past their TTL, stall accepted ones past the accepted timeout (and
        re-send those), and note when the next retry or timeout comes due.

        One read tells whether anything is to expire or stall; only then are those rows
        locked and moved (a pass of a busy bridge is one round trip, not three)."""
        limit = self.settings.bridge_batch
        with self._statement() as session:
            times = outbox.due_times(session)
        if not (
            (times.expiry is not None and times.expiry <= now)
            or (times.stall is not None and times.stall <= now)
        ):
            self.due_at = times.due
            return
        with session_scope(self.session_factory) as session:
            bind_settings(session, self.settings)
            expired = []
            if times.expiry is not None and times.expiry <= now:
                expired = outbox.expire_due(session, now=now, limit=limit)
            for command in expired:
                inbound.command_expired(session, command)
            stalled = []
            if times.stall is not None and times.stall <= now:
                stalled = outbox.stall_due(session, now=now, limit=limit)
            for command in stalled:
                inbound.command_stalled(session, command, settings=self.settings, now=now)
            resend = [(command.locker_id, command.body.encode()) for command in stalled]
            # Stalling moved rows out of "accepted": the next due time is read again then.
            due = outbox.next_due_at(session) if stalled else times.due
        self.due_at = due
        self.stats.expired += len(expired)
        self.stats.stalled += len(stalled)
        if self.connected.is_set():
            for locker_id, body in resend:
                self.client.publish(topic(locker_id, "cmd"), body, qos=1)

    @contextmanager
    def _statement(self) -> Iterator[Session]:
        """A session for one statement that is a transaction by itself: in autocommit on
        PostgreSQL (the claim is one statement there); elsewhere a transaction of its own."""
        if self._autocommit is None:
            with session_scope(self.session_factory) as session:
                yield session
            return
        with self._autocommit.connect() as conn, Session(bind=conn) as session:
            yield session

    def publish_due(self, now: datetime) -> int:
        """Claim due commands (committed), then publish them; first in a pass, since a
        notified commit waits on it."""
        with self._statement() as session:
            # A window over all bridges: more unacked commands than the broker queues for a
            # slow consumer (Mosquitto drops beyond max_queued_messages) would only come back
            # as retries after the ack timeout. Counted in the claiming statement itself.
            claimed, window = outbox.claim_window(
                session,
                now=now,
                limit=self.settings.bridge_batch,
                ack_timeout_s=self.settings.command_ack_timeout_s,
                retry_max_s=self.settings.command_retry_max_s,
                max_in_flight=self.settings.command_max_in_flight,
            )
        self.held_back = window <= len(claimed)
        if claimed:  # their retries come due an ack timeout from now at the soonest
            retry_at = now + timedelta(seconds=self.settings.command_ack_timeout_s)
            self.due_at = retry_at if self.due_at is None else min(self.due_at, retry_at)
        self.stats.claims += 1
        for item in claimed:
            self.client.publish(topic(item.locker_id, "cmd"), item.body, qos=1)
        self.stats.published += len(claimed)
        return len(claimed)
