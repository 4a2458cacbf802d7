"""Image files under the media dir, named by content hash so they can be cached forever."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor, record
from tuanbox.catalog.errors import ImageRejectedError
from tuanbox.catalog.models import ProductImage

MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Sniffed from the bytes, never taken from the client's Content-Type.
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
)


def sniff(data: bytes) -> tuple[str, str]:
    for magic, content_type, ext in _SIGNATURES:
        if data.startswith(magic):
            return content_type, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    raise ImageRejectedError("only PNG, JPEG, GIF and WebP images are accepted")


def store_image(
    session: Session, actor: Actor, media_dir: str, product_id: str, data: bytes
) -> ProductImage:
    if not data:
        raise ImageRejectedError("empty file")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRejectedError(f"images are limited to {MAX_IMAGE_BYTES} bytes")
    content_type, ext = sniff(data)
    filename = f"{hashlib.sha256(data).hexdigest()[:32]}.{ext}"
    root = Path(media_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = root / filename
    if not target.exists():
        # Write then rename, so a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=root, suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    position = session.scalar(
        select(func.count()).select_from(ProductImage).where(ProductImage.product_id == product_id)
    )
    image = ProductImage(
        product_id=product_id,
        filename=filename,
        content_type=content_type,
        size_bytes=len(data),
        position=position or 0,
    )
    session.add(image)
    session.flush()
    record(session, actor, "product.image_add", "product", product_id, details={"file": filename})
    return image


def media_path(media_dir: str, filename: str) -> Path | None:
    """The file for a public name, or None; names are hash.ext only, so no path tricks."""
    stem, _, ext = filename.partition(".")
    if len(stem) != 32 or not all(c in "0123456789abcdef" for c in stem):
        return None
    if ext not in {"png", "jpg", "gif", "webp"}:
        return None
    path = Path(media_dir) / filename
    return path if path.is_file() else None
