"""Delivery waves, pure: which daily courier run an order confirmed at a given instant takes.

A station ships once a day. Its wave of local date D departs at D + `departure` (local time);
the wave's cutoff is the last `cutoff` (local time) before that departure, so "cutoff 22:00,
departure 10:00" means orders confirmed before 22:00 tonight go out at 10:00 tomorrow.
Compartments are allocated `lead` before departure, and never before the cutoff (all of the
wave's orders are known by then). An order confirmed at or after a cutoff takes the next wave.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A wave schedule that cannot be used (an unknown zone, a time that is not HH:MM)."""


def parse_hhmm(value: str) -> time:
    """`"22:00"` → 22:00; ScheduleError for anything else."""
    match = _HHMM.match(value)
    if match is None:
        raise ScheduleError(f"{value!r} is not a time of day as HH:MM (00:00-23:59)")
    return time(int(match.group(1)), int(match.group(2)))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"{name!r} is not an IANA time zone") from exc


@dataclass(frozen=True)
class Wave:
    """One courier run of one station: its local date and its instants (UTC)."""

    date: date
    cutoff_at: datetime
    departs_at: datetime
    allocate_at: datetime


@dataclass(frozen=True)
class WaveSchedule:
    tz: ZoneInfo
    cutoff: time
    departure: time
    lead: timedelta

    @classmethod
    def of(cls, tz: str, cutoff: str, departure: str, lead_s: float) -> WaveSchedule:
        return cls(zone(tz), parse_hhmm(cutoff), parse_hhmm(departure), timedelta(seconds=lead_s))

    def _at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.tz).astimezone(UTC)

    def wave_on(self, day: date) -> Wave:
        """The wave departing on local date `day`."""
        departs = self._at(day, self.departure)
        cutoff_day = day if self.cutoff < self.departure else day - timedelta(days=1)
        cutoff = self._at(cutoff_day, self.cutoff)
        return Wave(day, cutoff, departs, max(cutoff, departs - self.lead))

    def next_wave(self, at: datetime) -> Wave:
        """The wave an order confirmed at `at` ships in: the first whose cutoff is after it."""
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        day = at.astimezone(self.tz).date() - timedelta(days=1)
        while True:
            wave = self.wave_on(day)
            if wave.cutoff_at > at:
                return wave
            day += timedelta(days=1)
