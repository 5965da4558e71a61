"""The rules of a user's authenticator list, as pure functions of the record."""

from __future__ import annotations

from mfa_middleware.core import authenticators as a
from mfa_middleware.core.records import Authenticator, RuntimeSettings, UserRecord

NOW = 1_700_000_000.0
SETTINGS = RuntimeSettings()


def item(kind: str, ident: str, destination: str | None = None) -> Authenticator:
    return Authenticator(ident, kind, "", NOW, destination=destination)


def test_a_phone_replaces_an_address_and_the_apps_stay() -> None:
    user = a.added(UserRecord(), SETTINGS, NOW, item("email", "e", "a@example.com"))
    user = a.added(user, SETTINGS, NOW, item("totp", "t"))
    user = a.added(user, SETTINGS, NOW, item("sms", "s", "+14155552671"))
    assert [(f.kind, f.id) for f in user.factors()] == [("totp", "t"), ("sms", "s")]
    assert "a@example.com" not in str(user.to_doc())
    assert a.default_id(user) == "s"  # the phone replaced the default address, and as default
    assert a.kinds(user) == ["sms", "totp"]


def test_the_first_authenticator_is_the_default_and_later_ones_keep_it() -> None:
    user = a.added(UserRecord(), SETTINGS, NOW, item("totp", "t"))
    user = a.added(user, SETTINGS, NOW, item("totp", "t2"))
    assert a.default_id(user) == "t"
    assert a.default_id(a.made_default(user, "t2")) == "t2"
    assert a.kinds(a.made_default(user, "t2")) == ["totp"]


def test_every_change_of_factor_moves_both_epochs_on() -> None:
    user = a.added(UserRecord(epoch=4, device_epoch=2), SETTINGS, NOW, item("totp", "t"))
    assert (user.epoch, user.device_epoch) == (5, 3)
    user = a.added(user, SETTINGS, NOW, item("totp", "t2"))
    removed = a.removed(user, "t")
    assert (removed.epoch, removed.device_epoch) == (user.epoch + 1, user.device_epoch + 1)
    assert [f.id for f in removed.factors()] == ["t2"]
    assert a.default_id(removed) == "t2"


def test_factors_from_before_2fa_was_switched_off_and_on_are_not_kept() -> None:
    user = a.added(UserRecord(), SETTINGS, NOW, item("totp", "old"))
    later = RuntimeSettings(enroll_epoch=1)
    assert not user.enrolled_in(later.enroll_epoch)
    fresh = a.added(user, later, NOW + 1, item("totp", "new"))
    assert [f.id for f in fresh.factors()] == ["new"]
    assert fresh.enrolled_in(1)
    assert fresh.enrolled_at == NOW + 1


def test_the_old_single_factor_record_reads_as_one_authenticator() -> None:
    old = UserRecord(method="sms", phone="+14155552671", enrolled_at=NOW)
    [factor] = old.factors()
    assert (factor.id, factor.kind, factor.destination) == ("legacy", "sms", "+14155552671")
    assert old.enrolled_in(0)
    renamed = a.renamed(old, "legacy", "My phone")
    assert renamed.method is None
    assert renamed.phone is None
    assert [(f.kind, f.name, f.destination) for f in renamed.factors()] == [
        ("sms", "My phone", "+14155552671")
    ]


def test_names_are_cleaned_and_capped() -> None:
    assert a.clean_name("  a\x00b\tc  ") == "a b c"
    assert len(a.clean_name("x" * 100)) == a.MAX_NAME


def test_an_addition_that_raced_this_one_is_named_in_its_own_notice() -> None:
    """Two additions at once (another tab, or someone else holding the session): this one's
    record after its update holds both, and the user is told of each, never of one twice."""
    from mfa_middleware.core.enrollment import enrolled_notices
    from mfa_middleware.core.i18n import untranslated

    before = a.added(UserRecord(), SETTINGS, NOW, item("totp", "t"))
    mine = Authenticator("k1", "webauthn", "Laptop", NOW)
    theirs = Authenticator("k2", "webauthn", "Attacker key", NOW)
    after = a.added(a.added(before, SETTINGS, NOW, theirs), SETTINGS, NOW, mine)
    told = enrolled_notices(False, before, after, untranslated("en"))
    named = " ".join(str(notice.values) for notice in told)
    assert len(told) == 2
    assert "Attacker key" in named
    assert "Laptop" in named
    first_only = enrolled_notices(True, UserRecord(), before, untranslated("en"))
    assert [n.subject for n in first_only] == ["two-step verification turned on"]
