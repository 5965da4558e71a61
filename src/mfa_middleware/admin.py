"""The ops API: the same operations the CLI, the Django command and the admin pages offer.

`Admin` runs the flows of `core.ops` synchronously against a runtime's store; every change
reaches every worker on its next request (epochs and runtime settings live in the store).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

from mfa_middleware.config import parse_duration
from mfa_middleware.core import audit, devices, directory, enroll_code, ops
from mfa_middleware.core.effects import Effect, annotated, get
from mfa_middleware.core.policy import effective
from mfa_middleware.core.records import load_hot_state, user_key
from mfa_middleware.runtime import Runtime

T = TypeVar("T")


class AmbiguousName(ValueError):
    """Several users answer to a name: the operator says which by user id."""

    def __init__(self, name: str, ids: list[str]) -> None:
        super().__init__(
            f"several users are called {name!r}: say which by user id ({', '.join(ids)})"
        )
        self.ids = ids


class Admin:
    """The operations, as `actor` ("cli:root", "admin:42"); `ip`: where the administrator acts
    from (the Django admin's actions), added to every event of theirs."""

    def __init__(self, runtime: Runtime, actor: str, *, ip: str | None = None) -> None:
        self.runtime = runtime
        self.actor = actor
        self.ip = ip

    def _run(self, flow: Generator[Effect, Any, T]) -> T:
        return self.runtime.run(flow if self.ip is None else annotated(flow, ip=self.ip))

    def known(self, user_id: str) -> bool:
        """Whether the store holds any 2FA record for this user."""
        return self._run(get(user_key(user_id))) is not None

    def resolve(self, name: str) -> str | None:
        """The user id an operator means by `name`: a user id the store knows, else the one
        user whose name, login name or address of record it is (see `core.directory`).
        Raises ValueError when several users answer to it."""
        found = self._run(ops.find_user(name))
        if len(found) > 1 and found[0] != name:
            raise AmbiguousName(name, found)
        return found[0] if found else None

    def known_as(self, user_id: str, name: str) -> None:
        """The operator named `user_id` by `name` (`manage.py mfa` by the Django username):
        listed under it until the user's next browser login says more."""
        self._run(directory.ensure(user_id, name))

    def mode(self) -> str:
        """The mode in force: the runtime setting, else the configuration's."""
        state = self._run(load_hot_state(""))
        return effective(state.settings, self.runtime.defaults).mode

    def status(self, user_id: str) -> ops.UserStatus:
        rt = self.runtime
        return self._run(ops.user_status(user_id, rt.clock(), rt.limits))

    def list_users(self, wanted: ops.UserFilter) -> ops.Listing:
        """The users the middleware has seen that `wanted` keeps, ordered by name."""
        rt = self.runtime
        return self._run(ops.list_users(wanted, rt.clock(), rt.limits))

    def events(self, user_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The user's recent events (`events_kept` of them at most), newest first."""
        return self._run(audit.recent(user_id, limit))

    def logout(self, user_id: str, *, revoke_devices: bool = False) -> None:
        self._run(ops.force_logout(user_id, self.actor, revoke_devices=revoke_devices))

    def unlock(self, user_id: str) -> bool:
        """Lift the user's lockout after wrong codes; False when they were not locked out and
        had no wrong codes counted."""
        return self._run(ops.unlock(user_id, self.actor))

    def logout_all(self, *, revoke_devices: bool = False) -> None:
        self._run(ops.logout_everyone(self.actor, revoke_devices=revoke_devices))

    def exempt(self, user_id: str, exempt: bool = True, *, browser: bool = False) -> None:
        """Exempt the user's API calls (and, with `browser`, their browser logins) from 2FA."""
        self._run(ops.set_exempt(user_id, exempt, self.actor, browser=browser))

    def require(self, user_id: str, required: bool = True) -> None:
        self._run(ops.set_required(user_id, required, self.actor))

    def devices(self, user_id: str) -> list[dict[str, Any]]:
        """A user's devices, most recently used first, as plain data."""
        now = self.runtime.clock()
        state = self._run(load_hot_state(user_id))
        rows = self._run(devices.devices_of(user_id))
        return [
            {
                "device": device_id,
                "name": record.name,
                "created_at": record.created_at,
                "last_used": record.last_used,
                "last_ip": record.last_ip,
                "trusted": record.trusted(now, state.user, state.settings),
            }
            for device_id, record in rows
        ]

    def revoke_device(self, user_id: str, device_id: str) -> bool:
        """Delete one device: it is no longer trusted; False when there is no such device."""
        return self._run(devices.forget(user_id, device_id, self.actor))

    def remove_authenticator(self, user_id: str, authenticator_id: str) -> str:
        """Remove one of the user's authenticators (ids as `status` lists them); "" when done,
        else why not ("not_found", "last_one")."""
        changed = self._run(ops.remove_authenticator(user_id, authenticator_id, self.actor))
        return "" if changed.ok else changed.reason

    def reset(
        self, user_id: str, *, email: str | None = None, by: str = ""
    ) -> enroll_code.AdminReset:
        """Forget this user's 2FA (only theirs): they enroll again at their next login, first
        entering the enrollment code returned here (unless `enroll_code_ttl` is None). The
        user is told by email, with the code, at `email` (the app's address of record), else
        at the address of record the app gave at their last login (`core.directory`)."""
        rt = self.runtime
        if email is None and "email" in rt.delivery.channels():
            seen = self._run(directory.entry(user_id))
            email = seen.email if seen is not None and seen.email else None
        flow = enroll_code.reset_by_admin(
            user_id,
            self.actor,
            rt.clock(),
            rt.keyring,
            ttl=rt.config.recovery.enroll_code_ttl,
            email=email,
            by=by,
            app_name=rt.config.pages.app_name,
            texts=rt.languages.texts,
        )
        return self._run(flow)

    def set_mode(self, mode: str) -> None:
        self._run(ops.set_mode(mode, self.runtime.defaults, self.actor))

    def set_session_lifetime(self, duration: str) -> float:
        seconds = parse_duration("session_lifetime", duration)
        assert seconds is not None
        self._run(ops.set_session_lifetime(seconds, self.actor))
        return seconds
