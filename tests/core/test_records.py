"""Records parsed from the store's documents (`core.records`): the gate's hot-state read shares
one parsed record among equal documents, in a bounded cache keyed by the documents' values."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mfa_middleware.core import records
from mfa_middleware.core.bounded import Bounded
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


def test_equal_documents_share_one_parsed_record() -> None:
    first = hot_state(copy.deepcopy(SETTINGS), copy.deepcopy(ALICE))
    # a store without a cache of its own (Redis) parses a new document object on every read
    again = hot_state(copy.deepcopy(SETTINGS), copy.deepcopy(ALICE))
    assert again.user is first.user
    assert again.settings is first.settings
    assert first.user == UserRecord.from_doc(ALICE)
    assert first.settings == RuntimeSettings.from_doc(SETTINGS)


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
def test_a_document_that_cannot_be_a_key_is_still_parsed(extra: Any) -> None:
    doc = {**ALICE, "from_a_newer_version": extra}
    assert hot_state(None, doc).user == UserRecord.from_doc(ALICE)


def test_the_cache_is_bounded_and_keeps_the_latest_documents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit = 8
    monkeypatch.setattr(records, "_PARSED", Bounded(limit))
    docs = [{**ALICE, "epoch": n} for n in range(6 * limit + 2)]
    parsed = [hot_state(None, doc).user for doc in docs]
    assert len(records._PARSED) <= 2 * limit
    # the latest `limit` documents, read again as new objects, find their records
    latest = [hot_state(None, copy.deepcopy(doc)).user for doc in docs[-limit:]]
    assert all(a is b for a, b in zip(latest, parsed[-limit:], strict=True))
    assert hot_state(None, copy.deepcopy(docs[0])).user is not parsed[0]  # evicted long ago
