"""A product's photos: PNG, JPEG, GIF or WebP by their bytes, at most 5 MB and 12 a product,
served from /media/."""

from __future__ import annotations

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.catalog import media
from tuanbox.catalog.models import ProductImage
from tuanbox.console.auth import StaffDep
from tuanbox.console.products import detail_page, owned_product, request_gettext

router = APIRouter(include_in_schema=False)
MAX_PHOTOS = 12


@router.post("/console/products/{product_id}/photos", response_model=None)
def add_photo(
    product_id: str,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    photo: UploadFile | None = None,
) -> HTMLResponse | RedirectResponse:
    """A photo (PNG, JPEG, GIF or WebP by its bytes, at most 5 MB), served from /media/."""
    from tuanbox.catalog.errors import ImageRejectedError

    product = owned_product(session, staff, product_id)
    _ = request_gettext(request)
    data = photo.file.read(media.MAX_IMAGE_BYTES + 1) if photo is not None else b""
    count = (
        session.scalar(
            select(func.count())
            .select_from(ProductImage)
            .where(ProductImage.product_id == product.id)
        )
        or 0
    )
    problem = None
    if not data:
        problem = _("Photo: choose a picture file first.")
    elif len(data) > media.MAX_IMAGE_BYTES:
        problem = _("Photo: the file is larger than %(mb)s MB. Please send a smaller picture.") % {
            "mb": media.MAX_IMAGE_BYTES // (1024 * 1024)
        }
    elif count >= MAX_PHOTOS:
        problem = _("Photo: a product has at most %(n)s photos.") % {"n": MAX_PHOTOS}
    else:
        try:
            media.sniff(data)
        except ImageRejectedError:
            problem = _("Photo: this file is not a PNG, JPEG, GIF or WebP picture.")
    if problem is not None:
        return detail_page(request, staff, session, product, status=422, problems=[problem])
    media.store_image(session, staff.principal.actor, settings.media_dir, product.id, data)
    session.commit()
    return RedirectResponse(f"/console/products/{product.id}?done=photo#photos", status_code=303)
