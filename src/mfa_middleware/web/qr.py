"""The enrollment page's QR code as inline SVG that a phone's camera can read at any size.

The SVG has a viewBox and no width or height, so the stylesheet sizes all of it (a fixed-size
SVG shrunk by CSS shows only its top-left corner); it draws its own quiet zone (4 modules) in
white and its modules in black, so neither a brand colour, a dark colour scheme nor a theme
can turn it into something a scanner cannot read.

segno is imported on the first enrollment page, not with the package (it pulls in urllib,
http.client and email: a sizeable share of `import mfa_middleware` otherwise).
"""

from __future__ import annotations

from typing import Any

QUIET_ZONE = 4  # modules of light border, as ISO/IEC 18004 asks


SVG_OPTIONS: dict[str, Any] = {
    "border": QUIET_ZONE,
    "dark": "#000",
    "light": "#fff",
    "omitsize": True,
}


def qr_svg(data: str, title: str) -> str:
    """`data` (an otpauth:// URI) as an inline <svg>; `title` is its accessible name."""
    import segno

    return str(
        segno.make(data, error="m").svg_inline(
            title=title, svgclass="qr-code", lineclass="qr-dark", **SVG_OPTIONS
        )
    )


def qr_images(data: str, title: str) -> tuple[str, str]:
    """`data` as a standalone SVG document (its namespace declared: it works inline and as an
    image) and as a `data:` URI for an <img> (the JSON API gives a front end both)."""
    import io

    import segno

    code = segno.make(data, error="m")
    out = io.BytesIO()
    code.save(out, kind="svg", xmldecl=False, svgclass="qr-code", title=title, **SVG_OPTIONS)
    uri = code.svg_data_uri(xmldecl=False, svgclass="qr-code", title=title, **SVG_OPTIONS)
    return out.getvalue().decode(), str(uri)
