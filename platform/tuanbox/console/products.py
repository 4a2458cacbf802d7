"""Products of the signed-in staff's merchant: the list, a new product, one product's page.

What the product page's forms post lives beside it: `skus` (add, restock, price and sale),
`photos` and `lots` (recording a lot, and the lot's own pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.api.deps import SessionDep
from tuanbox.bounds import MAX_RESTOCK
from tuanbox.catalog import media, services
from tuanbox.catalog.models import Lot, Product, ProductImage, SizeClass, Sku, Zone
from tuanbox.console.auth import ConsoleStaff, StaffDep
from tuanbox.console.forms import Problems
from tuanbox.console.i18n import gettext_for, locale_of
from tuanbox.console.render import page
from tuanbox.errors import NotFoundError

router = APIRouter(include_in_schema=False)
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


def request_gettext(request: Request) -> Any:
    """The console's gettext for this request's language."""
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
    _ = request_gettext(request)
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
    _ = request_gettext(request)
    notices = {
        "sku": _("The SKU was added."),
        "restock": _("Stock was added."),
        "photo": _("The photo was added."),
        "lot": _("The lot was recorded."),
        "sku_saved": _("The SKU was saved."),
    }
    return detail_page(request, staff, session, product, notice=notices.get(done))
