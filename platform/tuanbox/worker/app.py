"""Builds the Celery application from settings; feature packages register tasks by module."""

from __future__ import annotations

from typing import Any

from celery import Celery

from tuanbox.audit.tasks import beat_entry as audit_beat_entry
from tuanbox.merchant_orders.counters import COMPACT_EVERY_S as TAB_COUNTS_COMPACT_EVERY_S
from tuanbox.reports.tasks import beat_entries as reports_beat_entries
from tuanbox.segments.tasks import BEAT as segments_beat
from tuanbox.settings import Settings

# Modules holding @shared_task functions; each feature with background work adds its own.
TASK_MODULES: list[str] = [
    "tuanbox.orders.tasks",
    "tuanbox.payments.tasks",
    "tuanbox.groupbuy.tasks",
    "tuanbox.flashsale.tasks",
    "tuanbox.coldchain.tasks",
    "tuanbox.fulfilment.tasks",
    "tuanbox.trace.tasks",
    "tuanbox.audit.tasks",
    "tuanbox.accounts.tasks",
    "tuanbox.privacy.tasks",
    "tuanbox.risk.tasks",
    "tuanbox.reports.tasks",
    "tuanbox.growth.tasks",
    "tuanbox.recommend.tasks",
    "tuanbox.segments.tasks",
    "tuanbox.experiments.tasks",
    "tuanbox.notifications.tasks",
    "tuanbox.merchant_orders.tasks",
]

# Periodic jobs; each feature adds entries keyed by a stable name.
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "orders.expire_unpaid": {"task": "orders.expire_unpaid", "schedule": 30.0},
    "payments.process_due_refunds": {"task": "payments.process_due_refunds", "schedule": 5.0},
    "idempotency.purge": {"task": "idempotency.purge", "schedule": 3600.0},
    # Filled groups close on the next tick; open ones at their (DB-held) deadline.
    "groupbuy.close_due_groups": {"task": "groupbuy.close_due_groups", "schedule": 10.0},
    "flashsale.reconcile": {"task": "flashsale.reconcile", "schedule": 15.0},
    # "Remind me" rows due before their sale starts (a scan: none lost while beat is down).
    "flashsale.send_reminders": {"task": "flashsale.send_reminders", "schedule": 30.0},
    "coldchain.scan": {"task": "coldchain.scan", "schedule": 60.0},
    "fulfilment.pickup_deadlines": {"task": "fulfilment.pickup_deadlines", "schedule": 60.0},
    # Waves are allocated at their (DB-held) allocate_at; a scan, so none is lost while down.
    "fulfilment.allocate_waves": {"task": "fulfilment.allocate_waves", "schedule": 60.0},
    # Paid orders their merchant left unanswered past the deadline: confirm or refund.
    "orders.acceptance_deadlines": {"task": "orders.acceptance_deadlines", "schedule": 60.0},
    # A window closes on age or size; the task itself runs alone under a Redis lock.
    "trace.anchor_windows": {"task": "trace.anchor_windows", "schedule": 60.0},
    # A reorg deeper than the confirmations can take a recorded anchor off the chain later.
    "trace.check_reorgs": {"task": "trace.check_reorgs", "schedule": 600.0},
    # Redis may lose token revocation markers; the DB rewrites them (one period of exposure).
    "accounts.republish_revocations": {"task": "accounts.republish_revocations", "schedule": 30.0},
    # A PII key id without a finished sweep gets one (started, or resumed after a lost worker).
    "pii.rotation_check": {"task": "pii.rotation_check", "schedule": 300.0},
    # Risk signals past their retention (the longest rule window is 90 days).
    "risk.prune": {"task": "risk.prune", "schedule": 3600.0},
    # Ended weeks' and months' invite leaderboards: awarded once, a rerun finishes a crash.
    "growth.award_leaderboards": {"task": "growth.award_leaderboards", "schedule": 600.0},
    "membership.expire_terms": {"task": "membership.expire_terms", "schedule": 3600.0},
    # Members' flash early-access markers in Redis, rewritten from the DB (Redis may lose them).
    "membership.republish_markers": {"task": "membership.republish_markers", "schedule": 60.0},
    # Station-day popularity counts past the window (TUANBOX_RECOMMEND_POPULARITY_DAYS).
    "recommend.prune_days": {"task": "recommend.prune_days", "schedule": 3600.0},
    # Texts queued in a transaction (the pickup code), sent after it committed.
    "notifications.deliver_sms": {"task": "notifications.deliver_sms", "schedule": 10.0},
    # Console tab-count deltas (appended by the order triggers) folded into the counters;
    # reads add the pending ones, so a late run only makes reads a little slower.
    "merchant_orders.compact_tab_counts": {
        "task": "merchant_orders.compact_tab_counts",
        "schedule": TAB_COUNTS_COMPACT_EVERY_S,
    },
}


def create_celery(settings: Settings) -> Celery:
    app = Celery("tuanbox", broker=settings.redis_url, backend=settings.redis_url)
    app.conf.update(
        task_acks_late=True,  # a worker killed mid-task leaves it for another worker
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="default",
        timezone="UTC",
        enable_utc=True,
        beat_schedule={
            **BEAT_SCHEDULE,
            # The audit chain's head is anchored at a configured period (0: not at all).
            **audit_beat_entry(settings.audit_anchor_interval_s),
            # Rollups and page views at their configured periods.
            **reports_beat_entries(settings.reports_refresh_s, settings.reports_views_flush_s),
            # RFM hourly, scheduled pushes each minute, experiment exposures flushed.
            **segments_beat,
            "experiments.flush_exposures": {
                "task": "experiments.flush_exposures",
                "schedule": settings.experiments_flush_s,
            },
        },
        broker_connection_retry_on_startup=True,
        include=TASK_MODULES,
    )
    # Groups closing and sales ending change what the shopper pages show: their cache follows.
    from tuanbox.shop.cache import install as watch_shop_pages

    watch_shop_pages()
    # ...and committed experiment changes, every process's cached experiments.
    from tuanbox.experiments.exposure import install as watch_experiments

    watch_experiments()
    app.conf.tuanbox_settings = settings
    return app
