"""`EventSink`: one structured log record per event, and the optional hook (sync or async)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from mfa_middleware.events import EventSink


def mfa_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "mfa_middleware"]


def test_emit_logs_one_record_with_the_event(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mfa_middleware")
    EventSink().emit("forced_logout", {"user": "alice", "actor": "cli:root"})
    [record] = mfa_records(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage() == "forced_logout"
    assert record.mfa_event == {  # type: ignore[attr-defined]
        "event": "forced_logout",
        "user": "alice",
        "actor": "cli:root",
    }


def test_emit_calls_a_sync_hook(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mfa_middleware")
    seen: list[Mapping[str, Any]] = []
    EventSink(seen.append).emit("verify_failed", {"user": "bob", "locked": False})
    assert seen == [{"event": "verify_failed", "user": "bob", "locked": False}]
    assert mfa_records(caplog)[0].mfa_event == seen[0]  # type: ignore[attr-defined]


def test_emit_does_not_change_the_fields_passed_in() -> None:
    fields = {"user": "alice"}
    seen: list[Mapping[str, Any]] = []
    EventSink(seen.append).emit("enrolled", fields)
    assert fields == {"user": "alice"}
    assert seen[0]["event"] == "enrolled"


def test_emit_with_an_async_hook_raises_type_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mfa_middleware")
    pending: list[Any] = []

    async def hook(event: Mapping[str, Any]) -> None:  # pragma: no cover (never awaited)
        pass

    def calling_hook(event: Mapping[str, Any]) -> Any:
        coroutine = hook(event)
        pending.append(coroutine)
        return coroutine

    with pytest.raises(TypeError, match="async on_event hook needs the ASGI middleware"):
        EventSink(calling_hook).emit("signed_out", {"user": "alice"})
    pending[0].close()  # keep "never awaited" out of the test's warnings
    assert [r.mfa_event for r in mfa_records(caplog)] == [  # type: ignore[attr-defined]
        {"event": "signed_out", "user": "alice"}
    ]  # the record was written before the hook was refused


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_emit_with_an_async_def_hook_raises_type_error() -> None:
    async def hook(event: Mapping[str, Any]) -> None:  # pragma: no cover (never awaited)
        pass

    with pytest.raises(TypeError, match="needs the ASGI middleware"):
        EventSink(hook).emit("signed_out", {"user": "alice"})


def test_aemit_awaits_an_async_hook(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mfa_middleware")
    seen: list[Mapping[str, Any]] = []

    async def hook(event: Mapping[str, Any]) -> None:
        await asyncio.sleep(0)
        seen.append(event)

    asyncio.run(EventSink(hook).aemit("enrolled", {"user": "alice", "method": "totp"}))
    assert seen == [{"event": "enrolled", "user": "alice", "method": "totp"}]
    [record] = mfa_records(caplog)
    assert record.mfa_event == seen[0]  # type: ignore[attr-defined]


def test_aemit_calls_a_sync_hook(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mfa_middleware")
    seen: list[Mapping[str, Any]] = []
    asyncio.run(EventSink(seen.append).aemit("mode_changed", {"mode": "off", "previous": None}))
    assert seen == [{"event": "mode_changed", "mode": "off", "previous": None}]
    assert len(mfa_records(caplog)) == 1


def test_aemit_propagates_the_hook_error() -> None:
    async def hook(event: Mapping[str, Any]) -> None:
        raise RuntimeError("the audit sink is down")

    with pytest.raises(RuntimeError, match="audit sink is down"):
        asyncio.run(EventSink(hook).aemit("signed_out", {}))


def test_without_a_hook_only_the_log_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mfa_middleware")
    sink = EventSink()
    sink.emit("a", {})
    asyncio.run(sink.aemit("b", {"x": 1}))
    assert [r.mfa_event for r in mfa_records(caplog)] == [  # type: ignore[attr-defined]
        {"event": "a"},
        {"event": "b", "x": 1},
    ]


def test_nothing_is_logged_below_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mfa_middleware")
    seen: list[Mapping[str, Any]] = []
    EventSink(seen.append).emit("verify_succeeded", {"user": "alice"})
    assert mfa_records(caplog) == []
    assert len(seen) == 1  # the hook still gets every event


def test_listeners_hear_every_event_and_their_failure_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[str] = []

    def broken(event: Mapping[str, Any]) -> None:
        raise RuntimeError("a metrics bug")

    seen: list[Mapping[str, Any]] = []
    sink = EventSink(seen.append, listeners=(broken, lambda e: heard.append(e["event"])))
    sink.emit("locked_out", {"user": "bob"})
    asyncio.run(sink.aemit("unlocked", {"user": "bob"}))
    assert heard == ["locked_out", "unlocked"]
    assert [e["event"] for e in seen] == ["locked_out", "unlocked"]
    assert "an event listener failed on locked_out" in caplog.text


def test_emit_now_hands_an_async_hook_to_the_running_loop() -> None:
    seen: list[Mapping[str, Any]] = []

    async def hook(event: Mapping[str, Any]) -> None:
        seen.append(event)

    async def outage() -> None:
        EventSink(hook).emit_now("store_unavailable", {"where": "page"})
        await asyncio.sleep(0)  # the task runs on the loop

    asyncio.run(outage())
    assert [e["event"] for e in seen] == ["store_unavailable"]
    with pytest.raises(TypeError, match="needs the ASGI middleware"):
        EventSink(hook).emit_now("store_unavailable", {})
