"""Phone numbers in E.164, so `+86 138…`, `86138…` and `138…` are one account."""

from __future__ import annotations

import re

import phonenumbers

from tuanbox.accounts.errors import InvalidPhoneError

# What people type around the digits; anything else (letters, extensions, NUL) is refused
# before the parser, which would otherwise read letters as keypad digits or an extension.
_TYPED = re.compile(r"^\+?[0-9 \-().]{6,30}$")


def to_e164(phone: str, default_region: str) -> str:
    """The number as E.164 (`+8613800138000`); numbers typed without a country code are read
    in `default_region` (`86138…` with the code but no `+` too). Invalid numbers raise
    InvalidPhoneError, a 422."""
    if not _TYPED.match(phone):
        raise InvalidPhoneError("phone must be digits, optionally with +, spaces or dashes")
    try:
        number = phonenumbers.parse(phone, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneError("phone is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneError("phone is not a valid number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
