"""Celery entry point of trace: the beat tick that cuts and anchors windows."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="trace.anchor_windows", bind=True, acks_late=True)
def anchor_windows(self: Any) -> dict[str, Any]:
    """Cut due windows and anchor every unanchored one; failures stay for the next tick."""
    from traceability.settings import get_settings as get_trace_settings
    from tuanbox.orders.tasks import session_factory_for
    from tuanbox.trace.services import run_anchoring

    settings = self.app.conf.tuanbox_settings
    summary = run_anchoring(session_factory_for(settings.database_url), get_trace_settings())
    return {"cut": summary.windows_cut, "anchored": summary.anchored, "failed": summary.failed}
