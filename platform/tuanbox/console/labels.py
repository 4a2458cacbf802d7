"""The product QR of a lot: a PNG, and a print-ready A4 PDF sheet of labels.

The sheet is drawn with Pillow at 300 dpi (the QR's modules land on whole pixels, so they
print sharp) and saved as a PDF by Pillow itself: no other PDF library is needed. Each label
carries the QR (our GS1 Digital Link resolver URL), the product's name, GTIN, lot and best
before date, in a font with Chinese glyphs (the share poster's, tuanbox.shop.poster)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from PIL import Image, ImageDraw

from tuanbox.shop.poster import font, wrap

DPI = 300
A4 = (2480, 3508)  # 210 × 297 mm at 300 dpi
COLUMNS, ROWS = 3, 7  # 21 labels of 70 × 42.4 mm: the common A4 label sheet
MARGIN_X, MARGIN_Y = 0, 0
MAX_LABELS = COLUMNS * ROWS * 20  # twenty sheets at most in one file


@dataclass(frozen=True)
class Label:
    url: str  # what the QR encodes
    product: str
    gtin: str
    lot: str
    best_before: str  # already formatted, or ""


def qr_png(url: str, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def _qr_image(url: str, size: int) -> Image.Image:
    qr = segno.make(url, error="m")
    modules = qr.symbol_size(scale=1, border=2)[0]
    scale = max(1, size // modules)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=scale, border=2)
    buffer.seek(0)
    return Image.open(buffer).convert("L")


def sheet_pdf(label: Label, count: int) -> bytes:
    """``count`` copies of ``label`` on as many A4 sheets as they need."""
    if not 1 <= count <= MAX_LABELS:
        raise ValueError(f"count must be 1 to {MAX_LABELS}")
    cell_w = (A4[0] - 2 * MARGIN_X) // COLUMNS
    cell_h = (A4[1] - 2 * MARGIN_Y) // ROWS
    qr = _qr_image(label.url, cell_h - 60)
    pages: list[Image.Image] = []
    per_page = COLUMNS * ROWS
    for first in range(0, count, per_page):
        sheet = Image.new("L", A4, 255)
        draw = ImageDraw.Draw(sheet)
        for index in range(min(per_page, count - first)):
            col, row = index % COLUMNS, index // COLUMNS
            x, y = MARGIN_X + col * cell_w, MARGIN_Y + row * cell_h
            _draw_label(sheet, draw, label, qr, x, y, cell_w, cell_h)
        pages.append(sheet)
    out = io.BytesIO()
    pages[0].save(
        out,
        "PDF",
        resolution=DPI,
        save_all=True,
        append_images=pages[1:],
        title=f"{label.gtin} {label.lot}",
        author="Tuanbox",
    )
    return out.getvalue()


def _draw_label(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    label: Label,
    qr: Image.Image,
    x: int,
    y: int,
    w: int,
    h: int,
) -> None:
    pad = 30
    sheet.paste(qr, (x + pad, y + (h - qr.height) // 2))
    left = x + pad + qr.width + 20
    width = w - (left - x) - pad
    top = y + pad + 10
    for line in wrap(label.product, font(34, bold=True), width, max_lines=2):
        draw.text((left, top), line, font=font(34, bold=True), fill=0)
        top += 44
    small = font(26)
    for text in (f"GTIN {label.gtin}", f"LOT {label.lot}", label.best_before):
        if text:
            for line in wrap(text, small, width, max_lines=2):
                draw.text((left, top), line, font=small, fill=0)
                top += 34
