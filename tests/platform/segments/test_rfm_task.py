"""The Celery task `segments.recompute_rfm` (hourly on beat) recomputes the scores in the
database its settings name, in its own committed transaction: the quintiles match the
reference, computed tags follow, a manual tag survives, and a second run writes the same."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.platform.segments.support import generated_buyers, merchant_sku
from tests.platform.segments.test_rfm import ntile
from tuanbox.catalog.models import Product
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.segments import rfm, services
from tuanbox.segments.models import RfmScore, UserTag
from tuanbox.worker.app import create_celery


def test_beat_runs_the_rfm_task_and_it_commits_the_scores(
    fresh_database: Callable[[], str], redis_url: str
) -> None:
    settings = make_settings(database_url=fresh_database(), redis_url=redis_url)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine, settings)
    try:
        now = utcnow()
        with factory() as session, session.begin():
            sku = merchant_sku(session)
            merchant = session.get(Product, sku.product_id).merchant_id  # type: ignore[union-attr]
            buyers = generated_buyers(session, sku, 23, now, seed=11)
            services.tag(session, merchant, buyers[0][0], "vip")
        celery = create_celery(settings)
        assert celery.conf.beat_schedule["segments.recompute_rfm"]["task"] == (
            "segments.recompute_rfm"
        )
        task = celery.tasks["segments.recompute_rfm"]
        first = task.apply().get()
        assert first == 2 * len(buyers)  # the merchant's scope and the platform-wide one
        r = ntile([(last, u) for u, last, _, _ in buyers])
        f = ntile([(count, u) for u, _, count, _ in buyers])
        m = ntile([(cents, u) for u, _, _, cents in buyers])
        want = {u: (r[u], f[u], m[u]) for u, *_ in buyers}
        with factory() as session:
            got = {
                s.user_id: (s.r, s.f, s.m)
                for s in session.scalars(select(RfmScore).where(RfmScore.scope == merchant))
            }
            assert got == want
            high = set(
                session.scalars(
                    select(UserTag.user_id).where(
                        UserTag.merchant_id == merchant, UserTag.tag == rfm.HIGH_VALUE
                    )
                )
            )
            assert high == {u for u, (r_, _f, m_) in want.items() if r_ >= 4 and m_ >= 4}
        assert task.apply().get() == first
        with factory() as session:
            assert session.scalar(select(func.count()).select_from(RfmScore)) == first
            vip = services.create(session, merchant, "vip", {"kind": "tag", "tag": "vip"})
            assert services.members(session, vip) == [buyers[0][0]]
            session.rollback()
    finally:
        engine.dispose()
