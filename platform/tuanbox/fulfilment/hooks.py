"""Order hooks of fulfilment: confirmed orders are allocated, cancelled ones give space back.

Listed in `tuanbox.orders.hooks.HOOK_MODULES`. Hooks get no settings object, so entry points
that want their own knobs (command TTL) bind them to the session with `bind_settings`;
otherwise the documented defaults apply.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from tuanbox.db.base import utcnow
from tuanbox.fulfilment import waves
from tuanbox.fulfilment.allocation import allocate
from tuanbox.fulfilment.lifecycle import release_cancelled
from tuanbox.fulfilment.models import FulfilmentOrder
from tuanbox.orders.hooks import on_status
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

SETTINGS_KEY = "tuanbox_settings"


def bind_settings(session: Session, settings: Settings) -> None:
    """Let hooks running in this session use these settings."""
    session.info[SETTINGS_KEY] = settings


def settings_of(session: Session) -> Settings:
    bound = session.info.get(SETTINGS_KEY)
    # model_construct: field defaults only, without reading the environment (which only
    # entry points do).
    return bound if isinstance(bound, Settings) else Settings.model_construct()


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
