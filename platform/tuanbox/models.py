"""Imports every feature's SQLAlchemy models so Alembic and tests see the whole schema."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from tuanbox.db.base import Base

# Each feature package that owns tables adds its models module here.
FEATURE_MODELS: tuple[str, ...] = (
    "tuanbox.audit.models",
    "tuanbox.accounts.models",
    "tuanbox.catalog.models",
    "tuanbox.orders.models",
    "tuanbox.payments.models",
    "tuanbox.idempotency.models",
    "tuanbox.notifications.models",
    "tuanbox.privacy.models",
    "tuanbox.returns.models",
    "tuanbox.lockers.models",
    "tuanbox.dispatch.models",
    "tuanbox.fulfilment.models",
    "tuanbox.groupbuy.models",
    "tuanbox.flashsale.models",
    "tuanbox.coldchain.models",
    "tuanbox.trace.models",
    "tuanbox.presale.models",
    "tuanbox.risk.models",
    "tuanbox.reviews.models",
    "tuanbox.merchant_orders.models",
    "tuanbox.referrals.models",
    "tuanbox.coupons.models",
    "tuanbox.points.models",
    "tuanbox.reports.models",
    "tuanbox.growth.models",
    "tuanbox.membership.models",
    "tuanbox.recommend.models",
    "tuanbox.segments.models",
    "tuanbox.experiments.models",
)


def load_all_models() -> MetaData:
    for name in FEATURE_MODELS:
        importlib.import_module(name)
    return Base.metadata
