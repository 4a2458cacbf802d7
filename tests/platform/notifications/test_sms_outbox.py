"""The pickup text is durable: queued with the deposit, sent by the worker after the commit,
retried with backoff while the gateway is down, and sent once however often the deposit is
seen. Each step runs in its own session on a fresh PostgreSQL database, as processes would."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from edge.protocol.envelopes import Event, hash_code
from tests.platform.factories import make_user
from tests.platform.fulfilment.fx import confirm, make_locker, make_order, make_sku, make_station
from tests.platform.notifications.fake_sms_gateway import TEMPLATES, FakeSmsGateway
from tests.platform.notifications.test_no_codes_in_clear import PHONE, dump
from tests.platform.notifications.test_sms_gateway import gateway_settings
from tuanbox.db.engine import bind_settings, make_engine, make_session_factory
from tuanbox.fulfilment import inbound, lifecycle
from tuanbox.fulfilment.models import Booking, OpsAlert
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.notifications import outbox
from tuanbox.notifications.models import Notification, SmsOutbox
from tuanbox.notifications.services import SmsSender, get_sms_sender
from tuanbox.privacy import rotation
from tuanbox.settings import Settings
from tuanbox.worker.app import BEAT_SCHEDULE, create_celery

# Texts are queued at the real time; the worker rounds are run at chosen moments after it,
# an hour ahead: the module is imported when the run starts and a test may run many minutes
# later (a minute ahead, CI found the texts not yet due).
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


@pytest.fixture
def fake() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway() as gateway:
        yield gateway


@pytest.fixture
def world(
    fresh_database: Callable[[], str], fake: FakeSmsGateway
) -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    url = fresh_database()
    settings = gateway_settings(
        fake.url, database_url=url, sms_max_attempts=1, sms_outbox_backoff_s=30,
        sms_outbox_backoff_max_s=3600, sms_outbox_max_attempts=5,
    )  # fmt: skip
    engine = make_engine(url)
    factory = make_session_factory(engine)
    yield settings, factory
    engine.dispose()


def _session(factory: sessionmaker[Session], settings: Settings) -> Session:
    session = factory()
    bind_settings(session, settings)
    return session


def _allocated(factory: sessionmaker[Session], settings: Settings) -> tuple[str, str, str]:
    """A committed order with a reserved compartment: (locker id, booking ref, order id)."""
    with _session(factory, settings) as session:
        station = make_station(session)
        locker, _ = make_locker(session, station.id, [CompartmentSpec(0, 1, "S")])
        shopper = make_user(session, phone=PHONE, settings=settings)
        order = make_order(session, user=shopper, sku=make_sku(session), station_id=station.id)
        confirm(session, order)
        booking = session.scalars(select(Booking)).one()
        ids = locker.id, booking.ref, order.id
        session.commit()
    return ids


def _deposit_event(
    factory: sessionmaker[Session], settings: Settings, ctx: lifecycle.Context, event: Event
) -> str:
    """One delivery of the locker's `deposited` event, in its own transaction."""
    with _session(factory, settings) as session:
        result = inbound.apply_event(session, event, ctx=ctx, now=T0)
        session.commit()
    return result


def _rows(factory: sessionmaker[Session]) -> list[SmsOutbox]:
    with factory() as session:
        rows = list(session.scalars(select(SmsOutbox).order_by(SmsOutbox.id)).all())
        session.expunge_all()
    return rows


def test_gateway_down_at_deposit_the_text_goes_out_once_it_is_back(
    world: tuple[Settings, sessionmaker[Session]], fake: FakeSmsGateway
) -> None:
    settings, factory = world
    ctx = lifecycle.Context(settings, Ed25519PrivateKey.generate())
    locker_id, ref, order_id = _allocated(factory, settings)
    fake.fail_with = [503, 503]  # the gateway is down for the first two rounds
    event = Event(locker_id=locker_id, seq=1, type="deposited", at=T0,
                  payload={"order_id": ref, "compartment": "0-1"})  # fmt: skip
    assert _deposit_event(factory, settings, ctx, event) == "applied"
    # Nothing was sent inside the deposit's transaction: the text waits, committed.
    assert fake.attempts == 0
    [row] = _rows(factory)
    assert (row.state, row.attempts, row.template) == ("pending", 0, "pickup_ready")
    assert row.key.startswith(f"pickup_ready:{order_id}:")

    # The worker runs (a new process after a crash would see the same committed row).
    assert outbox.deliver_due(factory, settings, now=T0) == 0
    [row] = _rows(factory)
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "SMS_UNAVAILABLE")
    assert row.next_attempt_at == T0 + timedelta(seconds=30)
    assert outbox.deliver_due(factory, settings, now=T0 + timedelta(seconds=29)) == 0
    assert fake.attempts == 1  # not due yet: no request
    assert outbox.deliver_due(factory, settings, now=T0 + timedelta(seconds=30)) == 0
    [row] = _rows(factory)
    assert row.attempts == 2 and row.next_attempt_at == T0 + timedelta(seconds=90)  # doubled

    # The gateway is back.
    assert outbox.deliver_due(factory, settings, now=T0 + timedelta(seconds=90)) == 1
    [sent] = fake.received
    assert sent.phone == PHONE and sent.template_code == TEMPLATES["pickup_ready"]
    with factory() as session:
        booking = session.scalars(select(Booking)).one()
        code = sent.params["fallback_code"]
        assert hash_code(code, locker_id) == booking.fallback_code_hash
        [row] = session.scalars(select(SmsOutbox)).all()
        assert (row.state, row.payload_enc, row.attempts) == ("sent", None, 3)
        texts = session.scalars(select(Notification).where(Notification.channel == "sms")).all()
        assert [t.id for t in texts] == [row.notification_id]
        # The code was in the outbox only encrypted, and is gone from it now.
        assert code not in dump(session, "sms_outbox") and code not in dump(
            session, "notifications"
        )
    # Later rounds send nothing more.
    assert outbox.deliver_due(factory, settings, now=T0 + timedelta(hours=1)) == 0
    assert len(fake.received) == 1


def test_a_deposit_seen_twice_texts_once(
    world: tuple[Settings, sessionmaker[Session]], fake: FakeSmsGateway
) -> None:
    settings, factory = world
    ctx = lifecycle.Context(settings, Ed25519PrivateKey.generate())
    locker_id, ref, order_id = _allocated(factory, settings)
    event = Event(locker_id=locker_id, seq=1, type="deposited", at=T0,
                  payload={"order_id": ref, "compartment": "0-1"})  # fmt: skip
    assert _deposit_event(factory, settings, ctx, event) == "applied"
    # The same event redelivered, and the locker's retry under a new sequence number.
    assert _deposit_event(factory, settings, ctx, event) == "duplicate"
    again = event.model_copy(update={"seq": 2})
    assert _deposit_event(factory, settings, ctx, again) == "applied"
    assert len(_rows(factory)) == 1
    # Queuing the same key again (a retried transaction) adds nothing either.
    [row] = _rows(factory)
    with _session(factory, settings) as session:
        assert not outbox.enqueue(
            session, key=row.key, user_id=row.user_id, template="pickup_ready",
            payload={"fallback_code": "000000"}, settings=settings,
        )  # fmt: skip
        session.commit()
    # Two workers at once: the row's lock lets one of them send it.
    results: list[int] = []
    go = threading.Barrier(2)

    def worker() -> None:
        go.wait()
        results.append(outbox.deliver_due(factory, settings, now=T0))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 1]
    assert len(fake.received) == 1 and fake.attempts == 1
    assert outbox.deliver_due(factory, settings, now=T0 + timedelta(days=1)) == 0
    assert len(fake.received) == 1
    with factory() as session:
        n = session.scalar(select(sa.func.count()).select_from(Notification).where(
            Notification.channel == "sms"))  # fmt: skip
        assert n == 1
    del order_id


def test_a_rolled_back_deposit_queues_no_text(
    world: tuple[Settings, sessionmaker[Session]], fake: FakeSmsGateway
) -> None:
    settings, factory = world
    ctx = lifecycle.Context(settings, Ed25519PrivateKey.generate())
    locker_id, ref, _ = _allocated(factory, settings)
    event = Event(locker_id=locker_id, seq=1, type="deposited", at=T0,
                  payload={"order_id": ref, "compartment": "0-1"})  # fmt: skip
    with _session(factory, settings) as session:
        assert inbound.apply_event(session, event, ctx=ctx, now=T0) == "applied"
        session.rollback()  # the transaction died before its commit
    assert _rows(factory) == []
    assert outbox.deliver_due(factory, settings, now=T0) == 0 and fake.attempts == 0


def _queue(factory: sessionmaker[Session], settings: Settings, key: str, user_id: str) -> None:
    with _session(factory, settings) as session:
        outbox.enqueue(
            session, key=key, user_id=user_id, template="pickup_ready",
            payload={"fallback_code": "123456"}, settings=settings, now=T0,
        )  # fmt: skip
        session.commit()


def test_a_text_that_keeps_failing_is_given_up_and_a_rejected_number_at_once(
    world: tuple[Settings, sessionmaker[Session]], fake: FakeSmsGateway
) -> None:
    settings, factory = world
    with _session(factory, settings) as session:
        user_id = make_user(session, phone=PHONE, settings=settings).id
        session.commit()
    _queue(factory, settings, "a", user_id)
    fake.fail_with = [503] * 5
    moment = T0
    for _ in range(5):  # TUANBOX_SMS_OUTBOX_MAX_ATTEMPTS rounds
        moment += timedelta(hours=2)
        assert outbox.deliver_due(factory, settings, now=moment) == 0
    [row] = _rows(factory)
    assert (row.state, row.attempts, row.payload_enc) == ("failed", 5, None)
    assert outbox.deliver_due(factory, settings, now=moment + timedelta(days=1)) == 0
    assert fake.attempts == 5

    _queue(factory, settings, "b", user_id)
    fake.answer_code = "isv.MOBILE_NUMBER_ILLEGAL"
    assert outbox.deliver_due(factory, settings, now=moment) == 0
    rows = {r.key: r for r in _rows(factory)}
    assert (rows["b"].state, rows["b"].attempts, rows["b"].last_error) == (
        "failed", 1, "SMS_NUMBER_REJECTED")  # fmt: skip
    assert fake.received == []


def _sms_alerts(factory: sessionmaker[Session]) -> list[OpsAlert]:
    with factory() as session:
        return list(
            session.scalars(select(OpsAlert).where(OpsAlert.kind == "sms_failed").order_by("id"))
        )


def test_texts_given_up_alert_ops_once_per_template_and_error(
    world: tuple[Settings, sessionmaker[Session]], fake: FakeSmsGateway
) -> None:
    """A gateway refusing for an hour is one alert counting its texts, not one per text; another
    error is its own alert; a resolved alert lets the next failure open a fresh one."""
    settings, factory = world
    with _session(factory, settings) as session:
        user_id = make_user(session, phone=PHONE, settings=settings).id
        session.commit()
    assert _sms_alerts(factory) == []
    fake.answer_code = "isv.MOBILE_NUMBER_ILLEGAL"
    for key in ("pickup:1", "pickup:2", "pickup:3"):
        _queue(factory, settings, key, user_id)
    assert outbox.deliver_due(factory, settings, now=T0) == 0
    [alert] = _sms_alerts(factory)
    assert (alert.status, alert.severity) == ("open", "warning")
    assert alert.detail == (
        "texts given up: template pickup_ready, error SMS_NUMBER_REJECTED; 3 texts, last key "
        "pickup:3"
    )
    assert "123456" not in alert.detail  # the code itself never reaches the alert

    fake.answer_code = "OK"
    fake.fail_with = [503] * 5
    _queue(factory, settings, "pickup:4", user_id)
    moment = T0
    for _ in range(5):
        moment += timedelta(hours=2)
        outbox.deliver_due(factory, settings, now=moment)
    alerts = _sms_alerts(factory)
    assert [a.detail.split(";")[0] for a in alerts] == [
        "texts given up: template pickup_ready, error SMS_NUMBER_REJECTED",
        f"texts given up: template pickup_ready, error {_rows(factory)[-1].last_error}",
    ]

    with factory() as session:
        session.execute(sa.update(OpsAlert).values(status="resolved"))
        session.commit()
    fake.answer_code = "isv.MOBILE_NUMBER_ILLEGAL"
    _queue(factory, settings, "pickup:5", user_id)
    outbox.deliver_due(factory, settings, now=moment)
    assert [a.detail for a in _sms_alerts(factory) if a.status == "open"] == [
        "texts given up: template pickup_ready, error SMS_NUMBER_REJECTED; 1 text, last key "
        "pickup:5"
    ]


def test_the_worker_beat_sends_queued_texts(
    world: tuple[Settings, sessionmaker[Session]], fake: FakeSmsGateway
) -> None:
    settings, factory = world
    with _session(factory, settings) as session:
        user_id = make_user(session, phone=PHONE, settings=settings).id
        outbox.enqueue(
            session, key="k", user_id=user_id, template="pickup_ready",
            payload={"fallback_code": "123456"}, settings=settings,
            now=datetime.now(UTC) - timedelta(seconds=1),
        )  # fmt: skip
        session.commit()
    app = create_celery(settings)
    app.loader.import_default_modules()  # the worker imports TASK_MODULES at start
    assert BEAT_SCHEDULE["notifications.deliver_sms"]["task"] == "notifications.deliver_sms"
    assert app.tasks["notifications.deliver_sms"].apply().get() == 1
    assert [r.params["fallback_code"] for r in fake.received] == ["123456"]


def test_a_queued_text_survives_a_key_rotation(
    world: tuple[Settings, sessionmaker[Session]], fake: FakeSmsGateway
) -> None:
    settings, factory = world
    with _session(factory, settings) as session:
        user_id = make_user(session, phone=PHONE, settings=settings).id
        session.commit()
    _queue(factory, settings, "k", user_id)
    old_id = settings.pii_key_id
    rotated = settings.model_copy(
        update={
            "pii_key": SecretStr("new-pii-key-" + "n" * 40),
            "pii_key_id": "k-new",
            "pii_keys": {old_id: settings.pii_key},
        }
    )
    with _session(factory, rotated) as session:
        while rotation.rotate_once(session, rotated):
            session.commit()
        session.commit()
    [row] = _rows(factory)
    assert (row.payload_enc or "").startswith("k-new:")
    new_only = rotated.model_copy(update={"pii_keys": {}})
    assert outbox.deliver_due(factory, new_only, now=T0 + timedelta(minutes=1)) == 1
    assert [r.params["fallback_code"] for r in fake.received] == ["123456"]


class _KilledAfterSend:
    """A worker killed right after the gateway accepted: the text is out, nothing committed."""

    def __init__(self, real: SmsSender) -> None:
        self.real = real

    def send(self, session: Session, phone: str, phone_hash: str, template: str,
             payload: Mapping[str, Any], *, key: str | None = None) -> Notification:  # fmt: skip
        self.real.send(session, phone, phone_hash, template, payload, key=key)
        raise SystemExit("killed after the gateway accepted")


def test_a_worker_killed_after_the_gateway_accepted_does_not_text_twice(
    world: tuple[Settings, sessionmaker[Session]], fake: FakeSmsGateway
) -> None:
    settings, factory = world
    with _session(factory, settings) as session:
        user_id = make_user(session, phone=PHONE, settings=settings).id
        session.commit()
    _queue(factory, settings, "pickup_ready:o:t", user_id)
    with pytest.raises(SystemExit):
        outbox.deliver_due(factory, settings, sms=_KilledAfterSend(get_sms_sender(settings)),
                           now=T0)  # fmt: skip
    assert [r.out_id for r in fake.received] == ["pickup_ready:o:t"]  # the key, as OutId
    # Ops can see the text in flight: pending, marked sending since T0.
    [row] = _rows(factory)
    assert (row.state, row.last_error, row.attempts, row.next_attempt_at) == (
        "pending", "SMS_SENDING", 1, T0)  # fmt: skip
    # The next rounds (a fresh worker): the phone gets no second text.
    assert outbox.deliver_due(factory, settings, now=T0 + timedelta(seconds=30)) == 0
    assert len(fake.received) == 1 and fake.attempts == 1
    # Older than any send can take: failed for ops (it may or may not have gone out), alerted.
    later = T0 + outbox.sending_stale_after(settings)
    assert outbox.deliver_due(factory, settings, now=later) == 0
    [row] = _rows(factory)
    assert (row.state, row.last_error, row.payload_enc) == ("failed", "SMS_OUTCOME_UNKNOWN", None)
    [alert] = _sms_alerts(factory)
    assert alert.detail.startswith("texts given up: template pickup_ready, error SMS_OUTCOME_")
    assert outbox.deliver_due(factory, settings, now=later + timedelta(days=1)) == 0
    assert len(fake.received) == 1
