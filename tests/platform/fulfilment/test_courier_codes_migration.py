"""Migration 0031 on PostgreSQL and SQLite: courier codes encrypted in place, and back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session

from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.crypto import PiiCipher
from tuanbox.db.engine import make_engine
from tuanbox.db.migrate import alembic_config, upgrade
from tuanbox.fulfilment import codes
from tuanbox.fulfilment.models import Booking
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.models import load_all_models
from tuanbox.settings import Settings

BEFORE, THIS = "0030_recommendations", "0031_courier_codes"


@pytest.fixture(params=["postgresql", "sqlite"])
def migrated_url(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_database: Callable[[], str]
) -> str:
    if request.param == "postgresql":
        return fresh_database()
    url = f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
    upgrade(url)
    return url


def _ours(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) in ("compartment_bookings", "sms_outbox")


def _clear(conn: sa.Connection) -> dict[str, tuple[str, str | None]]:
    rows = conn.execute(
        sa.text("SELECT ref, deposit_code, retrieval_code FROM compartment_bookings")
    )
    return {ref: (deposit, retrieval) for ref, deposit, retrieval in rows}


def test_codes_are_encrypted_in_place_and_decrypted_back(migrated_url: str) -> None:
    cipher = PiiCipher(Settings())  # what the migration reads: the deployment's environment
    engine = make_engine(migrated_url)
    try:
        with Session(engine) as session:
            station = make_station(session)
            locker, _ = make_locker(session, station.id, [CompartmentSpec(0, 1, "M")])
            comp = session.scalars(sa.select(Compartment)).one()
            reserved, returning = str(uuid.uuid4()), str(uuid.uuid4())
            for ref, state, retrieval in ((reserved, "reserved", None),
                                          (returning, "returning", "654321")):  # fmt: skip
                session.add(
                    Booking(
                        ref=ref, compartment_id=comp.id, locker_id=locker.id,
                        station_id=station.id, user_id="u", zone="ambient", units_used=1,
                        state=state,
                        deposit_code_enc=codes.seal(cipher, ref, "deposit", "123456"),
                        retrieval_code_enc=retrieval
                        and codes.seal(cipher, ref, "retrieval", retrieval),
                    )
                )  # fmt: skip
            session.commit()
        engine.dispose()

        cfg = alembic_config(migrated_url)
        command.downgrade(cfg, BEFORE)
        with engine.connect() as conn:
            assert _clear(conn) == {reserved: ("123456", None), returning: ("123456", "654321")}
            # A booking written before this migration, in clear.
            conn.execute(
                sa.text("UPDATE compartment_bookings SET deposit_code = '777777' WHERE ref = :r"),
                {"r": reserved},
            )
            conn.commit()
        engine.dispose()

        command.upgrade(cfg, THIS)
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("compartment_bookings")}
            assert {"deposit_code", "retrieval_code"}.isdisjoint(columns)
            rows = conn.execute(
                sa.text(
                    "SELECT ref, deposit_code_enc, retrieval_code_enc FROM compartment_bookings"
                )
            ).all()
            for _ref, deposit, retrieval in rows:
                assert "777777" not in deposit and "123456" not in deposit
                assert retrieval is None or "654321" not in retrieval
            shown = {
                ref: (
                    codes.reveal(cipher, ref, "deposit", deposit),
                    retrieval and codes.reveal(cipher, ref, "retrieval", retrieval),
                )
                for ref, deposit, retrieval in rows
            }
            assert shown == {reserved: ("777777", None), returning: ("123456", "654321")}
            # The migrated tables (bookings, sms_outbox) are what the models declare.
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": _ours}
            )
            assert compare_metadata(context, load_all_models()) == []
    finally:
        engine.dispose()
