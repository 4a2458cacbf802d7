"""SKUs of the signed-in staff's products: add one, restock it (a guarded UPDATE and its audit
entry, committed together), change its everyday price or take it off sale (audited)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from tuanbox.api.deps import SessionDep
from tuanbox.bounds import MAX_RESTOCK, MAX_STOCK
from tuanbox.catalog import services
from tuanbox.catalog.models import Sku
from tuanbox.console.auth import StaffDep
from tuanbox.console.forms import Problems
from tuanbox.console.products import Short, Text200, detail_page, owned_product, request_gettext
from tuanbox.errors import NotFoundError

router = APIRouter(include_in_schema=False)


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
    _ = request_gettext(request)
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
    _ = request_gettext(request)
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
    _ = request_gettext(request)
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
