"""/api/v1/dnc: the do-not-call list. Numbers on it are never called by a campaign: the dialer checks the
list when it is about to call (models/campaign_dialing.py), and the attempt ends `skipped_dnc`."""
from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web

from models.candidate_csv import MAX_ROWS, decode_csv
from models.store import SessionStore
from models.validation import ValidationError, check_text, normalize_phone
from server.api.candidates import CSV_TYPE, MULTIPART_TYPE, _uploaded_csv
from server.http import FILE_REFUSED, Route, file_content_rules, json_response, page_response, paging, read_json, reject_unknown, store_of
from server.api.schemas import PHONE_PATTERN, COMPONENTS, ERROR_REF, PAGE_PARAMETERS, json_body, json_ok, page_of, ref

BASE = "/api/v1/dnc"
MAX_REASON_CHARS = 200


def import_do_not_call(store: SessionStore, text: str) -> dict[str, Any]:
    """A CSV with a `phone` column (and optionally `reason`); bad rows are reported, the others added."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ValidationError(f"the CSV cannot be read: {exc}", "file") from None
    if not rows:
        raise ValidationError("the file is empty; it needs a header row with a phone column", "file")
    header = [cell.strip().lower() for cell in rows[0]]
    if "phone" not in header:
        raise ValidationError("the header row has no phone column", "file")
    if len(rows) - 1 > MAX_ROWS:
        raise ValidationError(f"more than {MAX_ROWS} rows", "file")
    phone_at, reason_at = header.index("phone"), header.index("reason") if "reason" in header else None
    added, known, errors = 0, 0, []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            phone = normalize_phone(row[phone_at] if phone_at < len(row) else "", "phone")
            reason = row[reason_at].strip()[:MAX_REASON_CHARS] if reason_at is not None and reason_at < len(row) else None
        except ValidationError as exc:
            errors.append({"line": line, "field": "phone", "message": exc.message})
            continue
        _, new = store.add_do_not_call(phone, reason or None)
        added, known = added + new, known + (not new)
    return {"added": added, "already_listed": known, "failed": len(errors), "errors": errors}


async def list_numbers(request: web.Request) -> web.Response:
    page, page_size = paging(request)
    items, total = store_of(request).list_do_not_call(page=page, page_size=page_size)
    return page_response(items, total, page, page_size)


async def add_number(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"phone", "reason"})
    phone = normalize_phone(body.get("phone"))
    reason = check_text(body.get("reason"), "reason", required=False, max_len=MAX_REASON_CHARS)
    entry, new = store_of(request).add_do_not_call(phone, reason)
    return json_response(entry, status=201 if new else 200)


async def remove_number(request: web.Request) -> web.Response:
    store_of(request).remove_do_not_call(request.match_info["phone"])  # unknown: 404; not a number: 400
    return web.Response(status=204)


async def import_numbers(request: web.Request) -> web.Response:
    raw = await _uploaded_csv(request)
    with file_content_rules("file"):
        return json_response(import_do_not_call(store_of(request), decode_csv(raw)))


COMPONENTS["schemas"]["DoNotCall"] = {
    "type": "object", "required": ["phone", "reason", "createdAt"],
    "properties": {"phone": {"type": "string"}, "reason": {"type": "string", "nullable": True},
                   "createdAt": {"type": "string", "format": "date-time"}}}
COMPONENTS["schemas"]["DoNotCallInput"] = {
    "type": "object", "additionalProperties": False, "required": ["phone"],
    "properties": {"phone": {"type": "string", "example": "+14155550100", "pattern": f"^{PHONE_PATTERN}$",
                             "description": "E.164; separators such as '+1 (415) 555-0100' are allowed."},
                   "reason": {"type": "string", "nullable": True, "maxLength": MAX_REASON_CHARS}}}
COMPONENTS["schemas"]["DoNotCallImport"] = {
    "type": "object", "required": ["added", "alreadyListed", "failed", "errors"],
    "properties": {"added": {"type": "integer"}, "alreadyListed": {"type": "integer"}, "failed": {"type": "integer"},
                   "errors": {"type": "array", "items": {
                       "type": "object", "required": ["line", "field", "message"],
                       "properties": {"line": {"type": "integer"}, "field": {"type": "string"},
                                      "message": {"type": "string"}}}}}}

_PHONE_PATH = {"name": "phone", "in": "path", "required": True,
               "schema": {"type": "string", "pattern": f"^{PHONE_PATTERN}$"},
               "description": "The number in E.164 (URL-encode the '+' as %2B or write it as is)."}
ROUTES: list[Route] = [
    Route("GET", BASE, list_numbers, "campaigns:read", {
        "summary": "List the do-not-call numbers, newest first", "operationId": "listDoNotCall",
        "parameters": PAGE_PARAMETERS, "responses": {"200": json_ok(page_of("DoNotCall"))}}),
    Route("POST", BASE, add_number, "campaigns:write", {
        "summary": "Add a number to the do-not-call list", "operationId": "addDoNotCall",
        "requestBody": json_body(ref("DoNotCallInput")),
        "responses": {"201": json_ok(ref("DoNotCall"), "Added"),
                      "200": json_ok(ref("DoNotCall"), "Already on the list (unchanged)"), "413": ERROR_REF}}),
    Route("POST", f"{BASE}/import", import_numbers, "campaigns:write", {
        "summary": "Add numbers from a CSV file", "operationId": "importDoNotCall",
        "description": "A header row with a `phone` column (and optionally `reason`), then one number per row. "
                       "Invalid rows are reported in `errors`; the valid ones are added.",
        "requestBody": {"required": True, "content": {
            CSV_TYPE: {"schema": {"type": "string"}},
            MULTIPART_TYPE: {"schema": {"type": "object", "required": ["file"], "additionalProperties": False,
                                        "properties": {"file": {"type": "string", "format": "binary"}}}}}},
        "responses": {"200": json_ok(ref("DoNotCallImport")), "413": ERROR_REF, "415": ERROR_REF,
                      "422": {**ERROR_REF, "description": FILE_REFUSED}}}),
    Route("DELETE", f"{BASE}/{{phone}}", remove_number, "campaigns:write", {
        "summary": "Remove a number from the do-not-call list", "operationId": "removeDoNotCall",
        "parameters": [_PHONE_PATH],
        "responses": {"204": {"description": "Removed"}, "400": ERROR_REF, "404": ERROR_REF}}),
]
