"""Credentials: the merchant's licence files, their review, and the merchant as shoppers
see it (name, licence number, the "Verified" badge that ops' approval gives)."""

from __future__ import annotations

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.catalog import licences
from tuanbox.catalog.models import Merchant
from tuanbox.console.auth import ConsoleStaff, StaffDep
from tuanbox.console.forms import RowId
from tuanbox.console.i18n import gettext_for, locale_of
from tuanbox.console.render import page
from tuanbox.errors import ConflictError, NotFoundError

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    staff: ConsoleStaff,
    session: SessionDep,
    *,
    problems: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    merchant = session.get(Merchant, staff.merchant_id)
    if merchant is None:
        raise NotFoundError("merchant not found")
    _ = gettext_for(locale_of(request))
    notice = (
        _("The file was uploaded; ops will review it.")
        if request.query_params.get("done") == "uploaded"
        else None
    )
    context = {
        "merchant": merchant,
        "licences": licences.licences_of(session, merchant.id),
        "problems": problems or [],
        "notice": notice,
        "max_mb": licences.MAX_LICENCE_BYTES // (1024 * 1024),
    }
    return page(
        request, staff, "credentials.html", context, active="credentials", status_code=status
    )


@router.get("/console/credentials", response_class=HTMLResponse)
def credentials_page(request: Request, staff: StaffDep, session: SessionDep) -> HTMLResponse:
    return _page(request, staff, session)


@router.post("/console/credentials/licences", response_model=None)
def upload(
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    licence: UploadFile | None = None,
) -> HTMLResponse | RedirectResponse:
    """A licence file (PDF, PNG or JPEG by its bytes, at most 10 MB), pending ops' review."""
    _ = gettext_for(locale_of(request))
    data = licence.file.read(licences.MAX_LICENCE_BYTES + 1) if licence is not None else b""
    problem = None
    if not data:
        problem = _("Licence: choose a file first.")
    elif len(data) > licences.MAX_LICENCE_BYTES:
        problem = _(
            "Licence: the file is larger than %(mb)s MB. Scan it at a lower resolution."
        ) % {"mb": licences.MAX_LICENCE_BYTES // (1024 * 1024)}
    else:
        try:
            licences.sniff(data)
        except licences.LicenceRejectedError:
            problem = _("Licence: this file is not a PDF, PNG or JPEG.")
    if problem is None:
        name = (licence.filename or "") if licence is not None else ""
        try:
            licences.store_licence(
                session, staff.principal.actor, settings.media_dir, staff.merchant_id, data, name
            )
        except ConflictError:
            problem = _("Licence: you have uploaded the most files allowed; ask ops to help.")
    if problem is not None:  # nothing was written
        return _page(request, staff, session, problems=[problem], status=422)
    session.commit()
    return RedirectResponse("/console/credentials?done=uploaded", status_code=303)


@router.get("/console/credentials/licences/{licence_id}")
def licence_file(
    licence_id: RowId, staff: StaffDep, session: SessionDep, settings: SettingsDep
) -> FileResponse:
    """The merchant's own file (another merchant's is not found)."""
    row = licences.get_licence(session, licence_id, staff.merchant_id)
    path = licences.licence_path(settings.media_dir, row)
    if not path.is_file():
        raise NotFoundError("the file is missing")
    return FileResponse(
        path, media_type=row.content_type, headers={"Cache-Control": "private, no-store"}
    )
