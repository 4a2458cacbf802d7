"""Console segments and experiments over HTTP (real PostgreSQL/Redis): a segment created
and pushed to once however often the form is sent, an experiment started on the merchant's
campaign, its results page, stopping it; other merchants' objects are 404; bad input 422."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.platform.console.conftest import ConsoleClient
from tests.platform.groupbuy.factories import fixed_spec
from tests.platform.segments.support import paid_order
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.experiments.models import Experiment
from tuanbox.groupbuy.services import create_campaign
from tuanbox.segments import rfm
from tuanbox.segments.models import PushRecipient, Segment


def test_segment_create_and_push_once(console: ConsoleClient, db_session: Session) -> None:
    world = console.world
    sku = db_session.get(Sku, world.sku_id)
    assert sku is not None
    paid_order(db_session, sku, world.shopper.id, paid_at=utcnow() - timedelta(days=40), cents=990)
    rfm.recompute(db_session)
    bad = console.post(
        "/console/segments", data={"csrf": console.csrf, "name": "x", "kind": "nope"}
    )
    assert bad.status_code == 422
    made = console.post(
        "/console/segments",
        data={"csrf": console.csrf, "name": "沉睡", "kind": "dormant", "days": "30"},
    )
    assert made.status_code == 303
    page = console.get("/console/segments")
    assert page.status_code == 200 and "沉睡" in page.text
    segment = db_session.scalars(
        select(Segment).where(Segment.merchant_id == world.merchant_id)
    ).one()
    form = {"csrf": console.csrf, "kind": "message", "message": "回来看看", "key": "k1"}
    for _ in range(2):  # a double submit is one push
        sent = console.post(f"/console/segments/{segment.id}/push", data=form)
        assert sent.status_code == 303
    count = db_session.scalar(select(func.count()).select_from(PushRecipient))
    assert count == 1
    other = console.post(f"/console/segments/{segment.id}/push", data=form)
    assert other.status_code == 303
    theirs = console.get("/console/segments")
    assert theirs.status_code == 200


def test_experiment_start_results_stop(
    console: ConsoleClient, db_session: Session, console_as: object
) -> None:
    world = console.world
    campaign = create_campaign(
        db_session, merchant_id=world.merchant_id, actor_id=world.staff.id,
        spec=fixed_spec(world.sku_id, members=3, max_size=3),
    )  # fmt: skip
    form = {
        "csrf": console.csrf, "campaign_id": campaign.id, "name": "标题测试", "field": "title",
        "value_a": "蓝莓", "value_b": "今晨现摘蓝莓", "weight_a": "50", "weight_b": "50",
    }  # fmt: skip
    bad = console.post("/console/experiments", data={**form, "field": "price"})
    assert bad.status_code == 422
    started = console.post("/console/experiments", data=form)
    assert started.status_code == 303
    experiment = db_session.scalars(select(Experiment)).one()
    assert started.headers["location"] == f"/console/experiments/{experiment.id}"
    results = console.get(f"/console/experiments/{experiment.id}")
    assert results.status_code == 200
    assert "今晨现摘蓝莓" in results.text and "data-exposures" in results.text
    again = console.post("/console/experiments", data=form)
    assert again.status_code == 409  # one running experiment per campaign
    other = console_as(world.other_staff)  # type: ignore[operator]
    assert other.get(f"/console/experiments/{experiment.id}").status_code == 404
    stopped = console.post(
        f"/console/experiments/{experiment.id}/stop", data={"csrf": console.csrf}
    )
    assert stopped.status_code == 303
    db_session.refresh(experiment)
    assert experiment.status == "stopped"
