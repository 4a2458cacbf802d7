"""Ops access to the audit log: search (JSON), CSV export (streamed, itself audited), /ops page.

Reading the log is not audited (that would never end); exporting it is.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import file_response, problems
from tuanbox.audit import search
from tuanbox.audit.services import record
from tuanbox.bounds import MAX_INT64
from tuanbox.errors import InvalidInputError
from tuanbox.ops import auth
from tuanbox.ops.auth import OpsUser

router = APIRouter(tags=["audit"])
HERE = Path(__file__).parent
_templates: Jinja2Templates | None = None

PAGE_SIZE = 100


def templates() -> Jinja2Templates:
    """Ours first, then the ops pages' (base.html); built on first use, not at import."""
    global _templates
    if _templates is None:
        loader = ChoiceLoader(
            [
                FileSystemLoader(HERE / "templates"),
                FileSystemLoader(HERE.parent / "ops" / "templates"),
            ]
        )
        env = Environment(loader=loader, autoescape=select_autoescape(default=True))
        _templates = Jinja2Templates(env=env)
    return _templates


_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")
_ACTION = re.compile(r"[a-z0-9_.]+\*?")


def _text(value: str | None, field: str, shape: re.Pattern[str] = _PRINTABLE) -> str | None:
    """An empty form field is no filter; anything else must have the field's shape."""
    if not value:
        return None
    if not shape.fullmatch(value):
        raise InvalidInputError(f"{field}: not a valid value", field=field)
    return value


def _time(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return search.as_utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError) as exc:
        raise InvalidInputError(f"{field}: not an ISO 8601 time", field=field) from exc


Text = Annotated[str | None, Query(max_length=64)]


def filters(
    actor: Annotated[
        str | None, Query(max_length=64, description="Actor id (a user id, `cli`)")
    ] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Action, e.g. `order.refund`; a trailing `*` matches a prefix (`order.*`)",
        ),
    ] = None,
    subject_type: Text = None,
    subject_id: Text = None,
    since: Annotated[
        str | None, Query(max_length=40, description="ISO 8601, from this time (UTC if no offset)")
    ] = None,
    until: Annotated[
        str | None, Query(max_length=40, description="ISO 8601, before this time")
    ] = None,
) -> search.Filters:
    """The search filters; empty values (an HTML form's blank fields) mean no filter."""
    found = search.Filters(
        actor=_text(actor, "actor"),
        action=_text(action, "action", _ACTION),
        subject_type=_text(subject_type, "subject_type"),
        subject_id=_text(subject_id, "subject_id"),
        since=_time(since, "since"),
        until=_time(until, "until"),
    )
    if found.since is not None and found.until is not None and found.since >= found.until:
        raise InvalidInputError("since must be before until", field="since")
    return found


FiltersDep = Annotated[search.Filters, Depends(filters)]
BeforeSeq = Annotated[
    int | None, Query(ge=1, le=MAX_INT64, description="Cursor: entries below this seq")
]


class AuditEntryOut(BaseModel):
    seq: int
    at: str = Field(description="UTC, microseconds (the hashed form)")
    actor_id: str
    actor_role: str
    ip: str | None
    action: str
    subject_type: str
    subject_id: str
    reason: str | None
    details: dict[str, Any]
    before: Any
    after: Any
    request_id: str | None
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_before_seq: int | None = Field(description="Pass as before_seq for the next page")


@router.get("/api/v1/ops/audit", response_model=AuditPage, responses=problems(401, 403, 422))
def list_entries(
    _user: OpsUser,
    session: SessionDep,
    found: FiltersDep,
    before_seq: BeforeSeq = None,
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE_SIZE,
) -> AuditPage:
    """Ops and admins: audit entries matching the filters, newest first, paged by seq."""
    rows, cursor = search.page(session, found, before_seq=before_seq, limit=limit)
    items = [AuditEntryOut.model_validate(search.entry_dict(r)) for r in rows]
    return AuditPage(items=items, next_before_seq=cursor)


@router.get(
    "/api/v1/ops/audit/export.csv",
    response_class=StreamingResponse,
    responses={200: file_response("The matching entries, oldest first", "text/csv"),
               **problems(401, 403, 422)},
)  # fmt: skip
@router.get("/ops/audit/export.csv", include_in_schema=False, response_class=StreamingResponse)
def export(user: OpsUser, session: SessionDep, found: FiltersDep) -> StreamingResponse:
    """Ops and admins: every matching entry as CSV, streamed; the export itself is audited."""
    record(
        session,
        user.actor,
        "audit.export",
        "audit_log",
        "*",
        details={"filters": found.as_dict()},
    )
    session.commit()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        search.export_csv(session, found),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _pretty(value: Any) -> str:
    if value is None or value == {}:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@router.get("/ops/audit", response_model=None, include_in_schema=False)
def audit_page(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    found: FiltersDep,
    before_seq: BeforeSeq = None,
) -> HTMLResponse | RedirectResponse:
    user = auth.principal_from(request, settings)
    if user is None:
        return RedirectResponse("/ops/login", status_code=303)
    rows, cursor = search.page(session, found, before_seq=before_seq, limit=PAGE_SIZE)
    given = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in found.as_dict().items()}
    context = {
        "user": user,
        "entries": [search.entry_dict(r) for r in rows],
        "pretty": _pretty,
        "filters": given,
        "query": f"?{urlencode(given)}" if given else "",
        "next_query": f"?{urlencode({**given, 'before_seq': cursor})}",
        "next_before_seq": cursor,
    }
    return templates().TemplateResponse(
        request, "audit.html", context, headers={"Cache-Control": "no-store"}
    )
