"""Webhook endpoints: /api/v1/webhooks. Signing and delivery live in server/webhooks.py."""
from __future__ import annotations

import json
import re
from typing import Any

import yarl
from aiohttp import web

from models.db import dumps, new_id
from models.records import WebhookDelivery, WebhookEndpoint
from models.store import WEBHOOK_EVENTS
from models.validation import ValidationError, check_text
from server.http import (SETTINGS, Route, camelize, json_response, page_response, paging, read_json, reject_unknown,
                         store_of)
from server.api.schemas import COMPONENTS, ERROR_REF, PAGE_PARAMETERS, json_body, json_ok, page_of, path_id, ref
from server.webhooks import client_session, is_private_host, post_event, signed_headers

PREFIX = "/api/v1/webhooks"
MAX_URL_CHARS = 2000
MAX_DESCRIPTION_CHARS = 500
MIN_SECRET_CHARS, MAX_SECRET_CHARS = 16, 256

# The OpenAPI document states these same patterns, so what it promises is exactly what is accepted.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
URL_PATTERN = rf"^https?://{_LABEL}(?:\.{_LABEL})*(?::{_PORT})?(?:[/?#][\x21-\x7e]*)?$"
SECRET_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII: the secret is an HMAC key integrators must type


def _check_target(request: web.Request, url: str) -> str:
    if not request.app[SETTINGS].webhooks.allow_private_targets and is_private_host(yarl.URL(url).host or ""):
        raise ValidationError("must be a public address (webhooks.allow_private_targets is off)", "url")
    return url


def _check_url(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_URL_CHARS or not re.fullmatch(URL_PATTERN, value):
        raise ValidationError(f"must be an absolute http or https URL (host name or IPv4 address, optional port, "
                              f"no spaces) of at most {MAX_URL_CHARS} characters", "url")
    return value


def _check_events(value: object) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(e, str) for e in value):
        raise ValidationError(f"must be a non-empty list of event types: {', '.join(WEBHOOK_EVENTS)}", "events")
    unknown = [e for e in value if e not in WEBHOOK_EVENTS]
    if unknown:
        raise ValidationError(f"unknown event type {unknown[0][:100]!r}; known: {', '.join(WEBHOOK_EVENTS)}",
                              "events")
    return list(dict.fromkeys(value))


def _check_secret(value: object) -> str | None:
    if value is None:
        return None  # the store generates one
    if (not isinstance(value, str) or not MIN_SECRET_CHARS <= len(value) <= MAX_SECRET_CHARS
            or not re.fullmatch(SECRET_PATTERN, value)):
        raise ValidationError(f"must be {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} printable ASCII characters "
                              f"without spaces", "secret")
    return value


def _check_description(value: object) -> str | None:
    return check_text(value, "description", required=False, max_len=MAX_DESCRIPTION_CHARS)


def _public(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The endpoint without its secret, which is shown only once, on creation."""
    return {"id": endpoint.id, "url": endpoint.url, "events": endpoint.events, "active": endpoint.active,
            "description": endpoint.description or None, "created_at": endpoint.created_at,
            "updated_at": endpoint.updated_at}


def _delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    fields = camelize({"id": delivery.id, "webhook_id": delivery.endpoint_id, "event_id": delivery.event_id,
                       "event_type": delivery.event_type, "status": delivery.status, "attempts": delivery.attempts,
                       "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
                       "next_attempt_at": delivery.next_attempt_at, "created_at": delivery.created_at,
                       "delivered_at": delivery.delivered_at})
    # The payload is shown exactly as it was signed and sent: its keys are not camelized again.
    return {**fields, "payload": json.loads(delivery.payload)}


async def list_webhooks(request: web.Request) -> web.Response:
    page, page_size = paging(request)
    endpoints, total = store_of(request).list_webhooks(page=page, page_size=page_size)
    return page_response([_public(e) for e in endpoints], total, page, page_size)


async def create_webhook(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"url", "events", "description", "secret"})
    endpoint = store_of(request).create_webhook(url=_check_target(request, _check_url(body.get("url"))),
                                                events=_check_events(body.get("events")),
                                                description=_check_description(body.get("description")),
                                                secret=_check_secret(body.get("secret")))
    return json_response({**_public(endpoint), "secret": endpoint.secret}, status=201)


async def get_webhook(request: web.Request) -> web.Response:
    return json_response(_public(store_of(request).get_webhook(request.match_info["id"])))


async def update_webhook(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"url", "events", "description", "active"})
    changes: dict[str, Any] = {}
    if "url" in body:
        changes["url"] = _check_target(request, _check_url(body["url"]))
    if "events" in body:
        changes["events"] = _check_events(body["events"])
    if "description" in body:
        changes["description"] = _check_description(body["description"]) or ""  # null or blank clears it
    if "active" in body:
        if not isinstance(body["active"], bool):
            raise ValidationError("must be true or false", "active")
        changes["active"] = body["active"]
    return json_response(_public(store_of(request).update_webhook(request.match_info["id"], **changes)))


async def delete_webhook(request: web.Request) -> web.Response:
    store_of(request).delete_webhook(request.match_info["id"])
    return web.Response(status=204)


async def list_deliveries(request: web.Request) -> web.Response:
    page, page_size = paging(request)
    deliveries, total = store_of(request).list_deliveries(request.match_info["id"], page=page, page_size=page_size)
    return web.json_response({"items": [_delivery_json(d) for d in deliveries], "total": total, "page": page,
                              "pageSize": page_size})


async def ping_webhook(request: web.Request) -> web.Response:
    """Send one signed `ping` now (nothing is queued) and report how the receiver answered."""
    store = store_of(request)
    endpoint = store.get_webhook(request.match_info["id"])
    body = dumps({"id": new_id("evt_ping"), "type": "ping", "createdAt": store.now(),
                  "data": {"webhookId": endpoint.id}}).encode()
    headers = signed_headers(endpoint.secret, int(store.clock().timestamp()), body, "ping", new_id("ping"))
    async with client_session() as session:
        settings = request.app[SETTINGS].webhooks
        result = await post_event(session, endpoint.url, headers, body, settings.timeout_s,
                                  settings.allow_private_targets)
    return json_response(result)


# -- OpenAPI -------------------------------------------------------------------------------------
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {**_TIME, "nullable": True}
_URL = {"type": "string", "maxLength": MAX_URL_CHARS, "pattern": URL_PATTERN}
_EVENTS = {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(WEBHOOK_EVENTS)}}
_DESCRIPTION = {"type": "string", "maxLength": MAX_DESCRIPTION_CHARS, "nullable": True}
_WEBHOOK_PROPERTIES = {"id": {"type": "string"}, "url": {"type": "string"},
                       "events": {"type": "array", "items": {"type": "string"}}, "active": {"type": "boolean"},
                       "description": {"type": "string", "nullable": True}, "createdAt": _TIME, "updatedAt": _TIME}

COMPONENTS["schemas"].update({
    "Webhook": {"type": "object", "additionalProperties": False, "required": list(_WEBHOOK_PROPERTIES),
                "properties": _WEBHOOK_PROPERTIES},
    "WebhookWithSecret": {"type": "object", "additionalProperties": False,
                          "required": [*_WEBHOOK_PROPERTIES, "secret"],
                          "properties": {**_WEBHOOK_PROPERTIES, "secret": {
                              "type": "string", "description": "The signing secret; shown only here."}}},
    "WebhookDelivery": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "webhookId", "eventId", "eventType", "status", "attempts", "lastStatusCode", "lastError",
                     "nextAttemptAt", "createdAt", "deliveredAt", "payload"],
        "properties": {"id": {"type": "string"}, "webhookId": {"type": "string"}, "eventId": {"type": "integer"},
                       "eventType": {"type": "string"},
                       "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                       "attempts": {"type": "integer", "minimum": 0},
                       "lastStatusCode": {"type": "integer", "nullable": True},
                       "lastError": {"type": "string", "nullable": True}, "nextAttemptAt": _NULLABLE_TIME,
                       "createdAt": _TIME, "deliveredAt": _NULLABLE_TIME,
                       "payload": {"type": "object", "description": "The event exactly as signed and sent."}}},
    "WebhookTestResult": {"type": "object", "additionalProperties": False, "required": ["ok", "statusCode", "error"],
                          "properties": {"ok": {"type": "boolean"},
                                         "statusCode": {"type": "integer", "nullable": True},
                                         "error": {"type": "string", "nullable": True}}},
})

_CREATE_BODY = {
    "type": "object", "additionalProperties": False, "required": ["url", "events"],
    "properties": {"url": _URL, "events": _EVENTS, "description": _DESCRIPTION,
                   "secret": {"type": "string", "minLength": MIN_SECRET_CHARS, "maxLength": MAX_SECRET_CHARS,
                              "pattern": SECRET_PATTERN, "nullable": True,
                              "description": "HMAC key for signatures; generated when absent."}}}
_UPDATE_BODY = {"type": "object", "additionalProperties": False,
                "properties": {"url": _URL, "events": _EVENTS, "description": _DESCRIPTION,
                               "active": {"type": "boolean"}}}
_NOT_FOUND = {"404": ERROR_REF}

ROUTES: list[Route] = [
    Route("GET", PREFIX, list_webhooks, "webhooks:read", {
        "summary": "List webhook endpoints", "operationId": "listWebhooks", "parameters": PAGE_PARAMETERS,
        "responses": {"200": json_ok(page_of("Webhook"))}}),
    Route("POST", PREFIX, create_webhook, "webhooks:write", {
        "summary": "Create a webhook endpoint (the response holds its secret, shown only once)",
        "operationId": "createWebhook", "requestBody": json_body(_CREATE_BODY),
        "responses": {"201": json_ok(ref("WebhookWithSecret"), "Created")}}),
    Route("GET", PREFIX + "/{id}", get_webhook, "webhooks:read", {
        "summary": "Get a webhook endpoint", "operationId": "getWebhook", "parameters": [path_id()],
        "responses": {"200": json_ok(ref("Webhook")), **_NOT_FOUND}}),
    Route("PATCH", PREFIX + "/{id}", update_webhook, "webhooks:write", {
        "summary": "Change a webhook endpoint's URL, events, description or active flag",
        "operationId": "updateWebhook", "parameters": [path_id()], "requestBody": json_body(_UPDATE_BODY),
        "responses": {"200": json_ok(ref("Webhook")), **_NOT_FOUND}}),
    Route("DELETE", PREFIX + "/{id}", delete_webhook, "webhooks:write", {
        "summary": "Delete a webhook endpoint and its delivery history", "operationId": "deleteWebhook",
        "parameters": [path_id()], "responses": {"204": {"description": "Deleted"}, **_NOT_FOUND}}),
    Route("GET", PREFIX + "/{id}/deliveries", list_deliveries, "webhooks:read", {
        "summary": "List a webhook endpoint's deliveries, newest first", "operationId": "listWebhookDeliveries",
        "parameters": [path_id(), *PAGE_PARAMETERS],
        "responses": {"200": json_ok(page_of("WebhookDelivery")), **_NOT_FOUND}}),
    Route("POST", PREFIX + "/{id}/test", ping_webhook, "webhooks:write", {
        "summary": "Send a signed ping event now and report the receiver's answer", "operationId": "testWebhook",
        "parameters": [path_id()], "responses": {"200": json_ok(ref("WebhookTestResult")), **_NOT_FOUND}}),
]
