"""The JSON API's OpenAPI 3.1 document, built from its table of calls (`web.api.CALLS`), so
what it documents is what the router serves: the paths, their query parameters, each body's
fields and types, the CSRF header, what each call answers, and the problem details every
refusal is."""

from __future__ import annotations

import json
from collections.abc import Mapping
from copy import deepcopy
from functools import cache
from typing import Any

from mfa_middleware.core.http import RequestFacts, Response
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.api import CALLS, CSRF_HEADER, QUERY, SCHEMAS, Call
from mfa_middleware.web.problems import PROBLEM_CONTENT_TYPE, Field

PROBLEM = {"$ref": "#/components/responses/MFAProblem"}
PROBLEM_SCHEMA = {"$ref": "#/components/schemas/MFAProblem"}
JSON_TYPES = {"string": "string", "boolean": "boolean", "object": "object"}


def openapi_response(rt: Runtime, facts: RequestFacts) -> Response:
    body = document(rt.prefix, rt.config.pages.app_name)
    headers = [
        ("content-type", "application/json"),
        ("cache-control", "no-cache"),
        ("x-content-type-options", "nosniff"),
        ("access-control-allow-origin", "*"),  # a description, no credentials: any viewer
    ]
    return Response(200, headers, body)


@cache
def document(prefix: str, app_name: str) -> bytes:
    return json.dumps(build(prefix, app_name), indent=1).encode()


def build(prefix: str, app_name: str) -> dict[str, Any]:
    """The document, a copy of its own: a caller may change it (`include_mfa_api` does), never
    the schemas of `CALLS` it holds."""
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), call in CALLS.items():
        paths.setdefault(prefix + path, {})[method.lower()] = _operation(path, method, call)
    return deepcopy(
        {
            "openapi": "3.1.0",
            "info": {
                "title": f"{app_name}: two-step verification API",
                "version": "1",
                "description": (
                    "The sign-in's second step for single-page apps. Calls are authenticated by"
                    " the app's own login (its session cookie) and the MFA session's cookie, as the"
                    " HTML pages are. Every POST carries the CSRF token of `GET state` in the"
                    f" `{CSRF_HEADER}` header and a JSON body. Refusals are RFC 9457 problem"
                    " details with a stable `code`."
                ),
            },
            "paths": paths,
            "components": {
                "schemas": {"MFAProblem": _problem_schema(), **SCHEMAS},
                "responses": {
                    "MFAProblem": {
                        "description": "A refusal (RFC 9457 problem details)",
                        "content": {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_SCHEMA}},
                    }
                },
                "parameters": {
                    "MFACSRF": {
                        "name": CSRF_HEADER,
                        "in": "header",
                        "required": True,
                        "description": "The session's CSRF token (`csrf_token` of GET state)",
                        "schema": {"type": "string"},
                    }
                },
            },
        }
    )


def _operation(path: str, method: str, call: Call) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": (method.lower() + path.replace("/api", "").replace("/", "_")),
        "summary": call.summary,
        "responses": {
            "200": {
                "description": "Done",
                "content": {"application/json": {"schema": call.returns}},
            },
            "default": PROBLEM,
        },
    }
    query = (*call.query, "next") if call.reads_next else call.query
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": QUERY[name][0],
            "schema": QUERY[name][1],
        }
        for name in query
    ]
    if method == "POST":
        parameters.append({"$ref": "#/components/parameters/MFACSRF"})
        operation["requestBody"] = {
            "required": any(f.required for f in call.fields.values()),
            "content": {"application/json": {"schema": _body_schema(call.fields)}},
        }
    if parameters:
        operation["parameters"] = parameters
    return operation


def _body_schema(fields: Mapping[str, Field]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, spec in fields.items():
        schema: dict[str, Any] = {"type": JSON_TYPES[spec.type]}
        if spec.type == "string":
            schema["maxLength"] = spec.max_length
        properties[name] = schema
    required = [name for name, spec in fields.items() if spec.required]
    body: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        body["required"] = required
    return body


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string", "description": "urn:mfa-middleware:problem:<code>"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string", "description": "Stable: a front end branches on it"},
            "detail": {"type": "string"},
        },
    }
