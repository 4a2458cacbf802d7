"""The wording of each texted template: what to register with the SMS gateway, and what the
development inbox shows.

The gateway holds the approved text of each template (Aliyun: 模板内容, `${name}` for a
parameter); we send only its code (`TUANBOX_SMS_TEMPLATES`) and the parameters. These are the
texts to submit for approval, one per template name, so that each code says what it is for:
an erasure code must never read like a sign-in code (a shopper who did not ask to erase could
be talked into reading it out as one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

WORDING: dict[str, dict[str, str]] = {
    "otp": {
        "zh": "您的团盒登录验证码为${code}，${ttl_s}秒内有效。请勿告诉他人。",
        "en": "Your Tuanbox sign-in code is ${code}, valid for ${ttl_s} s. Do not share it.",
    },
    "erasure_code": {
        "zh": (
            "您的团盒账户注销验证码为${code}，${ttl_s}秒内有效。输入后将永久删除您的账户；"
            "如非本人操作，请忽略，切勿告诉他人。"
        ),
        "en": (
            "Your Tuanbox erasure code is ${code}, valid for ${ttl_s} s. Entering it erases "
            "your account for good. If you did not ask to erase it, ignore this; never share it."
        ),
    },
    "pickup_ready": {
        "zh": "您的团盒订单已到${locker_id}柜${compartment}格，取件码${fallback_code}。",
        "en": (
            "Your Tuanbox order is in locker ${locker_id}, compartment ${compartment}; "
            "pickup code ${fallback_code}."
        ),
    },
}

_PARAM = re.compile(r"\$\{(\w+)\}")


def render(template: str, params: Mapping[str, Any], *, lang: str = "en") -> str | None:
    """The text `template` reads as with `params` (None for a template without wording)."""
    texts = WORDING.get(template)
    if texts is None:
        return None
    text = texts.get(lang) or texts["en"]
    return _PARAM.sub(lambda m: str(params.get(m.group(1), m.group(0))), text)
