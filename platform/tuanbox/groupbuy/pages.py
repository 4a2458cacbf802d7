"""The phone-friendly shopper page of a group (`/g/{id}`), rendered on the server."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.db.base import utcnow
from tuanbox.errors import NotFoundError
from tuanbox.groupbuy import services

router = APIRouter(tags=["pages"])
_templates: Jinja2Templates | None = None
HERE = Path(__file__).parent
# The page's script is a file, not inline, so the page's CSP allows our own scripts only.
_STATIC = {"group.js": "text/javascript"}

STATUS_TEXT = {
    "open": "拼团中 · open",
    "filled": "已满员 · filled",
    "confirmed": "拼团成功 · confirmed",
    "failed": "拼团失败，已退款 · failed, refunded",
}


def templates() -> Jinja2Templates:
    """Built on first use, not at import."""
    global _templates
    if _templates is None:
        _templates = Jinja2Templates(directory=str(HERE / "templates"))
    return _templates


def _time_left(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m"


@router.get("/g/{group_id}", response_class=HTMLResponse, include_in_schema=False)
def group_page(
    group_id: str, request: Request, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    group = services.get_group(session, group_id)
    campaign = services.get_campaign(session, group.campaign_id)
    p = services.group_progress(campaign, group, utcnow())
    return templates().TemplateResponse(
        request,
        "group.html",
        {
            "campaign": campaign,
            "group": group,
            "p": p,
            "members": services.members_of(session, group.id),
            "status_text": STATUS_TEXT.get(group.status, group.status),
            "time_left": _time_left(p.seconds_left),
            "share_url": f"{settings.public_base_url.rstrip('/')}/g/{group.id}",
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/g/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    if name not in _STATIC:
        raise NotFoundError(f"no static file {name}")
    body = (HERE / "static" / name).read_text(encoding="utf-8")
    return Response(body, media_type=_STATIC[name], headers={"Cache-Control": "max-age=300"})
