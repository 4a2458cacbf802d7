"""Products, SKUs, stock and restock, photos and lots of the signed-in staff's merchant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.bounds import MAX_RESTOCK, MAX_STOCK
from tuanbox.catalog import media, services
from tuanbox.catalog.models import Lot, Product, ProductImage, SizeClass, Sku, Zone
from tuanbox.console.auth import ConsoleStaff, StaffDep
from tuanbox.console.forms import Problems
from tuanbox.console.i18n import gettext_for, locale_of
from tuanbox.console.render import page
from tuanbox.errors import NotFoundError

router = APIRouter(include_in_schema=False)
MAX_PHOTOS = 12
Text200 = Annotated[str, Form(max_length=200)]
Short = Annotated[str, Form(max_length=40)]


@dataclass(frozen=True)
class SkuRow:
    sku: Sku

    @property
    def free(self) -> int:
        return self.sku.stock_on_hand - self.sku.stock_reserved


def owned_product(session: Session, staff: ConsoleStaff, product_id: str) -> Product:
    """The merchant's product; another merchant's is simply not found (404)."""
    product = session.get(Product, product_id) if len(product_id) <= 36 else None
    if product is None or product.merchant_id != staff.merchant_id:
        raise NotFoundError("no such product")
    return product


def _gettext(request: Request) -> Any:
    return gettext_for(locale_of(request))


# --- list and create ------------------------------------------------------------------


def _list_page(
    request: Request,
    staff: ConsoleStaff,
    session: Session,
    *,
    status: int = 200,
    problems: list[str] | None = None,
    form: dict[str, Any] | None = None,
) -> HTMLResponse:
    products = list(
        session.scalars(
            select(Product).where(Product.merchant_id == staff.merchant_id).order_by(Product.name)
        )
    )
    ids = [p.id for p in products]
    stock = (
        dict(
            session.execute(
                select(Sku.product_id, func.sum(Sku.stock_on_hand - Sku.stock_reserved))
                .where(Sku.product_id.in_(ids))
                .group_by(Sku.product_id)
            ).all()
        )
        if ids
        else {}
    )
    thumbs: dict[str, str] = {}
    for image in (
        session.scalars(
            select(ProductImage)
            .where(ProductImage.product_id.in_(ids))
            .order_by(ProductImage.position.desc())
        )
        if ids
        else ()
    ):
        thumbs[image.product_id] = f"/media/{image.filename}"
    context = {
        "products": products,
        "stock": stock,
        "thumbs": thumbs,
        "zones": list(Zone),
        "sizes": list(SizeClass),
        "problems": problems or [],
        "form": form or {"zone": "chilled", "size_class": "M", "returnable": True},
    }
    return page(request, staff, "products.html", context, active="products", status_code=status)


@router.get("/console/products", response_class=HTMLResponse)
def products_page(request: Request, staff: StaffDep, session: SessionDep) -> HTMLResponse:
    return _list_page(request, staff, session)


@router.post("/console/products", response_model=None)
def create_product(
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    name: Text200 = "",
    description: Annotated[str, Form(max_length=5000)] = "",
    zone: Short = "",
    size_class: Short = "",
    gtin: Short = "",
    returnable: Short = "",
) -> HTMLResponse | RedirectResponse:
    _ = _gettext(request)
    problems = Problems(_)
    form = {
        "name": name,
        "description": description,
        "zone": zone,
        "size_class": size_class,
        "gtin": gtin,
        "returnable": returnable == "1",
    }
    if not name.strip():
        problems.add(_("Name: please give the product a name."))
    if zone not in {z.value for z in Zone}:
        problems.add(_("Storage: choose ambient, chilled or frozen."))
    if size_class not in {s.value for s in SizeClass}:
        problems.add(_("Size: choose S, M or L."))
    code = gtin.strip() or None
    if code is not None and not services.gtin_valid(code):
        problems.add(
            _(
                "GTIN: %(gtin)s is not a valid GTIN (8, 12, 13 or 14 digits with the "
                "right check digit)."
            )
            % {"gtin": code}
        )
    if problems:
        return _list_page(request, staff, session, status=422, problems=problems.items, form=form)
    product = services.create_product(
        session,
        staff.principal.actor,
        staff.merchant_id,
        name=name.strip(),
        description=description.strip(),
        size_class=SizeClass(size_class),
        zone=Zone(zone),
        returnable=returnable == "1",
        gtin=code,
    )
    session.commit()
    return RedirectResponse(f"/console/products/{product.id}", status_code=303)


# --- one product ----------------------------------------------------------------------


def detail_page(
    request: Request,
    staff: ConsoleStaff,
    session: Session,
    product: Product,
    *,
    status: int = 200,
    problems: list[str] | None = None,
    notice: str | None = None,
    form: dict[str, Any] | None = None,
) -> HTMLResponse:
    skus = [
        SkuRow(s)
        for s in session.scalars(
            select(Sku).where(Sku.product_id == product.id).order_by(Sku.created_at, Sku.id)
        )
    ]
    context = {
        "product": product,
        "skus": skus,
        "images": services.images_of(session, product.id),
        "lots": list(
            session.scalars(
                select(Lot).where(Lot.product_id == product.id).order_by(Lot.created_at.desc())
            )
        ),
        "problems": problems or [],
        "notice": notice,
        "form": form or {},
        "max_restock": MAX_RESTOCK,
        "max_photo_mb": media.MAX_IMAGE_BYTES // (1024 * 1024),
    }
    return page(request, staff, "product.html", context, active="products", status_code=status)


@router.get("/console/products/{product_id}", response_class=HTMLResponse)
def product_page(
    product_id: str, request: Request, staff: StaffDep, session: SessionDep
) -> HTMLResponse:
    product = owned_product(session, staff, product_id)
    done = request.query_params.get("done", "")
    _ = _gettext(request)
    notices = {
        "sku": _("The SKU was added."),
        "restock": _("Stock was added."),
        "photo": _("The photo was added."),
        "lot": _("The lot was recorded."),
        "sku_saved": _("The SKU was saved."),
    }
    return detail_page(request, staff, session, product, notice=notices.get(done))


@router.post("/console/products/{product_id}/skus", response_model=None)
def add_sku(
    product_id: str,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    name: Text200 = "",
    price: Short = "",
    stock: Short = "",
) -> HTMLResponse | RedirectResponse:
    product = owned_product(session, staff, product_id)
    _ = _gettext(request)
    problems = Problems(_)
    if not name.strip():
        problems.add(_('SKU name: say what the shopper gets, such as "500 g box".'))
    cents = problems.money(price, _("Price"))
    units = problems.whole(stock or "0", _("Stock on hand"), 0, MAX_STOCK)
    if problems or cents is None or units is None:
        form = {"sku_name": name, "sku_price": price, "sku_stock": stock}
        return detail_page(
            request, staff, session, product, status=422, problems=problems.items, form=form
        )
    services.add_sku(
        session,
        staff.principal.actor,
        product.id,
        name=name.strip(),
        price_cents=cents,
        stock_on_hand=units,
    )
    session.commit()
    return RedirectResponse(f"/console/products/{product.id}?done=sku#skus", status_code=303)


@router.post("/console/skus/{sku_id}/restock", response_model=None)
def restock(
    sku_id: str,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    add: Short = "",
    note: Text200 = "",
) -> HTMLResponse | RedirectResponse:
    """Add units on hand: one guarded UPDATE and its audit entry, committed together."""
    from tuanbox.audit.services import record
    from tuanbox.catalog.errors import StockLimitError

    sku = session.get(Sku, sku_id) if len(sku_id) <= 36 else None
    if sku is None:
        raise NotFoundError("no such SKU")
    product = owned_product(session, staff, sku.product_id)
    _ = _gettext(request)
    problems = Problems(_)
    units = problems.whole(add, _("Units to add"), 1, MAX_RESTOCK)
    if units is not None:
        before = sku.stock_on_hand
        try:
            services.restock(session, sku.id, units)
        except StockLimitError:  # the guarded UPDATE changed nothing
            problems.add(
                _("Units to add: the SKU would hold more than %(max)s units.") % {"max": MAX_STOCK}
            )
        else:
            session.refresh(sku)
            record(
                session,
                staff.principal.actor,
                "sku.restock",
                "sku",
                sku.id,
                reason=note.strip() or None,
                details={"add": units},
                before={"stock_on_hand": before},
                after={"stock_on_hand": sku.stock_on_hand},
            )
            session.commit()
            return RedirectResponse(
                f"/console/products/{product.id}?done=restock#skus", status_code=303
            )
    return detail_page(
        request,
        staff,
        session,
        product,
        status=422,
        problems=problems.items,
        form={"restock_sku": sku.id, "restock_add": add},
    )


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
    _ = _gettext(request)
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


@router.post("/console/products/{product_id}/lots", response_model=None)
def add_lot(
    product_id: str,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    lot_code: Short = "",
    harvested_at: Short = "",
    best_before: Short = "",
    farm: Text200 = "",
    origin: Text200 = "",
    quantity: Short = "",
) -> HTMLResponse | RedirectResponse:
    from traceability.errors import IdentifierError
    from traceability.identifiers import validate_lot
    from tuanbox.catalog.errors import DuplicateLotError

    product = owned_product(session, staff, product_id)
    _ = _gettext(request)
    problems = Problems(_)
    code = lot_code.strip()
    try:
        validate_lot(code)
    except IdentifierError:
        problems.add(_("Lot code: 1 to 20 letters, digits, dots, dashes or underscores."))
    if product.gtin is None:
        problems.add(_("Lots need the product's GTIN: this product has none."))
    harvested = (
        problems.when(harvested_at, _("Harvested"), settings.station_timezone)
        if harvested_at.strip()
        else None
    )
    best = (
        problems.when(best_before, _("Best before"), settings.station_timezone)
        if best_before.strip()
        else None
    )
    if harvested and best and best <= harvested:
        problems.add(_("Best before: must be after the harvest."))
    units = problems.whole(quantity, _("Quantity"), 1, MAX_STOCK, required=False)
    form = {
        "lot_code": lot_code,
        "harvested_at": harvested_at,
        "best_before": best_before,
        "farm": farm,
        "origin": origin,
        "quantity": quantity,
    }
    if not problems:
        try:
            services.add_lot(
                session,
                staff.principal.actor,
                product.id,
                lot_code=code,
                harvested_at=harvested,
                best_before=best,
                farm=farm.strip() or None,
                origin=origin.strip() or None,
                quantity=units,
            )
        except DuplicateLotError:
            problems.add(_("Lot code: %(lot)s is already recorded for this GTIN.") % {"lot": code})
        else:
            session.commit()
            return RedirectResponse(
                f"/console/products/{product.id}?done=lot#lots", status_code=303
            )
    return detail_page(
        request, staff, session, product, status=422, problems=problems.items, form=form
    )


@router.post("/console/skus/{sku_id}", response_model=None)
def update_sku(
    sku_id: str,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    price: Short = "",
    active: Short = "1",
) -> HTMLResponse | RedirectResponse:
    """A SKU's everyday price, and whether it is on sale (audited). Running campaigns and
    sales keep their own prices; an SKU taken off sale takes no new reservation."""
    from tuanbox.audit.services import record

    sku = session.get(Sku, sku_id) if len(sku_id) <= 36 else None
    if sku is None:
        raise NotFoundError("no such SKU")
    product = owned_product(session, staff, sku.product_id)
    _ = _gettext(request)
    problems = Problems(_)
    cents = problems.money(price, _("Price"))
    if problems or cents is None:
        return detail_page(request, staff, session, product, status=422, problems=problems.items)
    before = {"price_cents": sku.price_cents, "active": sku.active}
    sku.price_cents = cents
    sku.active = active == "1"
    after = {"price_cents": sku.price_cents, "active": sku.active}
    if after != before:
        record(
            session, staff.principal.actor, "sku.update", "sku", sku.id, before=before, after=after
        )
    session.commit()
    return RedirectResponse(f"/console/products/{product.id}?done=sku_saved#skus", status_code=303)
