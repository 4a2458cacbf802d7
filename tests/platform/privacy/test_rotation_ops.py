"""Operating a rotation: beat starts one when the key id changes (and resumes a lost one);
`tuanbox pii rotate` shows progress, `--background` queues the task, `status` says when the
old key may go. The CLI runs on SQLite here, the beat check on PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from pydantic import SecretStr
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.platform.factories import make_user
from tuanbox.accounts.services import add_address, set_display_name
from tuanbox.audit.models import AuditEntry
from tuanbox.cli import app
from tuanbox.crypto import PiiCipher
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.db.migrate import upgrade
from tuanbox.privacy import rotation
from tuanbox.privacy.models import PiiRotation
from tuanbox.settings import Settings, get_settings

OLD_KEY = "old-pii-key-" + "o" * 40
NEW_KEY = "new-pii-key-" + "n" * 40
# Its own Redis database: the CLI queues on the default queue, which nothing here consumes.
CLI_REDIS_DB = 14


def _queued(client: redis.Redis, queue: str) -> list[dict[str, object]]:
    """The task messages waiting on a Celery queue in Redis (task name and kwargs)."""
    out = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        out.append({"task": message["headers"]["task"], **kwargs})
    return out


def _fill(settings: Settings, people: int = 5) -> None:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine, settings)) as session:
            for n in range(people):
                user = make_user(session, phone=f"+86135000000{n:02d}", settings=settings)
                set_display_name(settings, user, f"王 {n}")
                add_address(session, settings, user.id, f"{n} Pine Rd")
    finally:
        engine.dispose()


@pytest.fixture
def queue(redis_url: str) -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(redis_url)
    name = f"test-pii-{uuid.uuid4().hex}"
    yield client, name
    client.delete(name)
    client.close()


def test_beat_starts_a_sweep_when_the_key_id_changes_and_resumes_a_lost_one(
    fresh_database: Callable[[], str], queue: tuple[redis.Redis, str], redis_url: str
) -> None:
    import tuanbox.privacy.tasks  # noqa: F401  registers the shared tasks
    from tuanbox.worker.app import create_celery

    client, name = queue
    url = fresh_database()
    old = make_settings(database_url=url, redis_url=redis_url, pii_key=OLD_KEY, pii_key_id="k1")
    _fill(old)
    new = old.model_copy(
        update={
            "pii_key": SecretStr(NEW_KEY),
            "pii_key_id": "k2",
            "pii_keys": {"k1": SecretStr(OLD_KEY)},
        }
    )

    def check(settings: Settings) -> str:
        celery = create_celery(settings)
        celery.conf.task_default_queue = name
        return str(celery.tasks["pii.rotation_check"].apply().get())

    assert check(new) == "started"
    assert [m["task"] for m in _queued(client, name)] == ["pii.rotate"]
    client.delete(name)

    engine = make_engine(url)
    factory = make_session_factory(engine, new)
    try:
        done = rotation.sweep(lambda: session_scope(factory), new)
        assert done.done and done.remaining == 0
        assert check(new) == "finished" and _queued(client, name) == []

        # A sweep whose worker died (no batch for a long while) is resumed; a live one is not.
        newer = new.model_copy(
            update={
                "pii_key": SecretStr("k3-" + "z" * 40),
                "pii_key_id": "k3",
                "pii_keys": {"k2": SecretStr(NEW_KEY)},
            }
        )
        with session_scope(factory) as session:
            rotation.step(session, newer, batch=1)
        assert check(newer) == "running" and _queued(client, name) == []
        with session_scope(factory) as session:
            run = session.get(PiiRotation, "k3")
            assert run is not None
            run.updated_at = utcnow() - timedelta(hours=1)
        assert check(newer) == "resumed"
        assert [m["task"] for m in _queued(client, name)] == ["pii.rotate"]
    finally:
        engine.dispose()


@pytest.fixture
def cli_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> Iterator[tuple[str, redis.Redis]]:
    url = f"sqlite:///{tmp_path}/pii.sqlite3"
    upgrade(url)
    _fill(make_settings(database_url=url, pii_key=OLD_KEY, pii_key_id="k1"))
    broker = redis_url.rsplit("/", 1)[0] + f"/{CLI_REDIS_DB}"
    client = redis.Redis.from_url(broker)
    client.delete("default")
    for key, value in {
        "TUANBOX_ENV": "test",
        "TUANBOX_DATABASE_URL": url,
        "TUANBOX_REDIS_URL": broker,
        "TUANBOX_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "TUANBOX_PAYMENT_WEBHOOK_SECRET": "test-webhook-secret",
        "TUANBOX_PII_KEY": NEW_KEY,
        "TUANBOX_PII_KEY_ID": "k2",
        "TUANBOX_PII_KEYS": json.dumps({"k1": OLD_KEY}),
        "TUANBOX_PII_ROTATE_BATCH": "2",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield url, client
    get_settings.cache_clear()
    client.delete("default")
    client.close()


def test_cli_rotates_with_progress_queues_in_background_and_reports_status(
    cli_env: tuple[str, redis.Redis],
) -> None:
    url, broker = cli_env
    runner = CliRunner()
    before = runner.invoke(app, ["pii", "status"])
    assert before.exit_code == 0, before.output
    assert "sweep: not started" in before.output and "users: 5 left" in before.output
    assert before.output.rstrip().endswith("keep the old keys")

    done = runner.invoke(app, ["pii", "rotate"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    # Batches of two: the progress shows each, table by table.
    assert lines[:3] == [
        "users: 2 re-encrypted, 0 changed meanwhile, 0 unreadable (2 read)"
    ] * 2 + ["users: 1 re-encrypted, 0 changed meanwhile, 0 unreadable (1 read)"]
    assert any(line.startswith("addresses: 2 re-encrypted") for line in lines)
    assert lines[-1] == "key k2: 10 rows re-encrypted, 0 unreadable, 0 still under another key"

    after = runner.invoke(app, ["pii", "status"])
    assert "sweep: finished" in after.output and "by cli" in after.output
    assert after.output.rstrip().endswith("old keys may be dropped")

    queued = runner.invoke(app, ["pii", "rotate", "--background"])
    assert queued.exit_code == 0 and "queued pii.rotate" in queued.output
    assert _queued(broker, "default") == [
        {"task": "pii.rotate", "actor_id": "cli", "actor_role": "ops", "restart": True}
    ]

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            audited = session.execute(
                sa.select(AuditEntry.action, AuditEntry.actor_id, AuditEntry.details)
                .where(AuditEntry.subject_type == "pii_key")
                .order_by(AuditEntry.id)
            ).all()
            phones = session.scalars(sa.text("SELECT phone_enc FROM users")).all()
    finally:
        engine.dispose()
    assert [(a, b) for a, b, _ in audited] == [
        ("pii.rotate.start", "cli"),
        ("pii.rotate.finish", "cli"),
    ]
    assert audited[-1][2]["rotated"] == 10 and audited[-1][2]["remaining"] == 0
    only_new = make_settings(pii_key=NEW_KEY, pii_key_id="k2")
    assert sorted(PiiCipher(only_new).decrypt(p, context="phone") for p in phones) == [
        f"+86135000000{n:02d}" for n in range(5)
    ]
