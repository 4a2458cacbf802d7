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
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
