"""The ops dashboard at /ops: fleet, locker pages with charts, alerts and holds, live stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from telemetry.influx import InfluxClient
from telemetry.schema import to_ns
from telemetry.settings import TelemetrySettings
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.bounds import BigSerialId, SerialId
from tuanbox.db.base import utcnow
from tuanbox.errors import NotFoundError
from tuanbox.ops import auth, data
from tuanbox.ops.auth import OpsUser
from tuanbox.ops.charts import Bucket, temperature_svg
from tuanbox.ops.replica import replica_tile

router = APIRouter(tags=["ops"], include_in_schema=False)
HERE = Path(__file__).parent
_templates: Jinja2Templates | None = None
WINDOWS_H = (6, 24, 72, 168)
Hours = Annotated[int, Query(ge=1, le=24 * 31)]


def templates() -> Jinja2Templates:
    """Built on first use, not at import."""
    global _templates
    if _templates is None:
        _templates = Jinja2Templates(directory=str(HERE / "templates"))
    return _templates


def telemetry_settings(request: Request) -> TelemetrySettings:
    """Tests put their own on app.state; the api process reads TELEMETRY_* once."""
    current = getattr(request.app.state, "telemetry_settings", None)
    if current is None:
        current = TelemetrySettings()
        request.app.state.telemetry_settings = current
    return current


@contextmanager
def influx_for(request: Request) -> Iterator[InfluxClient]:
    with InfluxClient.from_settings(telemetry_settings(request)) as client:
        yield client


def _page(
    request: Request,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return templates().TemplateResponse(
        request,
        name,
        context,
        status_code=status_code,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


# --- sign in ----------------------------------------------------------------------------


# One answer for every refused sign-in: wrong password, unknown login, a disabled or locked
# account, or the right password of an account that is not ops.
SIGN_IN_FAILED = "Wrong login or password."


@router.get("/ops/login", response_model=None)
def login_page(
    request: Request,
    settings: SettingsDep,
    token: Annotated[str | None, Query(max_length=4096)] = None,
) -> HTMLResponse | RedirectResponse:
    if token:
        # Hand-over link (the demo prints one): keep the token out of the address bar.
        from tuanbox.accounts.revocation import ensure_current
        from tuanbox.accounts.tokens import decode_access_token
        from tuanbox.errors import AuthenticationError

        try:
            principal = decode_access_token(settings, token)
            ensure_current(request, principal)
        except AuthenticationError:
            principal = None
        if principal is None or principal.role not in auth.OPS_ROLES:
            context = {"error": "This sign-in link is not valid (any more)."}
            return _page(request, "login.html", context, status_code=401)
        response = RedirectResponse("/ops", status_code=303)
        auth.set_cookie(response, settings, token)
        return response
    return _page(request, "login.html", {"error": None})


@router.post("/ops/login", response_model=None)
def login(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    login: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
) -> HTMLResponse | RedirectResponse:
    """The limits and lockout of POST /api/v1/auth/token's password grant (accounts.signin),
    sharing its per-IP bucket; every refusal is the same page and status."""
    from tuanbox.accounts.deps import Principal
    from tuanbox.accounts.signin import SignInGuard
    from tuanbox.accounts.tokens import issue_access_token
    from tuanbox.errors import AuthenticationError, RateLimitedError
    from tuanbox.ratelimit.deps import client_ip, get_redis

    auth.check_same_origin(request)  # no logging a victim's browser into another account
    guard = SignInGuard(get_redis(request), settings)
    try:
        guard.check_ip(client_ip(request))
    except RateLimitedError as exc:
        wait = {
            "error": f"Too many sign-in attempts from your network; retry in {exc.retry_after} s."
        }
        headers = {"Retry-After": str(exc.retry_after)}
        return _page(request, "login.html", wait, status_code=429, headers=headers)
    try:
        user = guard.password(session, login, password, ip=client_ip(request), roles=auth.OPS_ROLES)
    except AuthenticationError:
        return _page(request, "login.html", {"error": SIGN_IN_FAILED}, status_code=401)
    session.commit()  # a password rehash, if any
    response = RedirectResponse("/ops", status_code=303)
    principal = Principal(user.id, user.role, token_version=user.token_version)
    auth.set_cookie(response, settings, issue_access_token(settings, principal))
    return response


@router.post("/ops/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/ops/login", status_code=303)
    auth.clear_cookie(response)
    return response


# --- pages --------------------------------------------------------------------------------


@router.get("/ops", response_model=None)
def fleet_page(
    request: Request, settings: SettingsDep, session: SessionDep
) -> HTMLResponse | RedirectResponse:
    user = auth.principal_from(request, settings)
    if user is None:
        return RedirectResponse("/ops/login", status_code=303)
    with influx_for(request) as influx:
        board = data.fleet(session, influx, utcnow())
    state = request.app.state
    replica = replica_tile(state.read_engine, state.engine, settings)
    return _page(request, "fleet.html", {"user": user, "fleet": board, "now": utcnow(),
                                         "replica": replica})  # fmt: skip


@router.get("/ops/lockers/{locker_id}", response_model=None)
def locker_page(
    locker_id: str, request: Request, settings: SettingsDep, session: SessionDep, hours: Hours = 24
) -> HTMLResponse | RedirectResponse:
    user = auth.principal_from(request, settings)
    if user is None:
        return RedirectResponse("/ops/login", status_code=303)
    with influx_for(request) as influx:
        view = data.locker_view(session, influx, locker_id, utcnow(), hours)
    if view is None:
        raise NotFoundError(f"locker {locker_id} does not exist")
    return _page(request, "locker.html", {"user": user, "v": view, "hours": hours,
                                          "windows": WINDOWS_H, "now": utcnow()})  # fmt: skip


@router.get("/ops/lockers/{locker_id}/charts/{label}.svg")
def chart(
    locker_id: str, label: str, request: Request, _user: OpsUser, session: SessionDep,
    hours: Hours = 24,
) -> Response:  # fmt: skip
    from tuanbox.lockers.models import Compartment

    zone = next(
        (c.zone for c in session.query(Compartment).filter_by(locker_id=locker_id)
         if c.label == label), None,
    )  # fmt: skip
    if zone is None:
        raise NotFoundError(f"compartment {label} of locker {locker_id} does not exist")
    end = utcnow()
    start = end - timedelta(hours=hours)
    with influx_for(request) as influx:
        buckets, step = data.chart_buckets(influx, locker_id, label, start, end)
    svg = temperature_svg(
        buckets, start_ns=to_ns(start), end_ns=to_ns(end),
        thresholds=data.thresholds(zone), title=f"{locker_id} · {label} · {zone} · {hours} h",
        max_gap_s=max(3 * step, 600),
    )  # fmt: skip
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get("/ops/episodes/{episode_id}/evidence.svg")
def evidence_chart(episode_id: SerialId, _user: OpsUser, session: SessionDep) -> Response:
    from tuanbox.coldchain.models import Episode, aware

    episode = session.get(Episode, episode_id)
    if episode is None:
        raise NotFoundError(f"episode {episode_id} does not exist")
    points = [Bucket(int(t), float(c), float(c), float(c)) for t, c in episode.evidence]
    start = points[0].t_ns if points else to_ns(aware(episode.started_at))
    end = points[-1].t_ns + 60 * 10**9 if points else start + 60 * 10**9
    svg = temperature_svg(
        points, start_ns=start, end_ns=end, thresholds=data.thresholds(episode.zone),
        title=f"excursion #{episode.id} · {episode.locker_id} {episode.compartment}",
        width=560, height=200, max_gap_s=600,
    )  # fmt: skip
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get("/ops/alerts", response_model=None)
def alerts_page(
    request: Request, settings: SettingsDep, session: SessionDep, resolved: bool = False
) -> HTMLResponse | RedirectResponse:
    user = auth.principal_from(request, settings)
    if user is None:
        return RedirectResponse("/ops/login", status_code=303)
    statuses = ("open", "acknowledged", "resolved") if resolved else data.ACTIVE
    with influx_for(request) as influx:
        alerts = data.alerts_view(session, statuses, influx, utcnow())
    context = {"user": user, "alerts": alerts, "resolved": resolved}
    return _page(request, "alerts.html", context)


@router.get("/ops/alerts/fragment", response_class=HTMLResponse)
def alerts_fragment(request: Request, _user: OpsUser, session: SessionDep) -> HTMLResponse:
    with influx_for(request) as influx:
        alerts = data.alerts_view(session, data.ACTIVE, influx, utcnow())
    return _page(request, "_alerts.html", {"alerts": alerts})


# --- actions (JSON, audited by the services) ---------------------------------------------


class AckIn(BaseModel):
    note: str | None = Field(default=None, max_length=1000)


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=1000)


@router.post("/ops/alerts/{alert_id}/acknowledge")
def acknowledge(
    alert_id: BigSerialId, body: AckIn, user: OpsUser, session: SessionDep
) -> dict[str, Any]:
    from tuanbox.fulfilment.alerts import acknowledge as ack

    alert = ack(session, alert_id, user.actor, body.note)
    session.commit()
    return {"id": alert.id, "status": alert.status}


@router.post("/ops/alerts/{alert_id}/resolve")
def resolve(
    alert_id: BigSerialId, body: NoteIn, user: OpsUser, session: SessionDep
) -> dict[str, Any]:
    from sqlalchemy import select

    from tuanbox.coldchain.errors import HoldsPendingError
    from tuanbox.coldchain.models import Episode, QualityHold
    from tuanbox.fulfilment.alerts import resolve as close

    # An excursion alert is the only place ops decide on its held orders: closing it first
    # would strand them on hold.
    pending = session.scalar(
        select(QualityHold.id)
        .join(Episode, Episode.id == QualityHold.episode_id)
        .where(Episode.alert_id == alert_id, QualityHold.status == "held")
        .limit(1)
    )
    if pending is not None:
        raise HoldsPendingError(f"release or reject the held orders of alert {alert_id} first")
    alert = close(session, alert_id, user.actor, body.note)
    session.commit()
    return {"id": alert.id, "status": alert.status}


@router.post("/ops/holds/{hold_id}/release")
def release_hold(
    hold_id: SerialId, body: NoteIn, user: OpsUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    from tuanbox.coldchain.holds import release

    hold = release(session, hold_id, user.actor, body.note, settings=settings)
    session.commit()
    return {"id": hold.id, "status": hold.status, "order_id": hold.order_id}


@router.post("/ops/holds/{hold_id}/reject")
def reject_hold(
    hold_id: SerialId, body: NoteIn, user: OpsUser, session: SessionDep
) -> dict[str, Any]:
    from tuanbox.coldchain.holds import reject

    hold = reject(session, hold_id, user.actor, body.note)
    session.commit()
    return {"id": hold.id, "status": hold.status, "order_id": hold.order_id}


# --- live updates ---------------------------------------------------------------------------


@router.get("/ops/stream")
async def stream(
    request: Request,
    _user: OpsUser,
    settings: SettingsDep,
    max_events: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    interval_s: Annotated[float, Query(ge=0.2, le=60)] = 2.0,
) -> StreamingResponse:
    """Server-sent events: a `snapshot` whenever fleet, temperatures or alerts change."""
    factory = request.app.state.session_factory

    def snapshot() -> dict[str, Any]:
        with factory() as session, influx_for(request) as influx:
            return data.live_snapshot(session, influx, utcnow())

    async def events() -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        last, sent = None, 0
        while not await request.is_disconnected():
            if auth.principal_from(request, settings) is None:
                return  # the access token expired: the page's EventSource must sign in again
            snap = await run_in_threadpool(snapshot)
            key = json.dumps({k: v for k, v in snap.items() if k != "at"}, sort_keys=True)
            if key != last:
                last, sent = key, sent + 1
                yield f"event: snapshot\ndata: {json.dumps(snap)}\n\n"
            else:
                yield ": keep-alive\n\n"
            if max_events is not None and sent >= max_events:
                return
            # The pacing of a server push loop, not a test waiting for something.
            await asyncio.sleep(interval_s)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


_STATIC = {"ops.css": "text/css", "ops.js": "text/javascript"}


@router.get("/ops/static/{name}")
def static(name: str) -> Response:
    if name not in _STATIC:
        raise NotFoundError(f"no static file {name}")
    body = (HERE / "static" / name).read_text(encoding="utf-8")
    return Response(body, media_type=_STATIC[name], headers={"Cache-Control": "max-age=300"})
