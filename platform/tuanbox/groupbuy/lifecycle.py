"""Staff control of a running campaign: pause, resume, end early (each audited).

A paused campaign opens no group and takes no join (`services._check_window`), and the shop
does not list it; resuming clears the pause. Ending early moves the campaign's end to now,
so every path that reads the window (joins, the shop, the group closer, the stock pool)
treats it as ended; a campaign that had not started yet is cancelled the same way (its
window moved wholly into the past). The original window stays in the audit entry.
Flash sales have no pause (their terms are cached on the admission hot path), but one that
has not started may be cancelled while it is at least CANCEL_LEAD before its start."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor, record
from tuanbox.errors import ConflictError, NotFoundError
from tuanbox.groupbuy.models import Campaign
from tuanbox.groupbuy.services import as_utc

# The admission hot path caches sale terms per process for 60 s: two minutes clear them all.
CANCEL_LEAD = timedelta(minutes=2)


class CampaignState(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"


class CampaignStateError(ConflictError):
    code = "CAMPAIGN_STATE"


def state_of(
    starts_at: datetime, ends_at: datetime, paused_at: datetime | None, now: datetime
) -> CampaignState:
    if as_utc(ends_at) <= now:
        return CampaignState.ENDED
    if paused_at is not None:
        return CampaignState.PAUSED
    if as_utc(starts_at) > now:
        return CampaignState.SCHEDULED
    return CampaignState.RUNNING


def campaign_state(campaign: Campaign, now: datetime) -> CampaignState:
    return state_of(campaign.starts_at, campaign.ends_at, campaign.paused_at, now)


def _window(campaign: Campaign) -> dict[str, str | None]:
    return {
        "starts_at": as_utc(campaign.starts_at).isoformat(),
        "ends_at": as_utc(campaign.ends_at).isoformat(),
        "paused_at": as_utc(campaign.paused_at).isoformat() if campaign.paused_at else None,
    }


def _owned(session: Session, campaign_id: str, merchant_id: str) -> Campaign:
    """The merchant's campaign, row-locked; another merchant's is not found."""
    campaign = session.get(Campaign, campaign_id, with_for_update={"key_share": True})
    if campaign is None or campaign.merchant_id != merchant_id:
        raise NotFoundError(f"campaign {campaign_id} not found")
    return campaign


def pause(
    session: Session, actor: Actor, merchant_id: str, campaign_id: str, now: datetime
) -> Campaign:
    campaign = _owned(session, campaign_id, merchant_id)
    state = campaign_state(campaign, now)
    if state not in (CampaignState.RUNNING, CampaignState.SCHEDULED):
        raise CampaignStateError(f"a campaign that is {state.value} cannot be paused")
    before = _window(campaign)
    campaign.paused_at = now
    record(
        session,
        actor,
        "campaign.pause",
        "campaign",
        campaign.id,
        before=before,
        after=_window(campaign),
    )
    return campaign


def resume(
    session: Session, actor: Actor, merchant_id: str, campaign_id: str, now: datetime
) -> Campaign:
    campaign = _owned(session, campaign_id, merchant_id)
    state = campaign_state(campaign, now)
    if state is not CampaignState.PAUSED:
        raise CampaignStateError(f"a campaign that is {state.value} cannot be resumed")
    before = _window(campaign)
    campaign.paused_at = None
    record(
        session,
        actor,
        "campaign.resume",
        "campaign",
        campaign.id,
        before=before,
        after=_window(campaign),
    )
    return campaign


def end_early(
    session: Session, actor: Actor, merchant_id: str, campaign_id: str, now: datetime, reason: str
) -> Campaign:
    campaign = _owned(session, campaign_id, merchant_id)
    if campaign_state(campaign, now) is CampaignState.ENDED:
        raise CampaignStateError("this campaign has already ended")
    before = _window(campaign)
    if as_utc(campaign.starts_at) >= now:
        campaign.starts_at = now - timedelta(milliseconds=1)  # cancelled before it started
    campaign.ends_at = now
    campaign.paused_at = None
    record(
        session,
        actor,
        "campaign.end_early",
        "campaign",
        campaign.id,
        reason=reason,
        before=before,
        after=_window(campaign),
    )
    return campaign


def cancel_sale(
    session: Session, actor: Actor, merchant_id: str, sale_id: str, now: datetime, reason: str
) -> None:
    """Cancel a flash sale that has not started (its window moves into the past; the
    sales closer gives its set-aside stock back to the SKU)."""
    from tuanbox.flashsale.models import FlashSale

    sale = session.get(FlashSale, sale_id, with_for_update={"key_share": True})
    if sale is None or sale.merchant_id != merchant_id:
        raise NotFoundError(f"flash sale {sale_id} not found")
    if as_utc(sale.starts_at) - now < CANCEL_LEAD:
        raise CampaignStateError(
            "a flash sale can be cancelled only until two minutes before it starts"
        )
    before = {
        "starts_at": as_utc(sale.starts_at).isoformat(),
        "ends_at": as_utc(sale.ends_at).isoformat(),
    }
    sale.starts_at = now - timedelta(milliseconds=1)
    sale.ends_at = now
    record(
        session,
        actor,
        "flash_sale.cancel",
        "flash_sale",
        sale.id,
        reason=reason,
        before=before,
        after={
            "starts_at": as_utc(sale.starts_at).isoformat(),
            "ends_at": as_utc(sale.ends_at).isoformat(),
        },
    )
