"""A change of an experiment (start, edit, stop) is seen at once by another process's campaign
page, however long that process would otherwise trust its cache: the page process reads the
experiments' version in Redis, which every committed change bumps (real PostgreSQL, Redis
and two processes)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import make_merchant, make_product, make_sku, make_user
from tests.platform.groupbuy.factories import engines, fixed_spec  # noqa: F401
from tuanbox.db.engine import make_session_factory
from tuanbox.experiments import services
from tuanbox.experiments.domain import assign
from tuanbox.experiments.exposure import install
from tuanbox.experiments.models import Experiment
from tuanbox.groupbuy.services import create_campaign

# The other process: a shop app of its own whose cache would trust an entry for an hour;
# on each line from stdin it loads the campaign page as the shopper and prints its HTML.
PAGE_PROCESS = r"""
import json, sys
from fastapi.testclient import TestClient
from tests.conftest import make_settings
from tuanbox.accounts.deps import Principal
from tuanbox.accounts.tokens import issue_access_token
from tuanbox.api.app import create_app
from tuanbox.experiments import exposure
from tuanbox.shop.session import ACCESS

args = json.loads(sys.argv[1])
exposure.CACHE_TTL_S = 3600.0
settings = make_settings(**args["settings"])
with TestClient(create_app(settings), follow_redirects=False) as client:
    token = issue_access_token(settings, Principal(args["user"], "shopper"))
    client.cookies.set(ACCESS, token, domain="testserver.local", path="/")
    for line in sys.stdin:
        page = client.get(f"/c/{args['campaign']}")
        print(json.dumps({"status": page.status_code, "html": page.text}), flush=True)
"""


def test_a_change_is_seen_by_another_process_at_once(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> None:
    run = uuid.uuid4().hex
    overrides = {
        "database_url": fresh_database(),
        "experiments_prefix": f"test:{run}:exp:",
        "shop_cache_prefix": f"test:{run}:shop:",
        "rate_limit_prefix": f"test:{run}:",
    }
    settings = make_settings(**overrides)
    factory = make_session_factory(engines(settings.database_url), settings)
    install()  # this process bumps the version after its commits, as the API and worker do
    with factory() as session, session.begin():
        product = make_product(session, make_merchant(session))
        sku = make_sku(session, product, stock=50)
        campaign = create_campaign(
            session, merchant_id=product.merchant_id, actor_id="ops-1",
            spec=fixed_spec(sku.id, members=3, max_size=3),
        )  # fmt: skip
        shopper = make_user(session)
        ids = {"merchant": product.merchant_id, "campaign": campaign.id, "user": shopper.id}
    child = subprocess.Popen(
        [sys.executable, "-c", PAGE_PROCESS,
         json.dumps({"settings": overrides, "campaign": ids["campaign"], "user": ids["user"]})],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None

    def page() -> str:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write("get\n")
        child.stdin.flush()
        answer = json.loads(child.stdout.readline())
        assert answer["status"] == 200, answer
        return str(answer["html"])

    try:
        arms = [
            {"key": "A", "weight": 50, "value": "对照标题-甲"},
            {"key": "B", "weight": 50, "value": "试验标题-乙"},
        ]
        assert "对照标题" not in page()  # no experiment yet: cached as none in the other process
        with factory() as session, session.begin():
            experiment = services.create(
                session, ids["merchant"], campaign_id=ids["campaign"], name="标题",
                field="title", arms=arms, min_sample=10,
            )  # fmt: skip
            experiment_id = experiment.id
        arm = assign(experiment_id, ids["user"], arms)
        shown = next(a["value"] for a in arms if a["key"] == arm)
        assert shown in page()  # started: seen at the next request
        assert shown in page()  # and then served from that process's cache
        with factory() as session, session.begin():
            row = session.get(Experiment, experiment_id)
            assert row is not None
            row.arms = [{**a, "value": f"{a['value']}-改"} for a in arms]
        assert f"{shown}-改" in page()  # edited: seen at once
        with factory() as session, session.begin():
            services.stop(session, ids["merchant"], experiment_id)
        html = page()
        assert "对照标题" not in html and "试验标题" not in html  # stopped: gone at once
    finally:
        child.stdin.close()
        child.wait(timeout=60)
        child.stdout.close()


def test_an_entry_of_another_version_is_stale_and_without_a_version_the_ttl_rules(
    db_session: Session,
) -> None:
    from contextlib import nullcontext

    from tuanbox.experiments import exposure

    product = make_product(db_session, make_merchant(db_session))
    sku = make_sku(db_session, product, stock=5)
    campaign = create_campaign(
        db_session, merchant_id=product.merchant_id, actor_id="ops-1",
        spec=fixed_spec(sku.id, members=3, max_size=3),
    )  # fmt: skip
    opener = lambda: nullcontext(db_session)  # noqa: E731
    arms = [{"key": "A", "weight": 1, "value": "a"}, {"key": "B", "weight": 1, "value": "b"}]
    assert exposure.running_cached(opener, campaign.id, now=0.0, version="1") is None
    row = services.create(
        db_session, product.merchant_id, campaign_id=campaign.id, name="x", field="title",
        arms=arms, min_sample=10,
    )  # fmt: skip
    # The same version and a young entry: trusted; another version: read again at once.
    assert exposure.running_cached(opener, campaign.id, now=1.0, version="1") is None
    found = exposure.running_cached(opener, campaign.id, now=1.0, version="2")
    assert found is not None and found[0] == row.id
    # Redis unreadable (no version): the entry is trusted until its TTL, then read again.
    services.stop(db_session, product.merchant_id, row.id)
    db_session.flush()
    assert exposure.running_cached(opener, campaign.id, now=2.0, version=None) is not None
    later = 1.0 + exposure.CACHE_TTL_S + 0.5
    assert exposure.running_cached(opener, campaign.id, now=later, version=None) is None
    exposure.forget(campaign.id)
