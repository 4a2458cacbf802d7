"""Structured logging: JSON lines in production, readable lines in a terminal, with a request id."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# The request's client address (as the ASGI server reports it, proxy headers applied); the
# audit log records it with each action.
client_ip: ContextVar[str | None] = ContextVar("client_ip", default=None)

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

# Query parameters whose names contain one of these carry credentials (the ops hand-over
# `?token=`, sign-in codes, signatures): their values never reach a log line.
_SENSITIVE_PARAMS = ("token", "code", "pass", "secret", "key", "sig", "otp", "auth", "session")
REDACTED = "[redacted]"


def redact_query(path: str) -> str:
    """``path?query`` with the values of credential-like parameters replaced by [redacted].

    The query is re-encoded from its parsed pairs, so names are matched after percent-decoding
    (``to%6Ben`` is ``token``) and no raw request bytes are echoed into the log."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    pairs = [
        (name, REDACTED if any(s in name.lower() for s in _SENSITIVE_PARAMS) else value)
        for name, value in parse_qsl(query, keep_blank_values=True)
    ]
    return f"{base}?{urlencode(pairs, safe='[]/')}" if pairs else base


class _AccessLogRedaction(logging.Filter):
    """On uvicorn's access logger, whose arguments are (client, method, path?query, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query(a) if isinstance(a, str) and "?" in a else a for a in record.args
            )
        return True


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the extra= fields of the call kept as keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in vars(record).items()
            if k not in _STANDARD_ATTRS and v is not None
        )
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        line = f"{line}  {extras}" if extras else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(fmt: str = "auto", level: str = "INFO") -> None:
    """Install one stderr handler on the root logger; `auto` picks JSON unless on a terminal."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else ConsoleFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _AccessLogRedaction) for f in access.filters):
        access.addFilter(_AccessLogRedaction())
