"""Records parsed from the store's documents (`core.records`), as the gate's hot-state read
parses them. (They are parsed on every read: a cache shared among equal documents paid about
1.5 µs per gate miss, and a user's document, holding its list of authenticators, cannot be a
key without freezing it, which costs as much as parsing.)"""

from __future__ import annotations

from typing import Any

import pytest

from mfa_middleware.core.effects import Doc
from mfa_middleware.core.records import HotState, RuntimeSettings, UserRecord, load_hot_state

SETTINGS: Doc = RuntimeSettings(mode="required", global_epoch=2).to_doc()
ALICE: Doc = UserRecord(method="totp", totp_secret="ciphertext", epoch=3).to_doc()


def hot_state(settings: Doc | None, user: Doc | None) -> HotState:
    """`load_hot_state` answered with these documents, as a store would hand them out."""
    flow = load_hot_state("alice")
    next(flow)  # the one cached read of settings and user
    with pytest.raises(StopIteration) as done:
        flow.send([settings, user])
    state: HotState = done.value.value
    return state


def test_a_changed_document_is_parsed_anew() -> None:
    first = hot_state(SETTINGS, ALICE).user
    changed = hot_state(SETTINGS, {**ALICE, "epoch": 4}).user
    assert changed.epoch == 4
    assert first.epoch == 3
    assert hot_state(None, None) == HotState(RuntimeSettings(), UserRecord())


def test_values_equal_but_of_another_type_are_another_record() -> None:
    as_int = hot_state(None, {"exempt": 1}).user
    as_bool = hot_state(None, {"exempt": True}).user
    assert as_bool.exempt is True
    assert as_int.exempt == 1
    assert as_int.exempt is not True  # not the record parsed from the other document


@pytest.mark.parametrize("extra", [[1, 2], {"a": 1}])
def test_a_field_of_another_version_is_ignored(extra: Any) -> None:
    doc = {**ALICE, "from_a_newer_version": extra}
    assert hot_state(None, doc).user == UserRecord.from_doc(ALICE)
