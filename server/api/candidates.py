"""Candidates: the people to interview. POST is idempotent (an existing candidate with the same externalId,
else the same phone, is replaced instead of duplicated), and so is the CSV bulk upload."""
from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from aiohttp import BodyPartReader, web

from models.candidate_csv import decode_csv, import_candidates
from models.validation import (CANDIDATE_FIELDS, MAX_METADATA_KEYS, MAX_TAGS, ValidationError,
                               clean_candidate)
from server.http import (FILE_REFUSED, SETTINGS, ApiError, Route, camel_path, file_content_rules, json_response,
                         page_response, paging, read_json, reject_unknown, store_of)
from server.api.schemas import (COMPONENTS, ERROR_REF, PAGE_PARAMETERS, PHONE_PATTERN, SPACE, VISIBLE, json_body,
                            json_ok, page_of, path_id, ref)

BASE = "/api/v1/candidates"
CSV_TYPE = "text/csv"
MULTIPART_TYPE = "multipart/form-data"


def _default_timezone(request: web.Request) -> str:
    return request.app[SETTINGS].interviews.default_timezone


async def _clean_body(request: web.Request, *, partial: bool) -> dict[str, Any]:
    body = await read_json(request)
    reject_unknown(body, set(CANDIDATE_FIELDS))
    try:
        return clean_candidate(body, partial=partial, default_timezone=_default_timezone(request))
    except ValidationError as exc:
        raise type(exc)(exc.message, camel_path(exc.field)) from None


async def list_candidates(request: web.Request) -> web.Response:
    page, page_size = paging(request)
    items, total = store_of(request).list_candidates(page=page, page_size=page_size, tag=request.query.get("tag"),
                                                     external_id=request.query.get("externalId"))
    return page_response(items, total, page, page_size)


async def create_candidate(request: web.Request) -> web.Response:
    candidate, created = store_of(request).upsert_candidate(await _clean_body(request, partial=False))
    return json_response(candidate, status=201 if created else 200)


async def get_candidate(request: web.Request) -> web.Response:
    return json_response(store_of(request).get_candidate(request.match_info["id"]))


async def update_candidate(request: web.Request) -> web.Response:
    fields = await _clean_body(request, partial=True)
    return json_response(store_of(request).update_candidate(request.match_info["id"], fields))


async def delete_candidate(request: web.Request) -> web.Response:
    """Erasure: the candidate's personal data, interviews, transcripts, scorecards and recording files go
    everywhere; an anonymous `candidate.erased` event stays (server/erasure.py)."""
    from server.erasure import erase_candidate
    erase_candidate(store_of(request), request.match_info["id"], request.app[SETTINGS].store.recordings_dir)
    return web.Response(status=204)


async def _uploaded_csv(request: web.Request) -> bytes:
    """The CSV bytes of a text/csv body or of the multipart field "file" (both bounded by max_body_bytes)."""
    if request.content_type == CSV_TYPE:
        return await request.read()
    if request.content_type != MULTIPART_TYPE:
        raise ApiError(415, "unsupported_media_type",
                       f"send the CSV as the body with Content-Type {CSV_TYPE}, or as the field 'file' of a "
                       f"{MULTIPART_TYPE} upload")
    try:
        upload = await _multipart_file(request)
    except (web.HTTPException, ApiError):
        raise
    except Exception:  # aiohttp's multipart parser raises several exception types for malformed input
        raise ApiError(400, "invalid_body", "the multipart/form-data body is malformed", "file") from None
    if upload is None:
        raise ApiError(400, "invalid_body", "the multipart/form-data body has no field 'file'", "file")
    return upload


async def _multipart_file(request: web.Request) -> bytes | None:
    """The bytes of the part named "file", the upload's only field (request.post() would also decode every
    other text field, and refuse a form with one it cannot decode)."""
    limit, total = request.app[SETTINGS].server.max_body_bytes, 0
    if (request.content_length or 0) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            raise ApiError(400, "invalid_body", "the multipart/form-data body has no field 'file' where it should "
                                                "be: 'file' is the upload's only field", "file")
        chunks = []
        while chunk := await part.read_chunk():
            total += len(chunk)
            if total > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=total)
            chunks.append(chunk)
        return b"".join(chunks)
    return None


async def import_candidates_csv(request: web.Request) -> web.Response:
    raw = await _uploaded_csv(request)
    with file_content_rules("file"):
        result = import_candidates(store_of(request), decode_csv(raw), _default_timezone(request))
    return json_response({"created": result.created, "updated": result.updated, "failed": result.failed,
                          "errors": result.errors, "candidates": result.candidate_ids})


# -- OpenAPI schemas: they state what models.validation.clean_candidate accepts ----------------------------
# normalize_phone: separators are dropped, a leading 00 becomes '+', then E.164. "" means no phone.
_PHONE_PATTERN = rf"^(?:|{PHONE_PATTERN})$"  # "" means no phone
_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": VISIBLE},
    "phone": {"type": "string", "nullable": True, "pattern": _PHONE_PATTERN, "example": "+14155550100",
              "description": "E.164, separators allowed ('+1 (415) 555-0100'); needed for phone interviews."},
    "email": {"type": "string", "nullable": True, "maxLength": 254,
              "pattern": rf"^(?:|[^@{SPACE}]+@[^@{SPACE}]+\.[^@{SPACE}]+)$"},
    "timezone": ref("TimeZone"),
    "externalId": {"type": "string", "nullable": True, "maxLength": 100,
                   "description": "Your system's id; POST with a known externalId updates that candidate."},
    "metadata": {"type": "object", "nullable": True, "maxProperties": MAX_METADATA_KEYS,
                 "propertyNames": {"minLength": 1, "maxLength": 64},
                 "additionalProperties": {"oneOf": [{"type": "string", "maxLength": 500}, {"type": "number"}]},
                 "description": "Your own data: non-empty keys of at most 64 characters; numbers are stored "
                                "as strings."},
    "tags": {"type": "array", "nullable": True, "maxItems": MAX_TAGS,
             "items": {"type": "string", "maxLength": 64, "pattern": VISIBLE}},
}
COMPONENTS["schemas"]["TimeZone"] = {
    "type": "string", "nullable": True, "enum": ["", None, *sorted(available_timezones())],
    "description": "An IANA time zone name; empty or null means the server's default."}
COMPONENTS["schemas"]["CandidateInput"] = {
    "type": "object", "additionalProperties": False, "required": ["name"], "properties": _FIELDS,
    "description": "A candidate. Fields left out are empty; the time zone defaults to the server's."}
COMPONENTS["schemas"]["CandidatePatch"] = {
    "type": "object", "additionalProperties": False, "properties": _FIELDS,
    "description": "The fields to change. null clears a field; a null timezone resets it to the server's default."}
_NULLABLE_STRING = {"type": "string", "nullable": True}
COMPONENTS["schemas"]["Candidate"] = {
    "type": "object",
    "required": ["id", "name", "phone", "email", "timezone", "externalId", "metadata", "tags", "createdAt",
                 "updatedAt"],
    "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "phone": _NULLABLE_STRING,
        "email": _NULLABLE_STRING, "timezone": {"type": "string"}, "externalId": _NULLABLE_STRING,
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "createdAt": {"type": "string", "format": "date-time"}, "updatedAt": {"type": "string", "format": "date-time"},
    },
}
COMPONENTS["schemas"]["CandidateImport"] = {
    "type": "object", "required": ["created", "updated", "failed", "errors", "candidates"],
    "properties": {
        "created": {"type": "integer"}, "updated": {"type": "integer"}, "failed": {"type": "integer"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["line", "field", "message"],
            "properties": {"line": {"type": "integer", "description": "Line of the file where the row starts."},
                           "field": {"type": "string", "nullable": True,
                                     "description": "The column, as the header names it."},
                           "message": {"type": "string"}}}},
        "candidates": {"type": "array", "items": {"type": "string"},
                       "description": "Ids of the candidates of the valid rows, in file order."},
    },
}

_CANDIDATE = json_ok(ref("Candidate"))
_NOT_FOUND = {"404": ERROR_REF}
_CSV_DOC = ("A header row, then one candidate per row. Columns (any case; spaces, '_' or camelCase): name "
            "(required), phone, email, timezone (or tz), external_id, tags (separated by ';' or '|'); any other "
            "column is metadata. Each row needs a phone or an external_id, which identify the candidate when the "
            "file is uploaded again. Invalid rows are reported in `errors`; the valid ones are saved. A file "
            "that cannot be read as a whole (no header or name column, bad quoting, NUL bytes, not UTF-8, more "
            "than 10,000 rows) is answered with 400 and field 'file'.")

_KEY_RULE = "422: a metadata key is empty or longer than 64 characters (OpenAPI 3.0 cannot state it)."

ROUTES: list[Route] = [
    Route("GET", BASE, list_candidates, "candidates:read", {
        "summary": "List candidates", "operationId": "listCandidates",
        "parameters": [*PAGE_PARAMETERS, {"name": "tag", "in": "query", "schema": {"type": "string"}},
                       {"name": "externalId", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": json_ok(page_of("Candidate"))}}),
    Route("POST", BASE, create_candidate, "candidates:write", {
        "summary": "Create a candidate, or replace the one with the same externalId (else phone)",
        "operationId": "createCandidate", "requestBody": json_body(ref("CandidateInput")), "description": _KEY_RULE,
        "responses": {"201": json_ok(ref("Candidate"), "Created"),
                      "200": json_ok(ref("Candidate"), "An existing candidate was updated"), "413": ERROR_REF,
                      "422": ERROR_REF}}),
    Route("POST", f"{BASE}/import", import_candidates_csv, "candidates:write", {
        "summary": "Create or update candidates from a CSV file", "operationId": "importCandidates",
        "description": _CSV_DOC,
        "requestBody": {"required": True, "content": {
            CSV_TYPE: {"schema": {"type": "string"}},
            MULTIPART_TYPE: {"schema": {"type": "object", "required": ["file"], "additionalProperties": False,
                                        "properties": {"file": {"type": "string", "format": "binary"}}}}}},
        "responses": {"200": json_ok(ref("CandidateImport")), "413": ERROR_REF, "415": ERROR_REF,
                      "422": {**ERROR_REF, "description": FILE_REFUSED}}}),
    Route("GET", f"{BASE}/{{id}}", get_candidate, "candidates:read", {
        "summary": "Get a candidate", "operationId": "getCandidate", "parameters": [path_id()],
        "responses": {"200": _CANDIDATE, **_NOT_FOUND}}),
    Route("PATCH", f"{BASE}/{{id}}", update_candidate, "candidates:write", {
        "summary": "Change some of a candidate's fields", "operationId": "updateCandidate",
        "parameters": [path_id()], "requestBody": json_body(ref("CandidatePatch")), "description": _KEY_RULE,
        "responses": {"200": _CANDIDATE, **_NOT_FOUND, "409": ERROR_REF, "413": ERROR_REF, "422": ERROR_REF}}),
    Route("DELETE", f"{BASE}/{{id}}", delete_candidate, "candidates:erase", {
        "summary": "Erase a candidate: personal data, interviews, transcripts, scorecards and recordings",
        "operationId": "deleteCandidate", "parameters": [path_id()],
        "description": "Removes every row and file holding the candidate's data (webhook deliveries and events "
                       "about their interviews included); only an anonymous candidate.erased event with ids "
                       "remains. 409 while a call with the candidate is under way.",
        "responses": {"204": {"description": "Deleted"}, **_NOT_FOUND, "409": ERROR_REF}}),
]
