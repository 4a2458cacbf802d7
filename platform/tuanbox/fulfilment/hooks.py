"""Order hooks of fulfilment: confirmed orders join a delivery wave, cancelled ones give space back.

Listed in `tuanbox.orders.hooks.HOOK_MODULES`. Hooks get no settings object, so they use the
settings bound to the session (`tuanbox.db.engine.settings_of`): every entry point builds its
sessions with its own settings, and a session without them is an error, never the defaults.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from tuanbox.db.base import utcnow
from tuanbox.db.engine import bind_settings, settings_of
from tuanbox.fulfilment import waves
from tuanbox.fulfilment.allocation import allocate
from tuanbox.fulfilment.lifecycle import release_cancelled
from tuanbox.fulfilment.models import FulfilmentOrder
from tuanbox.orders.hooks import on_status
from tuanbox.orders.models import Order

__all__ = ["bind_settings", "settings_of"]


def _on_confirmed(session: Session, order: Order, from_status: str) -> None:
    """Give the order its station's next delivery wave; the wave job allocates it later.

    An order that already went through its wave's allocation (queued for a full station)
    tries again at once, and one with no station gets its ops alert, as before waves.
    """
    settings, now = settings_of(session), utcnow()
    if order.station_id is None or session.get(FulfilmentOrder, order.id) is not None:
        allocate(session, order, settings=settings, now=now)
    else:
        waves.assign(session, order, settings=settings, now=now)


def _on_cancelled(session: Session, order: Order, from_status: str) -> None:
    release_cancelled(session, order.id, settings=settings_of(session), now=utcnow())


on_status("confirmed", _on_confirmed)
on_status("cancelled", _on_cancelled)
