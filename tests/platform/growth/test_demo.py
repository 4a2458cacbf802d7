"""The demo's growth and targeting steps run on the zero-setup SQLite default (plus real Redis)
and say what happened: a referral counted and taken back, a coupon split per unit, points
earned and reversed, a membership, a segment push sent once, an A/B test's figures."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import make_settings
from tuanbox.db.migrate import upgrade
from tuanbox.demo import STEPS
from tuanbox.growth.demo import referral_coupon_points_membership, segment_push_and_experiment


def test_growth_demo_steps_on_sqlite(tmp_path: Path, redis_url: str) -> None:
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}", redis_url=redis_url
    )
    upgrade(settings.database_url)
    steps = {step for _title, step in STEPS}
    assert {s.__name__ for s in steps} >= {"_growth", "_targeting"}  # in `make demo`
    for _ in range(2):  # re-runnable on the same database
        growth = referral_coupon_points_membership(settings)
        assert "bound (new=True)" in growth
        assert "coupon −¥5.00 split per unit ¥1.67/¥1.67/¥1.66 → pays ¥31.00" in growth
        assert "invitee earned 31 points" in growth and "invites counted: 1" in growth
        # The last unit paid 12.00 less its 1.66 of coupon; 31 points less 10.34/31.00 of them.
        assert "one unit refunded ¥10.34 (succeeded): points 31 → 21" in growth
        assert "invites counted 1 → 0" in growth
        assert "(webhook applied, repeat duplicate)" in growth and "[('paid', 9900)]" in growth
        assert "member ¥10.80 + delivery ¥0.00, others ¥12.00 + delivery ¥5.00" in growth
        targeting = segment_push_and_experiment(settings)
        assert "12 members; coupon push sent 12, rate-limited 0" in targeting
        assert "re-run sent 0 (already 12)" in targeting
        assert "80 exposures flushed from Redis, 12 group orders paid" in targeting
        arms = re.findall(r"(\d+) exposed, (\d+) clicked, (\d+) converted", targeting)
        assert [(int(c), int(v)) for _e, c, v in arms] == [(3, 3), (9, 9)]
        assert sum(int(e) for e, _c, _v in arms) == 80
        p_value = float(re.findall(r"p (0\.\d+)", targeting)[0])
        assert 0 < p_value < 1
