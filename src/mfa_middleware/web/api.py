"""The JSON API under `<prefix>/api/` for single-page apps: one table of calls, each with the
page state it needs (the same guards as the HTML pages, `web.router`), the fields its body may
carry, and its handler (`web.api_calls`).

Cookie-authenticated, like the pages: a POST carries the session's CSRF token (from
`GET /api/state`) in the `X-CSRF-Token` header, which a cross-site form cannot set, and a
JSON body, which a cross-site form cannot send without a CORS preflight. Every refusal is an
RFC 9457 problem with a stable `code`. `GET /api/openapi.json` describes it all
(`web.openapi`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mfa_middleware.core.i18n import N_
from mfa_middleware.core.redirects import MAX_NEXT_LENGTH
from mfa_middleware.core.tokens import csrf_valid
from mfa_middleware.web import api_calls as calls
from mfa_middleware.web import approval_pages
from mfa_middleware.web.guards import (
    Guard,
    allowed,
    allowed_recent_if_verified,
    anyone,
    challenged,
    code_asked,
    enrolling,
    enrolling_by,
    recent,
    trusting,
    unlocking,
)
from mfa_middleware.web.outcomes import Reply
from mfa_middleware.web.page import Handler, Page
from mfa_middleware.web.problems import API_MAX_BODY as MAX_BODY
from mfa_middleware.web.problems import BodyError, Field, parse_body

OPENAPI = "/api/openapi.json"  # served to anyone: it describes, it holds nothing
CSRF_HEADER = "x-csrf-token"

Schema = Mapping[str, Any]
"""A JSON Schema (OpenAPI 3.1's dialect): what a call answers with its 200."""


@dataclass(frozen=True, slots=True)
class Call:
    """One method of one path: its guard, handler, body fields, what it answers (`returns`)
    and what OpenAPI says."""

    when: Guard
    handler: Handler
    summary: str
    fields: Mapping[str, Field] = field(default_factory=dict)
    query: tuple[str, ...] = ()  # query parameters it reads (`next`: see `reads_next`)
    returns: Schema = field(kw_only=True)

    @property
    def reads_next(self) -> bool:
        """Every guard but `anyone` answers a session in another state with the page the HTML
        flow would show, `next` carried (the `wrong_state` problem's `location`); so does the
        sign-in again after a first enrollment (`relogin_after_enrollment`)."""
        return self.when is not anyone


# -- what the calls answer: JSON Schemas, shared shapes under components/schemas -------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: Mapping[str, Schema], optional: Mapping[str, Schema] | None = None) -> Schema:
    """An object with these members and no other: `required` always there, `optional` maybe."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def one_of(*schemas: Schema) -> Schema:
    return {"oneOf": list(schemas)}


STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
INTEGER: Schema = {"type": "integer"}
TIME: Schema = {"type": "number", "description": "Seconds since the epoch"}
TIME_OR_NULL: Schema = {"type": ["number", "null"], "description": "Seconds since the epoch"}
TRUE: Schema = {"const": True}
STATE: Schema = {
    "enum": ["challenge", "enroll", "done"],
    "description": "What the session needs next",
}
CSRF: Schema = {**STRING, "description": "The new session's CSRF token: send it from now on"}
OPTIONS: Schema = {"type": "object", "description": "WebAuthn options, as JSON for the browser"}
CODES: Schema = {**array(STRING), "description": "Recovery codes, shown once"}

SCHEMAS: dict[str, Schema] = {  # prefixed: an app's document may hold a `Device` of its own
    "MFAState": obj(
        {
            "verified": BOOLEAN,
            "reason": STRING,
            "method": STRING,
            "amr": array(STRING),
            "verified_at": TIME_OR_NULL,
            "age": {"type": ["number", "null"], "description": "Seconds since the last factor"},
            "trusted_device": BOOLEAN,
            "login_at": TIME_OR_NULL,
            "expires_at": TIME_OR_NULL,
            "idle_expires_at": TIME_OR_NULL,
            "impersonator": {"type": ["string", "null"]},
        }
    ),
    "MFADevices": obj(
        {
            "devices": array(
                obj(
                    {
                        "id": STRING,
                        "name": STRING,
                        "current": BOOLEAN,
                        "trusted": BOOLEAN,
                        "last_used": TIME,
                        "created_at": TIME,
                    }
                )
            ),
            "trust_devices": BOOLEAN,
        }
    ),
    "MFAAuthenticators": obj(
        {
            "authenticators": array(
                obj(
                    {
                        "id": STRING,
                        "kind": STRING,
                        "name": STRING,
                        "created_at": TIME,
                        "last_used_at": TIME,
                        "default": BOOLEAN,
                        "destination": {**STRING, "description": "A phone or address, masked"},
                    }
                )
            )
        },
        {"csrf_token": CSRF},  # a removal starts a new session
    ),
    "MFAVerified": obj(
        {"state": {"const": "done"}, "verified": TRUE, "trust_offered": BOOLEAN, "csrf_token": CSRF}
    ),
    "MFACodeSent": obj(
        {"sent": TRUE, "channel": STRING, "fallback": BOOLEAN},
        {"masked": {**STRING, "description": "Where it went, masked"}},
    ),
    "MFAEnrolled": one_of(
        obj(
            {
                "state": {"const": "done"},
                "enrolled": {**STRING, "description": "The method"},
                "recovery_codes": CODES,
                "trust_offered": BOOLEAN,
                "csrf_token": CSRF,
            }
        ),
        obj(  # relogin_after_enrollment: the login is over
            {
                "state": {"const": "login"},
                "enrolled": TRUE,
                "recovery_codes": CODES,
                "location": {**STRING, "description": "Where to sign in again"},
            }
        ),
    ),
}
APPROVAL_STATE: Schema = {"enum": ["pending", "approved", "denied", "none"]}

QUERY: dict[str, tuple[str, Schema]] = {  # what a query parameter means, and its schema
    "method": ("One of the user's `methods` (GET state); else the one to offer", STRING),
    "reauth": ("`1`: a verified user confirming it's them (step-up)", {"enum": ["1"]}),
    "next": (
        "Where the user goes once done: a same-site path (`/reports?id=7`), at most"
        f" {MAX_NEXT_LENGTH} characters. Anything else (another origin, `//host`, a scheme,"
        " a backslash, a control character) is ignored: the site's root instead. It is"
        " carried in the `location` the call may answer (a `wrong_state` problem's page; where"
        " to sign in again after a first enrollment).",
        STRING,
    ),
}


CODE = Field(required=True, max_length=64)
METHOD = Field(max_length=16)
NAME = Field(max_length=80)
CREDENTIAL = Field("object", required=True, max_length=MAX_BODY)

CALLS: dict[tuple[str, str], Call] = {
    ("/api/state", "GET"): Call(
        anyone,
        calls.state_get,
        "What the session needs next, the user's methods, the CSRF token",
        returns=obj(
            {
                "state": STATE,
                "enroll_code_required": BOOLEAN,
                "user": STRING,
                "csrf_token": STRING,
                "methods": array(STRING),
                "method": {"type": ["string", "null"], "description": "The one to offer"},
                "enroll_methods": array(STRING),
                "code_digits": obj({"totp": INTEGER, "sms": INTEGER, "email": INTEGER}),
                "recovery_codes_left": {"type": ["integer", "null"]},
                "trust_devices": BOOLEAN,
                "mfa": ref("MFAState"),
            }
        ),
    ),
    ("/api/challenge", "GET"): Call(
        code_asked,
        calls.challenge_get,
        "Start the second step with a method: a passkey's options, or a code sent",
        query=("method", "reauth"),
        returns=obj(
            {"method": STRING},
            {
                "options": OPTIONS,
                "digits": INTEGER,
                "sent": TRUE,
                "masked": STRING,
                "fallback": BOOLEAN,
            },
        ),
    ),
    ("/api/challenge", "POST"): Call(
        code_asked,
        calls.challenge_post,
        "Answer the second step: a code, or a passkey's assertion",
        {
            "method": METHOD,
            "code": Field(max_length=64),
            "credential": Field("object", max_length=MAX_BODY),
            "reauth": Field("boolean"),
        },
        returns=ref("MFAVerified"),
    ),
    ("/api/challenge/send", "POST"): Call(
        code_asked,
        calls.send_post,
        "Send a new code by SMS or email",
        {"method": METHOD, "reauth": Field("boolean")},
        returns=ref("MFACodeSent"),
    ),
    ("/api/approval", "POST"): Call(
        challenged,
        calls.approval_post,
        "Ask the user's approvers to approve this sign-in: the number they must pick",
        returns=obj(
            {
                "state": APPROVAL_STATE,
                "number": INTEGER,
                "expires_in": INTEGER,
                "sent": {**INTEGER, "description": "To how many approvers"},
            }
        ),
    ),
    ("/api/approval", "GET"): Call(
        challenged,
        approval_pages.status_get,
        "The state of this sign-in's approval request",
        returns=obj({"state": APPROVAL_STATE}, {"number": INTEGER, "expires_in": INTEGER}),
    ),
    ("/api/approval/finish", "POST"): Call(
        challenged,
        calls.approval_finish_post,
        "Sign in once an approver approved (as after a right code)",
        returns=ref("MFAVerified"),
    ),
    ("/api/approvers", "POST"): Call(
        recent(),
        calls.approvers_post,
        "Make this trusted browser an approver (its PushSubscription.toJSON())",
        {"subscription": Field("object", required=True, max_length=4096), "name": NAME},
        returns=obj({"id": STRING, "name": STRING}),
    ),
    ("/api/approve", "GET"): Call(
        allowed,
        calls.approve_get,
        "On an approver: the sign-ins waiting for its answer",
        returns=obj(
            {
                "approvals": array(
                    obj(
                        {
                            "id": STRING,
                            "browser": STRING,
                            "ip": STRING,
                            "created_at": TIME,
                            "expires_in": INTEGER,
                            "choices": array(INTEGER),
                        }
                    )
                )
            }
        ),
    ),
    ("/api/approve", "POST"): Call(
        allowed,
        calls.approve_post,
        'On an approver: pick the number shown at the sign-in, or "deny" ("This wasn\'t me")',
        {"approval": Field(required=True, max_length=64), "choice": Field(max_length=8)},
        returns=obj({"outcome": {"enum": ["approved", "denied"]}}),
    ),
    ("/api/recovery", "POST"): Call(
        challenged,
        calls.recovery_post,
        "Sign in with a recovery code",
        {"code": CODE},
        returns=obj(
            {
                "state": {"const": "done"},
                "verified": TRUE,
                "recovery_codes_left": INTEGER,
                "csrf_token": CSRF,
            }
        ),
    ),
    ("/api/enroll/unlock", "POST"): Call(
        unlocking,
        calls.unlock_post,
        "The enrollment code an administrator's reset asks for first",
        {"code": CODE},
        returns=obj({"state": STATE, "unlocked": TRUE}),
    ),
    ("/api/enroll/totp", "GET"): Call(
        enrolling,
        calls.totp_get,
        "A secret for an authenticator app, its URI and QR code",
        returns=obj(
            {
                "secret": STRING,
                "otpauth_uri": STRING,
                "qr_svg": STRING,
                "qr_data_uri": STRING,
                "digits": INTEGER,
            }
        ),
    ),
    ("/api/enroll/totp", "POST"): Call(
        enrolling,
        calls.totp_post,
        "Confirm the authenticator app with its code",
        {"code": CODE, "name": NAME},
        returns=ref("MFAEnrolled"),
    ),
    ("/api/enroll/passkey", "GET"): Call(
        enrolling_by("webauthn"),
        calls.passkey_get,
        "Options to create a passkey",
        returns=obj({"options": OPTIONS}),
    ),
    ("/api/enroll/passkey", "POST"): Call(
        enrolling_by("webauthn"),
        calls.passkey_post,
        "Add the passkey the browser created",
        {"credential": CREDENTIAL, "name": NAME},
        returns=ref("MFAEnrolled"),
    ),
    ("/api/enroll/sms", "POST"): Call(
        enrolling_by("sms"),
        calls.sms_post,
        "Send a code to a phone number to confirm it",
        {"phone": Field(required=True, max_length=40), "region": Field(max_length=3)},
        returns=ref("MFACodeSent"),
    ),
    ("/api/enroll/email", "POST"): Call(
        enrolling_by("email"),
        calls.email_post,
        "Send a code to an email address to confirm it",
        {"email": Field(max_length=254)},
        returns=ref("MFACodeSent"),
    ),
    ("/api/enroll/code", "POST"): Call(
        enrolling,
        calls.code_post,
        "Confirm the phone number or address with the code sent (or send a new one)",
        {"code": Field(max_length=64), "resend": Field("boolean")},
        returns=one_of(ref("MFAEnrolled"), ref("MFACodeSent")),
    ),
    ("/api/trust", "POST"): Call(
        trusting,
        calls.trust_post,
        "Trust this browser after a code (no code for trust_duration)",
        {"trust": Field("boolean", required=True), "name": NAME},
        returns=obj({"trusted": BOOLEAN}, {"days": INTEGER}),
    ),
    ("/api/devices", "GET"): Call(
        allowed, calls.devices_get, "The user's devices", returns=ref("MFADevices")
    ),
    ("/api/devices", "POST"): Call(
        allowed,
        calls.devices_post,
        "Rename, trust or delete one of the user's devices",
        {
            "device": Field(required=True, max_length=64),
            "action": Field(required=True, max_length=16),
            "name": NAME,
        },
        returns=ref("MFADevices"),
    ),
    ("/api/authenticators", "GET"): Call(
        recent(),
        calls.authenticators_get,
        "The user's ways to sign in (a recent code first)",
        returns=ref("MFAAuthenticators"),
    ),
    ("/api/authenticators", "POST"): Call(
        recent(),
        calls.authenticators_post,
        "Rename one, make it the default, or remove it (never the last one)",
        {
            "authenticator": Field(required=True, max_length=64),
            "action": Field(required=True, max_length=16),
            "name": NAME,
        },
        returns=ref("MFAAuthenticators"),
    ),
    ("/api/lost", "POST"): Call(
        challenged,
        calls.lost_post,
        'Email a link to turn 2FA off ("I can\'t use my device")',
        returns=obj({"sent": BOOLEAN}),
    ),
    ("/api/disable", "POST"): Call(
        recent(),
        calls.disable_post,
        "Turn 2FA off (a recent code first)",
        returns=obj({"disabled": TRUE, "csrf_token": CSRF}),
    ),
    ("/api/recovery/regenerate", "POST"): Call(
        recent(),
        calls.regenerate_post,
        "A new set of recovery codes (the old ones stop working)",
        returns=obj({"recovery_codes": CODES}),
    ),
    ("/api/sessions/others", "POST"): Call(
        allowed_recent_if_verified("settings"),
        calls.end_others_post,
        "Sign out every other session of this user",
        returns=obj({"ended_others": TRUE, "csrf_token": CSRF}),
    ),
    ("/api/logout", "POST"): Call(
        anyone,
        calls.logout_post,
        "Sign out (the app's login too)",
        returns=obj({"state": {"const": "login"}, "location": STRING}),
    ),
}

PATHS = frozenset(path for path, _ in CALLS)


def dispatch(page: Page, sub: str, method: str) -> Reply:
    """One call under `/api/`: 404, 405, the body and CSRF checks, the state, the handler."""
    page.api = True
    call = CALLS.get((sub, method))
    if call is None:
        if sub in PATHS:
            return page.problem(
                405, "method_not_allowed", N_("Method not allowed"), N_("There is nothing here.")
            )
        return page.problem(404, "not_found", N_("Not found"), N_("There is nothing here."))
    if method == "POST":
        if not csrf_valid(
            page.rt.keyring, page.view.claims.session_id, page.facts.header(CSRF_HEADER)
        ):
            return page.problem(
                403,
                "csrf_failed",
                N_("Request refused"),
                N_("Send the session's CSRF token (GET /api/state) in the X-CSRF-Token header."),
            )
        try:
            page.form = parse_body(page.facts, call.fields, MAX_BODY)
        except BodyError as exc:
            if exc.field is None:
                return page.problem(exc.status, exc.code, N_("Bad request"), str(exc))
            return page.problem(exc.status, exc.code, N_("Bad request"), str(exc), field=exc.field)
    return call.when(page, lambda: call.handler(page))
