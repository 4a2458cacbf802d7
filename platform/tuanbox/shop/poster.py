"""The share poster: a PNG (Pillow) with the product, price, tiers and a QR (segno) of the
group's link carrying the inviter, for shoppers to post in chats."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 720, 1100
MARGIN = 48
RED = (179, 18, 47)
INK = (31, 31, 31)
MUTED = (89, 89, 89)
# Fonts with Chinese glyphs, first found wins (Debian's fonts-noto-cjk, then WenQuanYi); the
# index picks the Simplified Chinese face of a collection. Without any, Pillow's own font.
FONTS: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-{weight}.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans{dejavu}.ttf", 0),
)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class PosterText:
    """Everything the poster says, already in the shopper's language."""

    brand: str
    product: str
    price: str
    list_price: str | None
    tiers: str | None
    progress: str | None
    caption: str
    url: str


@cache
def font(size: int, bold: bool = False) -> Font:
    """Loaded once per size and weight, on first use."""
    for pattern, index in FONTS:
        path = pattern.format(weight="Bold" if bold else "Regular", dejavu="-Bold" if bold else "")
        if Path(path).exists():
            return ImageFont.truetype(path, size, index=index)
    return ImageFont.load_default(size)


def wrap(text: str, face: Font, width: int, max_lines: int = 3) -> list[str]:
    """Greedy wrapping by width, at spaces where there are any (CJK breaks anywhere); the
    last line ends in an ellipsis when the text does not fit."""
    lines: list[str] = []
    line = ""
    for ch in text:
        if face.getlength(line + ch) <= width:
            line += ch
            continue
        cut = line.rfind(" ")
        if cut > 0 and ch != " ":
            lines.append(line[:cut])
            line = line[cut + 1 :] + ch
        else:
            lines.append(line)
            line = ch.lstrip()
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and face.getlength(last + "…") > width:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last + "…"]
    return lines


def qr_image(url: str, size: int) -> Image.Image:
    """The link as a QR (error level M, four-module quiet zone), scaled to about ``size``."""
    code = segno.make(url, error="m", micro=False)
    modules = code.symbol_size(scale=1, border=4)[0]
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=max(1, size // modules), border=4)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def render(text: PosterText) -> bytes:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 120), fill=RED)
    draw.text((MARGIN, 60), text.brand, font=font(48, bold=True), fill="white", anchor="lm")
    y = 160
    for line in wrap(text.product, font(44, bold=True), WIDTH - 2 * MARGIN):
        draw.text((MARGIN, y), line, font=font(44, bold=True), fill=INK)
        y += 58
    y += 10
    draw.text((MARGIN, y), text.price, font=font(72, bold=True), fill=RED)
    if text.list_price:
        x = MARGIN + font(72, bold=True).getlength(text.price) + 24
        face = font(32)
        draw.text((x, y + 30), text.list_price, font=face, fill=MUTED)
        mid = y + 30 + 20
        draw.line((x, mid, x + face.getlength(text.list_price), mid), fill=MUTED, width=3)
    y += 100
    for extra in (text.tiers, text.progress):
        if extra:
            for line in wrap(extra, font(30), WIDTH - 2 * MARGIN, max_lines=2):
                draw.text((MARGIN, y), line, font=font(30), fill=INK)
                y += 42
    qr = qr_image(text.url, 400)
    top = max(y + 20, HEIGHT - qr.height - 110)
    image.paste(qr, ((WIDTH - qr.width) // 2, top))
    caption = font(32, bold=True)
    draw.text((WIDTH // 2, top + qr.height + 40), text.caption, font=caption, fill=INK,
              anchor="mm")  # fmt: skip
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
