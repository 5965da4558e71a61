"""The colours a brand colour gives the pages, each readable whatever the colour is.

A brand colour fills the buttons; the text on them is white or black, whichever contrasts
more (at least 4.5:1 for any colour). Links and focus rings sit on the light surfaces of
mfa.css (the card, the page around it, the notices), so they use the brand colour darkened
until it reaches 4.5:1 on each (WCAG 2.1 AA, 1.4.3), or unchanged when it already does.
Without this a pale brand colour (#fde047) gave white-on-yellow buttons and yellow links
nobody could read.
"""

from __future__ import annotations

TEXT_DARK = "#000000"
TEXT_LIGHT = "#ffffff"
# the light backgrounds of mfa.css that links sit on: card, page, notices (info, ok, locked)
SURFACES = ("#ffffff", "#f3f4f6", "#eff6ff", "#ecfdf5", "#fef2f2")
AA = 4.5


def luminance(color: str) -> float:
    """The relative luminance of a #RRGGBB colour (WCAG 2.1)."""

    def channel(hex_pair: str) -> float:
        value = int(hex_pair, 16) / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(color[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(one: str, other: str) -> float:
    lighter, darker = sorted((luminance(one), luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def text_on(background: str) -> str:
    """White or black, whichever reads better on `background`."""
    light, dark = contrast(TEXT_LIGHT, background), contrast(TEXT_DARK, background)
    return TEXT_LIGHT if light >= dark else TEXT_DARK


def readable_on_surfaces(color: str) -> str:
    """`color`, darkened in small steps toward black until it reaches 4.5:1 on every surface."""
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    for step in range(101):
        keep = 1 - step / 100
        candidate = f"#{round(red * keep):02x}{round(green * keep):02x}{round(blue * keep):02x}"
        if all(contrast(candidate, surface) >= AA for surface in SURFACES):
            return candidate
    return "#000000"


def brand_css(color: str) -> str:
    """The stylesheet's custom properties for a brand colour."""
    return (
        f":root {{ --mfa-primary: {color}; --mfa-primary-text: {text_on(color)};"
        f" --mfa-link: {readable_on_surfaces(color)}; }}\n"
    )
