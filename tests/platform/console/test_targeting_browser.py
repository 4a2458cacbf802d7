"""An experiment's results page on a phone in headless Chromium: per-arm exposures, clicks,
conversions, the p-value against control and the minimum-sample warning; axe-core, CSP,
weight and tap targets as on the other console pages."""

from __future__ import annotations

import pytest

from tests.platform.console.browser import ConsoleSite, console_site, sign_in_page  # noqa: F401
from tests.platform.groupbuy.factories import engines, fixed_spec, make_shoppers  # noqa: F401
from tests.platform.shop.test_pages_browser import check_page, phone
from tuanbox.experiments import services
from tuanbox.experiments.domain import two_proportion
from tuanbox.experiments.models import ExperimentConversion, ExperimentExposure
from tuanbox.groupbuy.services import create_campaign


@pytest.mark.browser
def test_results_page_on_a_phone(console_site: ConsoleSite) -> None:  # noqa: F811
    site = console_site
    with site.factory() as session, session.begin():
        campaign = create_campaign(
            session, merchant_id=site.world.merchant_id, actor_id=site.world.staff.id,
            spec=fixed_spec(site.world.sku_id, members=3, max_size=3),
        )  # fmt: skip
        experiment = services.create(
            session, site.world.merchant_id, campaign_id=campaign.id, name="标题测试",
            field="title", min_sample=100,
            arms=[{"key": "A", "weight": 50, "value": "蓝莓"},
                  {"key": "B", "weight": 50, "value": "今晨现摘蓝莓"}],
        )  # fmt: skip
        session.add_all([
            ExperimentExposure(experiment_id=experiment.id, arm="A", exposures=40),
            ExperimentExposure(experiment_id=experiment.id, arm="B", exposures=400),
        ])  # fmt: skip
        users = make_shoppers(session, 12)
        for n, user in enumerate(users):
            arm = "A" if n < 2 else "B"
            session.add(ExperimentConversion(
                experiment_id=experiment.id, user_id=user, arm=arm, order_id=f"o-{n}"))  # fmt: skip
        experiment_id = experiment.id
    expected = two_proportion(2, 40, 10, 400)
    assert expected is not None
    with phone(site.base) as (page, refused, weigher):
        sign_in_page(page, site)
        check_page(page, weigher, refused, f"{site.base}/console/experiments/{experiment_id}")
        assert page.locator('[data-exposures="A"]').inner_text() == "40"
        assert page.locator('[data-exposures="B"]').inner_text() == "400"
        assert f"{expected.p_value:.4f}" in page.locator('[data-p="B"]').inner_text()
        assert "每组至少需要 100 次曝光" in page.content()  # arm A is under the minimum
        check_page(page, weigher, refused, f"{site.base}/console/experiments")
        assert page.locator("a", has_text="标题测试").count() == 1


@pytest.mark.browser
def test_segments_page_on_a_phone(console_site: ConsoleSite) -> None:  # noqa: F811
    from tuanbox.segments import services as segments

    site = console_site
    with site.factory() as session, session.begin():
        segments.create(
            session, site.world.merchant_id, "高价值", {"kind": "rfm", "r_min": 4, "m_min": 4}
        )
        segments.create(
            session, site.world.merchant_id, "沉睡 30 天", {"kind": "dormant", "days": 30}
        )
    with phone(site.base) as (page, refused, weigher):
        sign_in_page(page, site)
        check_page(page, weigher, refused, f"{site.base}/console/segments")
        assert page.locator("table tbody tr").count() == 2
        page.locator("form[action$='/push'] input[name=message]").first.fill("深夜食堂")
        page.locator("form[action$='/push'] button").first.click()
        page.wait_for_url(f"{site.base}/console/segments#pushes")
        assert page.locator("#pushes").count() == 1
