"""Run callbacks only after the session's transaction commits (e.g. sending Celery tasks)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger("tuanbox.db")
_KEY = "tuanbox_after_commit"


def after_commit(session: Session, fn: Callable[[], object]) -> None:
    """Call `fn` once the current transaction commits; dropped if it rolls back.

    A task sent before commit can run before its rows are visible, or for rows that never
    commit; queueing here avoids both.
    """
    pending: list[Callable[[], object]] | None = session.info.get(_KEY)
    if pending is None:
        pending = []
        session.info[_KEY] = pending
        event.listen(session, "after_commit", _run)
        event.listen(session, "after_transaction_end", _drop)
    pending.append(fn)


def _run(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a SAVEPOINT was released; the real commit is still to come
    pending: list[Callable[[], object]] = session.info.get(_KEY, [])
    callbacks = list(pending)
    pending.clear()
    for fn in callbacks:
        try:
            fn()
        except Exception:
            # The transaction is already committed; one failing callback must not hide the
            # others. Durable work is always re-found by a DB scan, so this is only latency.
            log.exception("after-commit callback failed")


def _drop(session: Session, transaction: SessionTransaction) -> None:
    # After a commit `_run` has already emptied the list; anything left was rolled back.
    if transaction.parent is not None:
        return  # a SAVEPOINT ended; the outer transaction may still commit
    pending: list[Callable[[], object]] | None = session.info.get(_KEY)
    if pending is not None:
        pending.clear()
