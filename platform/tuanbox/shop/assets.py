"""The shop's static files (one stylesheet, one script), served by the app: no CDN."""

from __future__ import annotations

from fastapi import APIRouter, Response

from tuanbox.errors import NotFoundError
from tuanbox.shop.render import STATIC, STATIC_TYPES, static_version

router = APIRouter(include_in_schema=False)
NAMES = frozenset(p.name for p in STATIC.iterdir() if p.suffix in STATIC_TYPES)


@router.get("/shop/static/{name}")
def static(name: str, v: str | None = None) -> Response:
    """A file by name (no paths); a request naming its current ``v`` may be cached a year."""
    if name not in NAMES:
        raise NotFoundError(f"no static file {name}")
    path = STATIC / name
    current = v == static_version(name)
    cache = "public, max-age=31536000, immutable" if current else "public, max-age=300"
    return Response(path.read_bytes(), media_type=STATIC_TYPES[path.suffix],
                    headers={"Cache-Control": cache})  # fmt: skip
