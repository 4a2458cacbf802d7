"""Catalog API: merchants, products, SKUs, lots, images and the public catalog pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from sqlalchemy import func, select

from tuanbox.accounts.deps import Admin, Principal, require_roles
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.audit.services import record
from tuanbox.catalog import media, services
from tuanbox.catalog.models import Lot, Merchant, Product, Sku
from tuanbox.catalog.schemas import (
    ImageOut,
    LotIn,
    LotOut,
    MerchantIn,
    MerchantOut,
    ProductIn,
    ProductList,
    ProductOut,
    ProductPage,
    RestockIn,
    SkuIn,
    SkuOut,
    VerificationIn,
)
from tuanbox.errors import NotFoundError

router = APIRouter(tags=["catalog"])
StaffOrAdmin = Annotated[Principal, Depends(require_roles("merchant_staff", "admin"))]


def _manage(user: Principal, merchant_id: str) -> None:
    services.ensure_can_manage(user.role, user.merchant_id, merchant_id)


def _lot_out(lot: Lot) -> LotOut:
    out = LotOut.model_validate(lot)
    out.trace_path = f"/01/{lot.gtin}/10/{lot.lot_code}"
    return out


@router.post(
    "/api/v1/merchants",
    response_model=MerchantOut,
    status_code=201,
    responses=problems(401, 403, 409, 422),
)
def create_merchant(body: MerchantIn, admin: Admin, session: SessionDep) -> Merchant:
    """Register a merchant (admin)."""
    merchant = services.create_merchant(
        session,
        admin.actor,
        name=body.name,
        licence_number=body.licence_number,
        verified=body.verified,
    )
    session.commit()
    return merchant


@router.put(
    "/api/v1/merchants/{merchant_id}/verification",
    response_model=MerchantOut,
    responses=problems(401, 403, 404, 422),
)
def verify_merchant(
    merchant_id: str, body: VerificationIn, admin: Admin, session: SessionDep
) -> Merchant:
    """Mark a merchant's credentials as checked, or withdraw that (admin, audited)."""
    merchant = services.set_verified(session, admin.actor, merchant_id, body.verified, body.reason)
    session.commit()
    return merchant


@router.get("/api/v1/merchants/{merchant_id}", response_model=MerchantOut, responses=problems(404))
def get_merchant(merchant_id: str, session: SessionDep) -> Merchant:
    """Public: a merchant's name and credentials as shown to shoppers."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFoundError("merchant not found")
    return merchant


@router.post(
    "/api/v1/merchants/{merchant_id}/products",
    response_model=ProductOut,
    status_code=201,
    responses=problems(401, 403, 404, 422),
)
def create_product(
    merchant_id: str, body: ProductIn, user: StaffOrAdmin, session: SessionDep
) -> Product:
    """Add a product (this merchant's staff, or admin)."""
    _manage(user, merchant_id)
    product = services.create_product(session, user.actor, merchant_id, **body.model_dump())
    session.commit()
    return product


@router.post(
    "/api/v1/products/{product_id}/skus",
    response_model=SkuOut,
    status_code=201,
    responses=problems(401, 403, 404, 422),
)
def add_sku(product_id: str, body: SkuIn, user: StaffOrAdmin, session: SessionDep) -> Sku:
    """Add a sellable SKU (size, price, opening stock) to a product."""
    _manage(user, services.get_product(session, product_id).merchant_id)
    sku = services.add_sku(session, user.actor, product_id, **body.model_dump())
    session.commit()
    return sku


@router.post(
    "/api/v1/skus/{sku_id}/restock",
    response_model=SkuOut,
    responses=problems(401, 403, 404, 422),
)
def restock(sku_id: str, body: RestockIn, user: StaffOrAdmin, session: SessionDep) -> Sku:
    """Add units on hand (audited)."""
    sku = session.get(Sku, sku_id)
    if sku is None:
        raise NotFoundError("SKU not found")
    _manage(user, services.get_product(session, sku.product_id).merchant_id)
    services.restock(session, sku_id, body.add)
    session.refresh(sku)  # the UPDATE added atomically; our row lock holds it until commit
    record(
        session,
        user.actor,
        "sku.restock",
        "sku",
        sku_id,
        details={"add": body.add},
        before={"stock_on_hand": sku.stock_on_hand - body.add},
        after={"stock_on_hand": sku.stock_on_hand},
    )
    session.commit()
    return sku


@router.post(
    "/api/v1/products/{product_id}/lots",
    response_model=LotOut,
    status_code=201,
    responses=problems(401, 403, 404, 409, 422),
)
def add_lot(product_id: str, body: LotIn, user: StaffOrAdmin, session: SessionDep) -> LotOut:
    """Record a product batch (GS1 GTIN + lot) that traceability events attach to."""
    _manage(user, services.get_product(session, product_id).merchant_id)
    lot = services.add_lot(session, user.actor, product_id, **body.model_dump())
    session.commit()
    return _lot_out(lot)


@router.get("/api/v1/lots/{gtin}/{lot_code}", response_model=LotOut, responses=problems(404))
def get_lot(gtin: str, lot_code: str, session: SessionDep) -> LotOut:
    """Public: the lot behind a GTIN + lot code."""
    return _lot_out(services.get_lot(session, gtin, lot_code))


@router.post(
    "/api/v1/products/{product_id}/images",
    response_model=ImageOut,
    status_code=201,
    responses=problems(401, 403, 404, 422),
)
def add_image(
    product_id: str,
    file: UploadFile,
    user: StaffOrAdmin,
    session: SessionDep,
    settings: SettingsDep,
) -> ImageOut:
    """Upload a product image (PNG, JPEG, GIF or WebP; served from `/media/`)."""
    _manage(user, services.get_product(session, product_id).merchant_id)
    data = file.file.read(media.MAX_IMAGE_BYTES + 1)
    image = media.store_image(session, user.actor, settings.media_dir, product_id, data)
    session.commit()
    return ImageOut(
        id=image.id,
        url=f"/media/{image.filename}",
        content_type=image.content_type,
        size_bytes=image.size_bytes,
    )


@router.get("/media/{filename}", include_in_schema=False)
def get_media(filename: str, request: Request, settings: SettingsDep) -> Response:
    """Public, immutable: the name is the content hash, so clients may cache for a year."""
    path = media.media_path(settings.media_dir, filename)
    if path is None:
        raise NotFoundError("no such file")
    etag = f'"{path.stem}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, headers=headers)


@router.get("/api/v1/products", response_model=ProductList)
def list_products(
    session: SessionDep,
    merchant_id: str | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ProductList:
    """Public catalog page."""
    query = select(Product)
    if merchant_id is not None:
        query = query.where(Product.merchant_id == merchant_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Product.created_at.desc(), Product.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return ProductList(
        items=[ProductOut.model_validate(r) for r in rows],
        page=page,
        page_size=page_size,
        total=total,
    )


@router.get("/api/v1/products/{product_id}", response_model=ProductPage, responses=problems(404))
def get_product(product_id: str, session: SessionDep) -> ProductPage:
    """Public product page: merchant credentials, SKUs with stock, lots, images."""
    product = services.get_product(session, product_id)
    merchant = session.get(Merchant, product.merchant_id)
    skus = session.scalars(select(Sku).where(Sku.product_id == product_id).order_by(Sku.name))
    lots = session.scalars(select(Lot).where(Lot.product_id == product_id).order_by(Lot.lot_code))
    return ProductPage(
        **ProductOut.model_validate(product).model_dump(),
        merchant=MerchantOut.model_validate(merchant),
        skus=[SkuOut.model_validate(s) for s in skus],
        lots=[_lot_out(lot) for lot in lots],
        images=[
            ImageOut(
                id=i.id,
                url=f"/media/{i.filename}",
                content_type=i.content_type,
                size_bytes=i.size_bytes,
            )
            for i in services.images_of(session, product_id)
        ],
    )


# Ops' review of merchants' licence documents (the console uploads them).
from tuanbox.catalog.licence_views import router as _licence_router  # noqa: E402

router.include_router(_licence_router)
