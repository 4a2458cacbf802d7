"""QR codes for the shop's pages: inline SVG markup (no extra request, no inline style)."""

from __future__ import annotations

import io

import segno
from markupsafe import Markup


def svg(text: str, *, error: str = "m") -> Markup:
    """``text`` as an inline ``<svg>`` (black on white, four-module quiet zone), sized by CSS."""
    qr = segno.make(text, error=error, micro=False)
    buffer = io.BytesIO()
    qr.save(buffer, kind="svg", scale=1, border=4, dark="#000", light="#fff", xmldecl=False,
            svgns=True, nl=False, omitsize=True, svgclass=None, lineclass=None)  # fmt: skip
    # segno's own output: the text is encoded as modules, never written into the markup.
    return Markup(buffer.getvalue().decode("ascii"))  # noqa: S704
