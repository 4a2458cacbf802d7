"""Database plumbing: the declarative base, engines, sessions and migrations."""

from tuanbox.db.base import Base, TimestampMixin, utcnow
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.db.hooks import after_commit

__all__ = [
    "Base",
    "TimestampMixin",
    "after_commit",
    "make_engine",
    "make_session_factory",
    "session_scope",
    "utcnow",
]
