"""Reading the console's form fields into values, collecting worded problems (not raising),
so a page can show every mistake at once beside what was typed."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Form, Path

from tuanbox.bounds import MAX_PRICE_CENTS

# A row id in a console path: longer is refused (422), never cut down to one that exists.
RowId = Annotated[str, Path(min_length=1, max_length=36)]
# Form fields the coupon and invite pages share: a short value, a name, a row id, and what a
# name may not hold (control characters).
Short = Annotated[str, Form(max_length=40)]
Name = Annotated[str, Form(max_length=100)]
FormId = Annotated[str, Form(max_length=36)]
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_MONEY = re.compile(r"^\s*[¥￥]?\s*(\d{1,9})(?:[.,](\d{1,2}))?\s*$")


class Problems:
    """Worded problems of one form, in the request's language."""

    def __init__(self, gettext: Callable[[str], str]) -> None:
        self._ = gettext
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def __bool__(self) -> bool:
        return bool(self.items)

    def money(self, raw: str, label: str, *, required: bool = True) -> int | None:
        """Yuan as typed ("12.9", "¥12.90") → integer cents; None (and a problem) if not."""
        _ = self._
        if not raw.strip():
            if required:
                self.add(_("%(field)s: please enter an amount.") % {"field": label})
            return None
        match = _MONEY.match(raw)
        if match is None:
            self.add(_("%(field)s: enter an amount in yuan, such as 12.90.") % {"field": label})
            return None
        cents = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
        if cents > MAX_PRICE_CENTS:
            self.add(
                _("%(field)s: at most ¥%(max)s.") % {"field": label, "max": MAX_PRICE_CENTS // 100}
            )
            return None
        return cents

    def whole(self, raw: str, label: str, lo: int, hi: int, *, required: bool = True) -> int | None:
        _ = self._
        text = raw.strip()
        if not text:
            if required:
                self.add(_("%(field)s: please enter a number.") % {"field": label})
            return None
        if not text.isdigit() or len(text) > 12:
            self.add(_("%(field)s: enter a whole number.") % {"field": label})
            return None
        value = int(text)
        if not lo <= value <= hi:
            self.add(
                _("%(field)s: must be from %(lo)s to %(hi)s.")
                % {"field": label, "lo": lo, "hi": hi}
            )
            return None
        return value

    def when(self, raw: str, label: str, tz: str) -> datetime | None:
        """A ``datetime-local`` value in the stations' zone → an aware UTC instant."""
        _ = self._
        text = raw.strip()
        try:
            local = datetime.fromisoformat(text)
        except ValueError:
            local = None
        if local is None or local.tzinfo is not None or len(text) > 19:
            self.add(_("%(field)s: choose a date and time.") % {"field": label})
            return None
        return local.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def local_input(at: datetime, tz: str) -> str:
    """An instant as a ``datetime-local`` input's value in the stations' zone."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def yuan(cents: int | None) -> str:
    """Cents as the form shows them back (no currency sign): 1290 → 12.90."""
    if cents is None:
        return ""
    return f"{cents // 100}.{cents % 100:02d}"
