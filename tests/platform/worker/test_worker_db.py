"""Task engines: one per database URL, reused, and disposed when pushed out."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tuanbox.worker import db


def test_engines_are_reused_and_the_oldest_is_disposed_when_pushed_out(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path}/w{i}.sqlite3" for i in range(db.MAX_ENGINES + 1)]
    try:
        first = db.session_factory_for(urls[0])
        assert db.session_factory_for(urls[0]) is first
        with first() as session:
            session.execute(sa.text("SELECT 1"))
        engine = first.kw["bind"]
        assert engine.pool.checkedin() == 1  # a pooled connection, open

        for url in urls[1:]:
            db.session_factory_for(url)
        assert engine.pool.checkedin() == 0  # disposed: its connection closed, not leaked
        assert db.session_factory_for(urls[0]) is not first
    finally:
        db.dispose_all()
