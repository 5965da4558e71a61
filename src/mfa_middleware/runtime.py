"""Everything built once from an `MFAConfig` and shared by the adapters (ASGI, WSGI, Django)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from mfa_middleware.config import MFAConfig
from mfa_middleware.core.audit import appended, events_key, stamp, targets
from mfa_middleware.core.bounded import Bounded
from mfa_middleware.core.context import Params
from mfa_middleware.core.devices import DeviceCodec, DeviceCookie
from mfa_middleware.core.effects import Effect
from mfa_middleware.core.http import Cookie, RequestFacts, clear_cookie, set_cookie
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.policy import Effective, PolicyDefaults
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.tokens import SessionClaims, UserTagger, new_id, session_codec
from mfa_middleware.drivers import run_async, run_sync
from mfa_middleware.errors import StoreError
from mfa_middleware.events import EventSink, logger
from mfa_middleware.i18n import Languages, Texts
from mfa_middleware.render import Renderer
from mfa_middleware.senders.delivery import Delivery
from mfa_middleware.senders.webpush import WebPushSender
from mfa_middleware.stores.base import Store
from mfa_middleware.stores.sqlite import SQLiteStore

DEFAULT_SQLITE_PATH = "mfa.sqlite3"
METHOD_COOKIE = "mfa_method"
METHOD_COOKIE_AGE = 400 * 86400  # the longest a browser keeps a cookie (RFC 6265bis)
MEMO_LIMIT = 50_000  # per generation of the bounded memo
T = TypeVar("T")


class StoreJournal:
    """Keeps each event about a user in that user's record of recent events (`core.audit`):
    one atomic update per user named. A store failure is logged and the event goes on to
    the log and the hook: keeping it must never undo what it reports."""

    def __init__(self, store: Store, keep: int) -> None:
        self.store = store
        self.keep = keep

    UNKEPT = frozenset({"store_unavailable"})  # the store just failed: do not wait on it again

    def record(self, event: Mapping[str, Any]) -> None:
        if event.get("event") in self.UNKEPT:
            return
        for user_id in targets(event):
            try:
                self.store.update(events_key(user_id), appended(event, self.keep))
            except StoreError as exc:
                logger.warning("event %s not kept for its user: %s", event.get("event"), exc)

    async def arecord(self, event: Mapping[str, Any]) -> None:
        if event.get("event") in self.UNKEPT:
            return
        for user_id in targets(event):
            try:
                await self.store.aupdate(events_key(user_id), appended(event, self.keep))
            except StoreError as exc:
                logger.warning("event %s not kept for its user: %s", event.get("event"), exc)


class Runtime:
    """What the adapters share, built once from an `MFAConfig`: the store, the keys and the
    codecs made from them, the senders, the event sink, the renderer, and the configuration's
    parts under short names (`rt.totp`, `rt.limits`, `rt.codes`, `rt.sessions`, ...)."""

    def __init__(self, config: MFAConfig) -> None:
        self.config = config
        self.clock = config.clock
        self.store: Store = config.store or SQLiteStore(DEFAULT_SQLITE_PATH)
        self.store.use_clock(config.clock)
        self.keyring = Keyring(config.keys)
        self.sessions = session_codec(self.keyring)
        self.user_tag = UserTagger(self.keyring)
        self.login_tag = UserTagger(self.keyring, "mfa.login-tag.v1")
        self.session_tag = UserTagger(self.keyring, "mfa.session-hash.v1")  # names a session
        kept = config.audit.events_kept
        journal = StoreJournal(self.store, kept) if kept else None
        self.events = EventSink(
            config.on_event,
            stamp=stamp,
            clock=config.clock,
            journal=journal,
            listeners=config.audit.listeners,
        )
        pages = config.pages
        self.languages = Languages(pages.default_locale, pages.locales, pages.locale_dirs)
        # the memo of verified requests (web.memo): bounded, about 100,000 sessions at most
        self.verified_memo: Bounded[tuple[str, str | None, str], tuple[int, float, Any]] = Bounded(
            MEMO_LIMIT
        )  # key -> (store generation, valid until, the gate's web.outcomes.Pass)
        codes = config.codes
        push = config.push
        pusher = None if push is None else WebPushSender(push.private_key, push.contact)
        self.delivery = Delivery(sms=codes.sms_sender, email=codes.email_sender, push=pusher)
        # channels offered as a second factor (an email sender alone only sends notices)
        self.code_channels = [c for c in self.delivery.channels() if c not in ("email", "push")]
        if codes.email_codes:
            self.code_channels.append("email")
        self.trust_seconds = config.devices.trust_seconds
        session = config.sessions
        self.devices = DeviceCodec(self.keyring, max(self.trust_seconds, session.lifetime))
        self.device_cookie_name = session.device_cookie_name
        self.cookie_name = session.cookie_name
        self.prefix = pages.prefix
        self.totp = config.totp
        self.limits = config.attempts
        self.oob = codes.params
        self.params = Params(
            self.keyring,
            self.totp,
            self.limits,
            self.oob,
            app_name=pages.app_name,
            code_channels=tuple(self.code_channels),
            notices="email" in self.delivery.channels(),
            recovery_count=config.recovery.code_count,
            texts=self.languages.texts,
            webauthn=config.webauthn,
            sms_fallback=codes.sms_fallback,
            push=None if push is None else push.settings,
        )
        # what a user may enroll, in the order the chooser offers it
        passkeys = ["webauthn"] if config.webauthn is not None else []
        self.enroll_methods = (*passkeys, "totp", *self.code_channels)
        self.defaults = PolicyDefaults(
            mode=session.mode,
            session_lifetime=session.lifetime,
            idle_timeout=session.idle_timeout,
        )
        self.renderer = Renderer(
            pages.template_dir,
            {
                "app_name": pages.app_name,
                "prefix": pages.prefix,
                "code_digits": max(config.totp.digits, codes.params.digits),
                "logo_url": pages.logo_url,
            },
            brand_color=pages.brand_color,
        )

    def run(
        self,
        flow: Generator[Effect, Any, T],
        recover: Callable[[StoreError], T] | None = None,
    ) -> T:
        """Carry out a flow (and the steps it returns) synchronously (WSGI, Django, the CLI);
        `recover` answers a store failure the flows did not handle."""
        return run_sync(flow, self.store, self.events, self.delivery, recover)

    async def arun(
        self,
        flow: Generator[Effect, Any, T],
        recover: Callable[[StoreError], T] | None = None,
    ) -> T:
        """Carry out a flow on the event loop (ASGI, async Django); the store runs whatever
        may wait off the loop (`Store.off_loop`), so other requests go on meanwhile."""
        return await run_async(flow, self.store, self.events, self.delivery, recover)

    def locale_of(self, facts: RequestFacts, principal: Principal | None) -> str:
        """The language of a page: the user's (the app's `locale` callable), else the one the
        app chose for this request (Django's active language, the `mfa_middleware.language`
        scope or environ key), else the browser's (Accept-Language), else the default. Asked
        only where a page or message is rendered, never on the verified-request path."""
        pick = self.config.pages.locale
        users = pick(facts, principal) if pick is not None and principal is not None else None
        return self.languages.choose(users, facts.language, facts.header("accept-language"))

    def texts(self, facts: RequestFacts, principal: Principal | None) -> Texts:
        return self.languages.texts(self.locale_of(facts, principal))

    def url(self, page: str) -> str:
        return f"{self.prefix}/{page}"

    def method_cookie(self, kind: str) -> Cookie:
        """Which kind of authenticator this browser used last (the challenge opens on it next
        time). Not a secret: a forged value only changes which method is offered first."""
        return set_cookie(
            METHOD_COOKIE,
            kind,
            max_age=METHOD_COOKIE_AGE,
            secure=self.config.sessions.cookie_secure,
            samesite=self.config.sessions.cookie_samesite,
        )

    def session_cookie(self, claims: SessionClaims, eff: Effective) -> Cookie:
        remaining = int(claims.login_at + eff.session_lifetime - self.clock())
        return set_cookie(
            self.cookie_name,
            self.sessions.encode(claims),
            max_age=max(remaining, 1),
            secure=self.config.sessions.cookie_secure,
            samesite=self.config.sessions.cookie_samesite,
        )

    def device_cookie(self, device_id: str, user_tag: str) -> Cookie:
        token = self.devices.encode(DeviceCookie(device_id, user_tag))
        return set_cookie(
            self.device_cookie_name,
            token,
            max_age=int(self.devices.max_age),
            secure=self.config.sessions.cookie_secure,
            samesite=self.config.sessions.cookie_samesite,
        )

    def clear_session_cookie(self) -> Cookie:
        return clear_cookie(
            self.cookie_name,
            secure=self.config.sessions.cookie_secure,
            samesite=self.config.sessions.cookie_samesite,
        )

    def upgraded(self, claims: SessionClaims, *, epoch: int, method: str) -> SessionClaims:
        """A new session id for the verified session: never keep one from before the step."""
        now = int(self.clock())
        return replace(
            claims, session_id=new_id(), verified_at=now, active_at=now, epoch=epoch, method=method
        )
