"""Any brand colour gives readable pages: text on its buttons and links on the white card
reach WCAG AA contrast (4.5:1) on every light surface of the stylesheet, whatever the colour."""

from __future__ import annotations

import itertools

import pytest

from mfa_middleware.brand import (
    SURFACES,
    brand_css,
    contrast,
    readable_on_surfaces,
    text_on,
)

# every 17th step of each channel: 4096 colours from black to white, pale and dark, grey
COLOURS = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in itertools.product(range(0, 256, 17), repeat=3)]


@pytest.mark.parametrize("colour", ["#777777", "#ff0000", "#fde047", "#ffffff", "#000000"])
def test_the_hard_ones(colour: str) -> None:
    assert contrast(text_on(colour), colour) >= 4.5
    assert min(contrast(readable_on_surfaces(colour), s) for s in SURFACES) >= 4.5


def test_every_colour_gives_readable_buttons_and_links() -> None:
    for colour in COLOURS:
        assert contrast(text_on(colour), colour) >= 4.5, colour
        link = readable_on_surfaces(colour)
        assert min(contrast(link, surface) for surface in SURFACES) >= 4.5, colour


def test_a_readable_colour_is_kept_as_it_is() -> None:
    assert readable_on_surfaces("#0f766e") == "#0f766e"
    assert brand_css("#0f766e") == (
        ":root { --mfa-primary: #0f766e; --mfa-primary-text: #ffffff; --mfa-link: #0f766e; }\n"
    )
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
