"""FastAPI dependency of the SMS sender the app was built with (app.state.sms_sender)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tuanbox.notifications.services import SmsSender


def get_sms_sender(request: Request) -> SmsSender:
    """Chosen once by `create_app` from its settings; a missing one is an error, not a default."""
    sender: SmsSender = request.app.state.sms_sender
    return sender


SmsSenderDep = Annotated[SmsSender, Depends(get_sms_sender)]
