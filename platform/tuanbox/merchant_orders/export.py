"""CSV and XLSX exports of a merchant's filtered orders, streamed from the database.

Rows come from `listing.stream_rows` (a server-side cursor, a thousand at a time). The CSV
is yielded as it is written; the XLSX goes through openpyxl's write-only workbook, which
keeps rows in a temporary file rather than in memory, and the finished file is read back in
chunks. Personal data is masked unless the scope reveals it, and every text cell that a
spreadsheet would read as a formula is made plain text (`pii.cell_safe`).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tuanbox.errors import InvalidInputError
from tuanbox.merchant_orders.listing import OrderFilter, OrderRow, Scope, stream_rows
from tuanbox.merchant_orders.pii import cell_safe
from tuanbox.merchant_orders.tabs import LABELS

# An XLSX sheet holds 1,048,576 rows, the header included.
XLSX_MAX_ROWS = 1_048_575
CHUNK = 64 * 1024

HEADER = [
    "order_id",
    "created_at",
    "status",
    "tab",
    "kind",
    "campaign",
    "product",
    "sku",
    "qty",
    "unit_total_cents",
    "paid_cents",
    "refunded_cents",
    "station_id",
    "station",
    "shopper",
    "phone",
]


class ExportTooLargeError(InvalidInputError):
    """More rows than an XLSX sheet holds: narrow the filter or export CSV."""

    code = "EXPORT_TOO_LARGE"


def _cells(row: OrderRow, tz: ZoneInfo) -> list[object]:
    local: datetime = row.created_at.astimezone(tz)
    values: list[object] = [
        row.id,
        local.strftime("%Y-%m-%d %H:%M:%S"),
        row.status,
        LABELS[row.tab][0],
        row.kind,
        row.campaign or "",
        row.product,
        row.sku,
        row.qty,
        row.total_cents,
        row.paid_cents,
        row.refunded_cents,
        row.station_id or "",
        row.station or "",
        row.shopper_name,
        row.shopper_phone,
    ]
    return [cell_safe(v) for v in values]


def csv_chunks(session: Session, scope: Scope, flt: OrderFilter) -> Iterator[bytes]:
    """The CSV (UTF-8 with a BOM, so spreadsheet programs read the Chinese right), in chunks."""
    tz = ZoneInfo(flt.tz)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(HEADER)
    for row in stream_rows(session, scope, flt):
        writer.writerow(_cells(row, tz))
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def xlsx_file(session: Session, scope: Scope, flt: OrderFilter) -> str:
    """Write the XLSX to a temporary file and return its path (the caller streams and
    deletes it: `file_chunks`)."""
    from openpyxl import Workbook  # an export-only dependency, loaded when used

    tz = ZoneInfo(flt.tz)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("orders")
    sheet.append(HEADER)
    for written, row in enumerate(stream_rows(session, scope, flt), start=1):
        if written > XLSX_MAX_ROWS:
            raise ExportTooLargeError(f"more than {XLSX_MAX_ROWS} orders: narrow the filter")
        sheet.append(_cells(row, tz))
    fd, path = tempfile.mkstemp(prefix="tuanbox-export-", suffix=".xlsx")
    os.close(fd)
    try:
        workbook.save(path)
    except BaseException:
        os.unlink(path)
        raise
    return path


def file_chunks(path: str) -> Iterator[bytes]:
    """The file in chunks, removed once read (or when the download is abandoned)."""
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
    finally:
        os.unlink(path)
