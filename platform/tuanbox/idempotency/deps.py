"""The `Idempotent` dependency routers use: `return idem.respond(session, user.id, body, work)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from tuanbox.crypto import PiiCipher
from tuanbox.idempotency import services
from tuanbox.settings import Settings


@dataclass
class Idempotency:
    key: str | None
    method: str
    path: str
    settings: Settings

    def respond(
        self, session: Session, principal: str, payload: Any, work: Callable[[], tuple[int, Any]]
    ) -> JSONResponse:
        """Run `work` once per key (it must not commit), commit, and answer its JSON."""
        stored = services.run(
            session,
            principal=principal,
            key=self.key,
            method=self.method,
            path=self.path,
            payload=payload,
            work=work,
            cipher=PiiCipher(self.settings),
            stale_after_s=self.settings.idempotency_stale_s,
        )
        headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
        return JSONResponse(stored.body, status_code=stored.status, headers=headers)


def get_idempotency(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=services.MAX_KEY_LENGTH,
            description="Makes this POST safe to retry: a repeated key returns the first result.",
        ),
    ] = None,
) -> Idempotency:
    return Idempotency(
        key=idempotency_key,
        method=request.method,
        path=request.url.path,
        settings=request.app.state.settings,
    )


Idempotent = Annotated[Idempotency, Depends(get_idempotency)]
