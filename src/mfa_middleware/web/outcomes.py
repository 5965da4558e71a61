"""What the web layer answers an adapter: let the app answer (`Pass`), answer instead of it
(`Answer`), or run a flow first (`Work`); and what a page handler returns (`Reply`)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from mfa_middleware.core.http import Cookie, Response
from mfa_middleware.core.mfa_state import ANONYMOUS_STATE, BYPASS_STATE, MFAState
from mfa_middleware.errors import StoreError

if TYPE_CHECKING:
    from mfa_middleware.core.effects import Effect, Step


@dataclass(frozen=True, slots=True)
class Pass:
    """Let the app answer (adding `cookies` to its response), telling it `mfa` (the adapter
    puts it in `scope["mfa"]`, `environ["mfa"]`, `request.mfa`)."""

    cookies: tuple[Cookie, ...] = ()
    marker: str | None = None  # a new MFA session id to keep in the app's session
    end_app_session: bool = False  # log the user out of the app first
    mfa: MFAState = ANONYMOUS_STATE

    @property
    def plain(self) -> bool:
        """Nothing to do but call the app."""
        return not self.cookies and self.marker is None and not self.end_app_session


PASS = Pass()  # no user signed in to the app
BYPASSED = Pass(mfa=BYPASS_STATE)  # a bypass rule: the session was not looked at


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer with `response` instead of the app."""

    response: Response
    marker: str | None = None
    end_app_session: bool = False


Outcome = Pass | Answer

Reply: TypeAlias = "Answer | Step[Any]"
"""What a page handler returns: the answer, or a core flow to run and what to do with its
result (`Step(flow, then)`, where `then` returns a `Reply` again)."""


@dataclass(frozen=True, slots=True)
class Work:
    """A flow for the adapter's driver (`rt.run(work.flow, work.recover)`); it ends, after
    any steps it returns, in an `Outcome`. `recover` answers a store failure that no flow of
    it handled (a page's "temporarily unavailable")."""

    flow: Generator[Effect, Any, Any]
    recover: Callable[[StoreError], Outcome] | None = None
