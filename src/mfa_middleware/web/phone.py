"""The phone form: the countries it offers and the number it accepts."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import cache

from mfa_middleware.core.i18n import N_
from mfa_middleware.i18n import Texts


def allowed_regions(sms_regions: Sequence[str] | None) -> tuple[str, ...] | None:
    """`sms_regions` as `region_choices` and `normalise_phone` take it (None: every one)."""
    return tuple(sms_regions) if sms_regions else None


@cache
def region_choices(allowed: tuple[str, ...] | None, texts: Texts) -> list[tuple[str, str]]:
    """The phone form's countries as (code, "United Kingdom (+44)") in the page's language
    (CLDR's names), sorted by name: the regions `sms_regions` allows, or every region
    phonenumbers can parse. One list per language and setting: a handful at most."""
    import phonenumbers

    names = texts.region_names
    regions = allowed or tuple(phonenumbers.SUPPORTED_REGIONS)
    choices = []
    for code in regions:
        name = names.get(code, code)
        calling = phonenumbers.country_code_for_region(code)
        choices.append((code, f"{name} (+{calling})" if calling else name))
    return sorted(choices, key=lambda choice: _folded(choice[1]))


def _folded(text: str) -> str:
    """Sort "Åland Islands" with the A's and "Côte d'Ivoire" with the C's."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def normalise_phone(raw: str, region: str, allowed: tuple[str, ...] | None) -> str:
    """E.164 for a valid number in an allowed region; ValueError with a message otherwise."""
    import phonenumbers

    if len(raw) > 40 or len(region) > 3:
        raise ValueError(N_("Enter a phone number."))
    try:
        number = phonenumbers.parse(raw, region.upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(N_("That doesn't look like a phone number.")) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(N_("That phone number isn't valid. Check the number and the country."))
    number_region = phonenumbers.region_code_for_number(number)
    if allowed and number_region not in allowed:
        raise ValueError(N_("Text messages can't be sent to numbers in that country."))
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
