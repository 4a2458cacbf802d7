"""An experiment's results page states, per arm, the click-through (shoppers who started an
order on the campaign, by their arm, over the exposures), the conversion, the p-value of the
two-proportion test against control and the minimum-sample warning (real PostgreSQL)."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from tests.platform.console.conftest import ConsoleClient
from tests.platform.groupbuy.factories import fixed_spec, make_shoppers
from tuanbox.db.base import utcnow
from tuanbox.experiments import services
from tuanbox.experiments.domain import two_proportion
from tuanbox.experiments.models import ExperimentConversion, ExperimentExposure
from tuanbox.experiments.variant import assign
from tuanbox.groupbuy.services import create_campaign, join_group, open_group


def cell(html: str, attr: str, arm: str) -> str:
    found = re.search(rf'<dd {attr}="{arm}">([^<]*)</dd>', html)
    assert found, f"no {attr}={arm} on the page"
    return found.group(1).strip()


ARMS = [{"key": "A", "weight": 50, "value": "蓝莓"}, {"key": "B", "weight": 50, "value": "鲜蓝莓"}]


def test_results_page_shows_ctr_conversion_p_value_and_the_warning(
    console: ConsoleClient, db_session: Session
) -> None:
    world = console.world
    campaign = create_campaign(
        db_session, merchant_id=world.merchant_id, actor_id=world.staff.id,
        spec=fixed_spec(world.sku_id, members=30, max_size=30),
    )  # fmt: skip
    experiment = services.create(
        db_session, world.merchant_id, campaign_id=campaign.id, name="标题测试",
        field="title", arms=ARMS, min_sample=100,
    )  # fmt: skip
    shoppers = make_shoppers(db_session, 24)
    by_arm: dict[str, list[str]] = {"A": [], "B": []}
    for user in shoppers:
        by_arm[assign(experiment.id, user, ARMS)].append(user)
    assert by_arm["A"] and len(by_arm["B"]) >= 3
    # Shoppers who start an order are the clicks; of them, some pay (conversions).
    clickers = {"A": by_arm["A"][:1], "B": by_arm["B"][:3]}
    opened = open_group(db_session, campaign_id=campaign.id, user_id=clickers["B"][0], now=utcnow())
    for user in [*clickers["A"], *clickers["B"][1:]]:
        join_group(db_session, group_id=opened.group.id, user_id=user, now=utcnow())
    db_session.add_all([
        ExperimentExposure(experiment_id=experiment.id, arm="A", exposures=50),
        ExperimentExposure(experiment_id=experiment.id, arm="B", exposures=200),
        ExperimentConversion(experiment_id=experiment.id, user_id=clickers["A"][0], arm="A",
                             order_id="o-a"),
        *[ExperimentConversion(experiment_id=experiment.id, user_id=u, arm="B", order_id=f"o-b{i}")
          for i, u in enumerate(clickers["B"][:2])],
    ])  # fmt: skip
    db_session.flush()

    page = console.get(f"/console/experiments/{experiment.id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert cell(page.text, "data-ctr", "A") == "1 (2.0%)"
    assert cell(page.text, "data-ctr", "B") == "3 (1.5%)"
    assert cell(page.text, "data-conversion", "A") == "1 (2.0%)"
    assert cell(page.text, "data-conversion", "B") == "2 (1.0%)"
    expected = two_proportion(1, 50, 2, 200)
    assert expected is not None
    assert cell(page.text, "data-p", "B").startswith(f"{expected.p_value:.4f}")
    assert "each arm needs at least 100" in page.text
