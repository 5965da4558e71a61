"""The catalogs: the template lists every string the pages, emails and text messages show
(templates, N_() and NP_() in Python), and every shipped language translates all of it, with
the placeholders of the English and its own CLDR plural forms, compiled into the .mo files
the package ships. A string added without `make messages`, or left untranslated after it,
fails here with the list of what to do."""

from __future__ import annotations

import gettext
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from mfa_middleware.i18n import catalogs_in

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "src" / "mfa_middleware" / "locale"
POT = LOCALE / "mfa_middleware.pot"
PYBABEL = str(Path(sys.executable).parent / "pybabel")
SHIPPED = ["ar", "de", "es", "fr", "fr_CA", "it", "ja", "nl", "pl", "pt_BR", "zh_Hans"]
VARIANTS = {"fr_CA": "fr"}  # regional catalogs: only what differs from their language's
PLACEHOLDER = re.compile(r"\{[a-z_]+\}|%\([a-z_]+\)[sd]")


def catalog(locale: str) -> Catalog:
    with (LOCALE / locale / "LC_MESSAGES" / "mfa_middleware.po").open("rb") as fp:
        return read_po(fp, locale=locale)


def messages(locale: str) -> list[Message]:
    return [m for m in catalog(locale) if m.id]


def forms(message: Message) -> list[str]:
    string = message.string
    return list(string) if isinstance(string, tuple) else [string]


def translated(message: Message) -> bool:
    return all(forms(message))


def test_committed_catalog_template_is_complete(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.pot"
    subprocess.run(
        [
            PYBABEL,
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "-k",
            "NP_:1,2",
            "--no-location",
            "--sort-output",
            "--omit-header",
            "-o",
            str(fresh),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert fresh.read_text() == POT.read_text(), "run `make messages` and commit the .pot"
    assert 'msgid "Enter a valid email address."' in POT.read_text()
    assert 'msgid "Trust this device?"' in POT.read_text()


def test_the_languages_the_issue_asks_for_are_shipped() -> None:
    assert sorted(catalogs_in(LOCALE)) == SHIPPED


def test_every_catalog_holds_exactly_the_templates_messages() -> None:
    """`make messages` updates every catalog from the template; `pybabel update --check`
    says nothing would change, and the lists below say what differs when it would."""
    with POT.open("rb") as fp:
        wanted = {m.id for m in read_po(fp) if m.id}
    for locale in SHIPPED:
        ids = {m.id for m in messages(locale)}
        assert ids == wanted, (
            f"{locale}: run `make messages`; missing {sorted(map(str, wanted - ids))},"
            f" obsolete {sorted(map(str, ids - wanted))}"
        )
    check = [PYBABEL, "update", "-D", "mfa_middleware", "-i", str(POT), "-d", str(LOCALE)]
    check += ["--no-fuzzy-matching", "--ignore-obsolete", "--ignore-pot-creation-date", "--check"]
    result = subprocess.run(check, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("locale", [loc for loc in SHIPPED if loc not in VARIANTS])
def test_every_message_is_translated(locale: str) -> None:
    """No empty translation and no fuzzy one (a guess `make messages` never makes, since it
    runs without fuzzy matching, but a translation tool may)."""
    todo = [str(m.id) for m in messages(locale) if not translated(m)]
    fuzzy = [str(m.id) for m in messages(locale) if m.fuzzy]
    assert not todo, f"{locale}: {len(todo)} untranslated, translate them in the .po: {todo}"
    assert not fuzzy, f"{locale}: fuzzy entries, check and unmark them: {fuzzy}"
    assert not catalog(locale).fuzzy, f"{locale}: the catalog's header is marked fuzzy"


@pytest.mark.parametrize(("variant", "parent"), sorted(VARIANTS.items()))
def test_a_regional_catalog_holds_only_what_differs(variant: str, parent: str) -> None:
    """fr_CA says courriel and texto where fr says e-mail and SMS; every other message comes
    from fr. A regional translation equal to its parent's is noise, a half-done one a bug."""
    parents = {m.id: m for m in messages(parent)}
    done = [m for m in messages(variant) if translated(m)]
    assert len(done) >= 20
    for message in done:
        assert forms(message) != forms(parents[message.id]), f"same as {parent}: {message.id}"
    partial = [m.id for m in messages(variant) if any(forms(m)) and not translated(m)]
    assert not partial, partial
    assert not [m.id for m in messages(variant) if m.fuzzy]


@pytest.mark.parametrize("locale", SHIPPED)
def test_placeholders_are_those_of_the_english(locale: str) -> None:
    """Every {name} and %(name)s of the English, none other; a plural form other than the
    last ("other") may leave the count out (Arabic says "two minutes" as one word)."""
    wrong = []
    for message in messages(locale):
        if not translated(message):
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        wanted = {p for text in ids for p in PLACEHOLDER.findall(text)}
        texts = forms(message)
        for index, text in enumerate(texts):
            found = set(PLACEHOLDER.findall(text))
            optional = {p for p in wanted if "count" in p} if index < len(texts) - 1 else set()
            if not (wanted - optional) <= found <= wanted:
                wrong.append(f"{message.id!r} form {index}: {sorted(found)} for {sorted(wanted)}")
            if "%(" in text and re.search(r"%(?!\([a-z_]+\)[sd]|%)", text):
                wrong.append(f"{message.id!r}: a lone % (write %%)")
    assert not wrong, f"{locale}:\n" + "\n".join(wrong)
    errors = [(m.id, e) for m, errs in catalog(locale).check() for e in errs]
    assert not errors, errors  # Babel's own checkers (python-format)


@pytest.mark.parametrize("locale", SHIPPED)
def test_plural_forms_follow_cldr(locale: str) -> None:
    """Polish has three forms, Arabic six, Japanese and Chinese one: the catalog's rule is
    CLDR's (through Babel) and every plural message has that many forms, each written."""
    rule = get_plural(locale)
    header = catalog(locale).plural_forms
    assert header == f"nplurals={rule.num_plurals}; plural={rule.plural_expr};"
    expected = {"ar": 6, "pl": 3, "ja": 1, "zh_Hans": 1, "de": 2, "nl": 2}
    assert rule.num_plurals == expected.get(locale, rule.num_plurals)
    for message in messages(locale):
        if message.pluralizable:
            assert len(forms(message)) == rule.num_plurals, message.id


def test_plural_forms_pick_the_right_words() -> None:
    """The compiled rules at work: 1, 2, 5, 12 and 22 of something in Polish and Arabic."""
    attempts = (
        "That code didn't work. Check your app and try again (%(count)s attempt left).",
        "That code didn't work. Check your app and try again (%(count)s attempts left).",
    )
    polish, arabic = compiled("pl"), compiled("ar")
    pick = {n: polish.ngettext(*attempts, n) % {"count": n} for n in (1, 2, 5, 12, 22)}
    assert pick[1].endswith("(została 1 próba).")
    assert pick[2].endswith("(zostały 2 próby).")
    assert pick[5].endswith("(zostało 5 prób).")
    assert pick[12].endswith("(zostało 12 prób).")
    assert pick[22].endswith("(zostały 22 próby).")
    said = {n: arabic.ngettext(*attempts, n) % {"count": n} for n in (1, 2, 5, 12)}
    assert "محاولة واحدة" in said[1]
    assert "محاولتان" in said[2]
    assert "5 محاولات" in said[5]
    assert "12 محاولة" in said[12]
    assert compiled("ja").ngettext(*attempts, 5).endswith("（残り %(count)s 回）。")


def compiled(locale: str) -> gettext.GNUTranslations:
    path = LOCALE / locale / "LC_MESSAGES" / "mfa_middleware.mo"
    with path.open("rb") as fp:
        return gettext.GNUTranslations(fp)


@pytest.mark.parametrize("locale", SHIPPED)
def test_the_shipped_mo_is_compiled_from_the_po(locale: str) -> None:
    """The .mo files are committed (the wheel ships them): they must say what the .po says."""
    fresh = io.BytesIO()
    write_mo(fresh, catalog(locale))
    fresh.seek(0)
    ours = compiled(locale)
    assert gettext.GNUTranslations(fresh)._catalog == ours._catalog, (  # type: ignore[attr-defined]
        f"{locale}: run `make messages` (pybabel compile) and commit the .mo"
    )
