"""Alembic environment: runs migrations against the URL given by tuanbox.db.migrate."""

from __future__ import annotations

from alembic import context

from tuanbox.db.engine import make_engine
from tuanbox.models import load_all_models

config = context.config
target_metadata = load_all_models()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set by tuanbox.db.migrate"
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Batch mode rebuilds a table (copy, drop, rename): with foreign keys on, dropping
                # `users` would cascade to addresses and refresh tokens. Off before any statement
                # (a PRAGMA inside a transaction is ignored); checked once the migrations ran.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()  # ends the autobegun transaction, so Alembic owns its own
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migrations left dangling foreign keys: {broken[:5]}")
    finally:
        engine.dispose()  # also when a migration fails


run_migrations_online()
