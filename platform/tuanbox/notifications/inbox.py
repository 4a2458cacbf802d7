"""The development inbox at /dev/inbox: the latest texts and notices, codes readable.

Mounted by `create_app` only when TUANBOX_ENV=development; in test and production the
route does not exist (404). The codes shown were kept encrypted (see `records`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.crypto import PiiCipher, PiiDecryptError
from tuanbox.errors import NotFoundError
from tuanbox.notifications.models import Notification
from tuanbox.notifications.records import REDACTED, secrets_of
from tuanbox.notifications.wording import render

router = APIRouter(tags=["pages"], include_in_schema=False)
_templates: Jinja2Templates | None = None


def templates() -> Jinja2Templates:
    """Built on first use, not at import."""
    global _templates
    if _templates is None:
        _templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
    return _templates


@dataclass(frozen=True)
class Message:
    row: Notification
    to: str
    codes: dict[str, Any]
    fields: dict[str, Any]
    unreadable: bool = False
    # The text as the gateway template reads (None for notices without wording).
    text: str | None = None


def _message(cipher: PiiCipher, row: Notification) -> Message:
    fields = {k: v for k, v in row.payload.items() if k != REDACTED}
    try:
        kept = secrets_of(cipher, row)
    except PiiDecryptError:  # written under a PII key these settings no longer hold
        return Message(row, row.user_id or "", {}, fields, unreadable=True)
    to = str(kept.pop("to", "") or (f"user {row.user_id}" if row.user_id else ""))
    return Message(row, to, kept, fields, text=render(row.template, {**fields, **kept}))


@router.get("/dev/inbox", response_class=HTMLResponse)
def inbox(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HTMLResponse:
    if settings.env != "development":  # mounted only there; checked again all the same
        raise NotFoundError("not found")
    cipher = PiiCipher(settings)
    rows = session.scalars(select(Notification).order_by(Notification.id.desc()).limit(limit))
    return templates().TemplateResponse(
        request,
        "inbox.html",
        {"messages": [_message(cipher, row) for row in rows], "limit": limit},
        headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex"},
    )
