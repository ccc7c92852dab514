"""Positions: an interview template (config/templates.py) with an id and a version history.
Editing a position's template makes a new version; interviews keep the version they were created with."""
from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from config.templates import (GREETING_PLACEHOLDERS, HANDOFF_POLICIES, MAX_FACTORS, MAX_JOB_FACTS, MAX_QUESTIONS,
                              MAX_TEXT_CHARS, InterviewTemplate, TemplateError, load_template_text, parse_template)
from models.validation import RuleViolation
from server.http import (FILE_REFUSED, ApiError, Route, camel, camel_path, file_content_rules, json_response, page_response, paging,
                         query_int, read_json, store_of)
from server.api.schemas import (COMPONENTS, ERROR_REF, PAGE_PARAMETERS, SPACE, VISIBLE, json_body, json_ok, page_of,
                            path_id, ref)

BASE = "/api/v1/positions"
TOML_TYPES = ("application/toml", "text/plain")


def _template_from_json(body: dict[str, Any]) -> InterviewTemplate:
    try:
        return parse_template(body, "<api>")
    except TemplateError as exc:
        # Rules no OpenAPI 3.0 schema states: uniqueness across items, and job-fact topics (its schema objects
        # have no propertyNames), so a schema-valid body may still break them: 422, not 400.
        if exc.message.startswith(("duplicate factor name", "a topic must be")):
            raise RuleViolation(exc.message, camel_path(exc.field)) from None
        message = exc.message
        if message.startswith("unknown field"):  # it quotes field names ('max_follow_ups'): use the API's
            message = re.sub(r"'(\w+)'", lambda m: repr(camel(m.group(1))), message)
        raise ApiError(400, "invalid_field", message, camel_path(exc.field)) from None


def _include_archived(request: web.Request) -> bool:
    raw = request.query.get("includeArchived", "false")
    if raw not in ("true", "false"):
        raise ApiError(400, "invalid_parameter", "includeArchived must be true or false", "includeArchived")
    return raw == "true"


async def list_positions(request: web.Request) -> web.Response:
    page, page_size = paging(request)
    items, total = store_of(request).list_positions(page=page, page_size=page_size,
                                                    include_archived=_include_archived(request))
    return page_response(items, total, page, page_size)


async def create_position(request: web.Request) -> web.Response:
    template = _template_from_json(await read_json(request))
    return json_response(store_of(request).create_position(template), status=201)


async def import_position(request: web.Request) -> web.Response:
    if request.content_type not in TOML_TYPES:
        raise ApiError(415, "unsupported_media_type",
                       f"send the template as TOML text with Content-Type {' or '.join(TOML_TYPES)}")
    raw = await request.read()
    with file_content_rules(None):  # errors name fields as the file spells them, e.g. factors[1].max_follow_ups
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RuleViolation(f"the template is not UTF-8 text (byte {exc.start})") from None
        template = load_template_text(text, "<api>")
    return json_response(store_of(request).create_position(template), status=201)


async def get_position(request: web.Request) -> web.Response:
    version = query_int(request, "version", 1, 1, 1_000_000) if "version" in request.query else None
    include_archived = _include_archived(request)
    position = store_of(request).get_position(request.match_info["id"], version)
    if position.archived_at and not include_archived:  # gone, as the list says, unless asked for
        raise ApiError(410, "archived", f"position {position.id!r} is archived; add includeArchived=true to read it")
    return json_response(position)


async def update_position(request: web.Request) -> web.Response:
    template = _template_from_json(await read_json(request))
    return json_response(store_of(request).update_position(request.match_info["id"], template))


async def archive_position(request: web.Request) -> web.Response:
    return json_response(store_of(request).archive_position(request.match_info["id"]))


# -- OpenAPI schemas: they state what config/templates.py accepts -------------------------------------------
# A spoken text: at most MAX_TEXT_CHARS, and not only whitespace.
_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS, "pattern": VISIBLE}


def _greeting_pattern(placeholders: frozenset[str]) -> str:
    """Not only whitespace; braces only in these placeholders or doubled ({{ and }} are literal braces)."""
    token = "|".join(re.escape("{" + name + "}") for name in sorted(placeholders)) + r"|\{\{|\}\}"
    return rf"^[{SPACE}]*(?:[^{SPACE}{{}}]|{token})(?:[^{{}}]|{token})*$"


def _seconds(low: int, high: int, default: int, description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high, "default": default, "description": description}


COMPONENTS["schemas"]["Template"] = {
    "type": "object", "additionalProperties": False,
    "required": ["title", "language", "greeting", "consent", "closing", "factors"],
    "description": "An interview template, the JSON form of a template TOML file. Texts are spoken by "
                   "text-to-speech; leading and trailing whitespace is removed.",
    "properties": {
        "title": _TEXT,
        "language": {"type": "string", "maxLength": MAX_TEXT_CHARS, "example": "en-US",
                     "pattern": rf"^[{SPACE}]*[A-Za-z]{{2,3}}(?:-(?:[A-Za-z]{{2}}|[0-9]{{3}}))?[{SPACE}]*$"},
        "greeting": {**_TEXT, "pattern": _greeting_pattern(GREETING_PLACEHOLDERS),
                     "description": "May use the placeholders {candidate_name} and {company} (then company must "
                                    "be set); write a literal brace as {{ or }}."},
        "consent": _TEXT,
        "closing": _TEXT,
        "company": {"type": "string", "maxLength": MAX_TEXT_CHARS, "default": ""},
        "maxDurationS": _seconds(60, 3600, 900, "Hard limit of the whole call."),
        "inactivityTimeoutS": _seconds(10, 1800, 120, "Hang up after this much total silence."),
        "silenceRepromptS": _seconds(2, 60, 8, "Re-prompt after a pause this long."),
        "factors": {"type": "array", "minItems": 1, "maxItems": MAX_FACTORS, "items": ref("Factor"),
                    "description": "Factor names must differ (ignoring case)."},
        "handoff": {"type": "string", "enum": list(HANDOFF_POLICIES), "default": "transfer",
                    "description": "A candidate who asks for a person: transfer (put through to a recruiter "
                                   "within the recruiters' hours of the server's handoff settings, else a "
                                   "callback) or callback (always a recruiter's callback)."},
        "jobFacts": {"type": "object", "maxProperties": MAX_JOB_FACTS,
                     "propertyNames": {"pattern": VISIBLE},
                     "additionalProperties": {**_TEXT},
                     "description": "What the interviewer may tell a candidate who asks about the job: topic -> "
                                    "the spoken answer (matched to the question by meaning). Other questions are "
                                    "left to the recruiter."},
    },
    # A greeting that says {company} needs a company to say.
    "anyOf": [{"properties": {"greeting": {"pattern": _greeting_pattern(GREETING_PLACEHOLDERS - {"company"})}}},
              {"required": ["company"], "properties": {"company": {"pattern": VISIBLE}}}],
}
COMPONENTS["schemas"]["Factor"] = {
    "type": "object", "additionalProperties": False,
    "required": ["name", "weight", "description", "questions", "anchors"],
    "properties": {
        "name": _TEXT,
        "weight": {"type": "number", "minimum": 0, "exclusiveMinimum": True,
                   "description": "Relative weight; the weights are normalized to sum to 1."},
        "description": _TEXT,
        "questions": {"type": "array", "minItems": 1, "maxItems": MAX_QUESTIONS, "items": _TEXT},
        "anchors": {"type": "object", "additionalProperties": False, "required": ["weak", "adequate", "strong"],
                    "properties": {"weak": _TEXT, "adequate": _TEXT, "strong": _TEXT}},
        "maxFollowUps": {"type": "integer", "minimum": 0, "maximum": 3, "default": 1},
    },
}
_TIMESTAMP = {"type": "string", "format": "date-time"}
COMPONENTS["schemas"]["Position"] = {
    "type": "object",
    "required": ["id", "version", "rubricVersion", "createdAt", "updatedAt", "archivedAt", "template"],
    "properties": {
        "id": {"type": "string"},
        "version": {"type": "integer", "minimum": 1, "description": "Incremented by each change of the template."},
        "rubricVersion": {"type": "string", "description": "Fingerprint of the template, stored with scorecards."},
        "createdAt": _TIMESTAMP,
        "updatedAt": _TIMESTAMP,
        "archivedAt": {**_TIMESTAMP, "nullable": True},
        "template": ref("Template"),
    },
}

_POSITION = json_ok(ref("Position"))
_NOT_FOUND = {"404": ERROR_REF}
_TEMPLATE_BODY = json_body(ref("Template"))
_INCLUDE_ARCHIVED = {"name": "includeArchived", "in": "query", "schema": {"type": "boolean", "default": False}}
_DUPLICATE_NAMES = "422: two factors have the same name (ignoring case)."

ROUTES: list[Route] = [
    Route("GET", BASE, list_positions, "positions:read", {
        "summary": "List positions", "operationId": "listPositions",
        "parameters": [*PAGE_PARAMETERS, _INCLUDE_ARCHIVED],
        "responses": {"200": json_ok(page_of("Position"))}}),
    Route("POST", BASE, create_position, "positions:write", {
        "summary": "Create a position from a template", "operationId": "createPosition",
        "requestBody": _TEMPLATE_BODY, "description": _DUPLICATE_NAMES,
        "responses": {"201": json_ok(ref("Position"), "Created"), "413": ERROR_REF, "422": ERROR_REF}}),
    Route("POST", f"{BASE}/import", import_position, "positions:write", {
        "summary": "Create a position from a template TOML file", "operationId": "importPosition",
        "description": "The body is the text of a template file such as config/templates/call_center_support.toml."
                       " Errors name the field as the file spells it (snake_case).",
        "requestBody": {"required": True, "content": {media: {"schema": {"type": "string"}} for media in TOML_TYPES}},
        "responses": {"201": json_ok(ref("Position"), "Created"), "413": ERROR_REF, "415": ERROR_REF,
                      "422": {**ERROR_REF, "description": FILE_REFUSED}}}),
    Route("GET", f"{BASE}/{{id}}", get_position, "positions:read", {
        "summary": "Get a position (optionally an older version)", "operationId": "getPosition",
        "description": "An archived position answers 410 unless includeArchived=true (its interviews still "
                       "refer to it).",
        "parameters": [path_id(), {"name": "version", "in": "query",
                                   "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000}},
                       _INCLUDE_ARCHIVED],
        "responses": {"200": _POSITION, **_NOT_FOUND, "410": ERROR_REF}}),
    Route("PUT", f"{BASE}/{{id}}", update_position, "positions:write", {
        "summary": "Replace a position's template (a changed template is a new version)",
        "operationId": "updatePosition", "parameters": [path_id()], "requestBody": _TEMPLATE_BODY,
        "description": "409: the position is archived. " + _DUPLICATE_NAMES,
        "responses": {"200": _POSITION, **_NOT_FOUND, "409": ERROR_REF, "413": ERROR_REF, "422": ERROR_REF}}),
    Route("DELETE", f"{BASE}/{{id}}", archive_position, "positions:write", {
        "summary": "Archive a position (it is kept for its interviews)", "operationId": "archivePosition",
        "description": "Afterwards the position is left out of lists and GET answers 410 unless "
                       "includeArchived=true; archiving again answers 200.",
        "parameters": [path_id()], "responses": {"200": _POSITION, **_NOT_FOUND}}),
]
