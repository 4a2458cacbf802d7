"""Personal data in merchant views: masked by default, and spreadsheet-safe in exports."""

from __future__ import annotations

# A spreadsheet reads a cell starting with one of these as a formula (or DDE command):
# OWASP's list for CSV injection, tab and carriage return included.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def mask_phone(phone: str | None) -> str:
    """`+8613800138000` → `138****8000`: the national number, middle digits hidden."""
    if not phone:
        return ""
    digits = phone[3:] if phone.startswith("+86") else phone.lstrip("+")
    if len(digits) < 8:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_name(name: str | None) -> str:
    """`张三丰` → `张**`: the first character only."""
    if not name:
        return ""
    return name[0] + "*" * min(len(name) - 1, 4) if len(name) > 1 else "*"


def cell_safe(value: object) -> object:
    """A cell value a spreadsheet shows as text: strings starting like a formula get a `'`.

    Numbers stay numbers (money in cents, quantities), so sums still work.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
