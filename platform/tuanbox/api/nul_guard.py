"""Refuse NUL characters anywhere in a request (path, query, headers, JSON or form body) with 422.

PostgreSQL text cannot hold NUL, so one that reaches a query fails it with a 500. Rather than
every schema and path parameter guarding itself, this ASGI middleware looks once, before
routing: the decoded path, the percent-decoded query, header values, every string (and key)
of a JSON body and every field of a urlencoded form. Multipart and other binary bodies (image
uploads) pass untouched: NUL is ordinary in their bytes, and their files never become text.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tuanbox.api.problems import problem_response

NUL = "\x00"


def _shown(text: str) -> str:
    return text.replace(NUL, "\\0")


def _in_urlencoded(raw: bytes, where: str) -> str | None:
    """`query.name` for a query string; for a form body just `name`, as validation says it."""
    if b"\x00" not in unquote_to_bytes(raw.replace(b"+", b" ")):
        return None
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8"):
        if NUL in key or NUL in value:
            return ".".join(filter(None, (where, _shown(key))))
    return where or "body"


def _in_json(document: Any) -> str | None:
    """Where the first NUL sits in a decoded JSON document (as `a.0.b`), or None."""
    # A stack, not recursion: JSON nested as deep as the decoder allows must not blow ours.
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                return ".".join(loc) or "body"
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if NUL in key:
                    return ".".join((*loc, _shown(key)))
                stack.append(((*loc, key), item))
        elif isinstance(value, list):
            stack.extend(((*loc, str(i)), item) for i, item in reversed(list(enumerate(value))))
    return None


def _in_target(path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> str | None:
    if NUL in path:
        return "path"
    for name, value in headers:
        if b"\x00" in value:
            return f"header.{name.decode('latin-1')}"
    return _in_urlencoded(query, "query")


def _body_kind(content_type: str) -> str | None:
    media = content_type.split(";", 1)[0].strip().lower()
    # FastAPI reads a body without a content type as JSON, so this does too.
    if not media or media == "application/json" or media.endswith("+json"):
        return "json"
    if media == "application/x-www-form-urlencoded":
        return "form"
    if media.startswith("text/"):
        return "text"
    return None


def _in_body(kind: str, body: bytes) -> str | None:
    if kind == "form":
        return _in_urlencoded(body, "")
    if b"\x00" not in body and (kind != "json" or b"\\u0000" not in body):
        return None
    if kind == "text":
        return "body"
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON (or absurdly deep): FastAPI answers that with its own 4xx
    return _in_json(decoded)


class RefuseNul:
    """ASGI middleware: a request carrying NUL gets a 422 problem and never reaches a route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        where = _in_target(scope["path"], scope["query_string"], headers)
        if where is not None:
            await self._refuse(scope, send, where)
            return
        content_type = next((v for k, v in headers if k == b"content-type"), b"")
        kind = _body_kind(content_type.decode("latin-1"))
        if kind is None:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = bytearray()
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        where = _in_body(kind, bytes(body))
        if where is not None:
            await self._refuse(scope, send, where)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, where: str) -> None:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        message = "must not contain NUL characters"
        response = problem_response(
            {
                "type": "https://tuanbox.dev/problems/invalid-input",
                "title": "Invalid input",
                "status": 422,
                "detail": f"{where}: {message}",
                "code": "INVALID_INPUT",
                # Still percent-encoded, so the NUL is not echoed back.
                "instance": _shown(raw_path.decode("latin-1")),
                "errors": [{"field": where, "message": message, "type": "nul_character"}],
            }
        )
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
