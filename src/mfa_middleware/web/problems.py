"""The JSON API's wire format: RFC 9457 problem details for every refusal, and the request
bodies it accepts (a JSON object, each field of a declared type, nothing else).

A problem's `code` is stable (a front end branches on it); `title` and `detail` are in the
user's language and may change wording. `type` is `urn:mfa-middleware:problem:<code>`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mfa_middleware.core.http import Cookie, RequestFacts, Response
from mfa_middleware.web.http import PAGE_HEADERS

PROBLEM_TYPE = "urn:mfa-middleware:problem:"
API_MAX_BODY = 32_768  # a JSON API body: a WebAuthn credential with its attestation fits
PROBLEM_CONTENT_TYPE = "application/problem+json"

FieldType = Literal["string", "boolean", "object"]


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str = "",
    members: Mapping[str, Any] | None = None,
    cookies: Sequence[Cookie] = (),
    extra_headers: Sequence[tuple[str, str]] = (),
) -> Response:
    """One problem: `code` as its type and as a member of its own, `members` beside it."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    body.update(members or {})
    headers = [("content-type", PROBLEM_CONTENT_TYPE), *PAGE_HEADERS, *extra_headers]
    return Response(status, headers, json.dumps(body).encode(), list(cookies))


@dataclass(frozen=True, slots=True)
class Field:
    """One field a request body may carry: its JSON type, whether it must be there, and the
    longest string it may be (a WebAuthn credential is longer than a code)."""

    type: FieldType = "string"
    required: bool = False
    max_length: int = 256


class BodyError(ValueError):
    """A body the API does not accept: `status` and a stable `code` say why."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field


def parse_body(facts: RequestFacts, fields: Mapping[str, Field], limit: int) -> dict[str, str]:
    """The body's fields as the page handlers read a form: strings ("1"/"" for booleans, an
    object as its JSON text). An empty body is an empty object."""
    if len(facts.body) > limit:
        raise BodyError(413, "body_too_large", "The request body is too large.")
    if not facts.body.strip():
        data: Any = {}
    else:
        content_type = facts.header("content-type").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise BodyError(415, "unsupported_media_type", "Send the body as application/json.")
        try:
            data = json.loads(facts.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # deep nesting too
            raise BodyError(400, "bad_json", "The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise BodyError(400, "bad_json", "The body must be a JSON object.")
    form: dict[str, str] = {}
    for name, value in data.items():
        spec = fields.get(name)
        if spec is None:
            raise BodyError(400, "unknown_field", f"{name!r} is not a field of this call.", name)
        form[name] = _as_text(name, value, spec)
    for name, spec in fields.items():
        if spec.required and name not in form:
            raise BodyError(400, "missing_field", f"{name!r} is required.", name)
    return form


def _as_text(name: str, value: Any, spec: Field) -> str:
    if spec.type == "boolean":
        if not isinstance(value, bool):
            raise BodyError(400, "wrong_type", f"{name!r} must be true or false.", name)
        return "1" if value else ""
    if spec.type == "object":
        if not isinstance(value, dict):
            raise BodyError(400, "wrong_type", f"{name!r} must be an object.", name)
        text = json.dumps(value)
    elif isinstance(value, str):
        text = value
    else:
        raise BodyError(400, "wrong_type", f"{name!r} must be a string.", name)
    if len(text) > spec.max_length:
        raise BodyError(400, "too_long", f"{name!r} is too long.", name)
    return text
