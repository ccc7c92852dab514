"""API keys with scopes. A route names the scope it needs; the key in `Authorization: Bearer` (or
`X-API-Key`) must carry it. Keys are stored only as hashes (models.store)."""
from __future__ import annotations

from aiohttp import web

from datetime import timedelta

from models.db import fmt_time, utcnow
from models.records import ApiKey
from server.http import ApiError, store_of

SCOPES = ("positions:read", "positions:write", "candidates:read", "candidates:write", "candidates:erase",
          "interviews:read", "interviews:write", "invitations:write", "turns:write", "campaigns:read", "campaigns:write",
          "webhooks:read", "webhooks:write")
ROUTE_SCOPES = web.AppKey("route_scopes", dict)
API_KEY = web.RequestKey("api_key", ApiKey)
LAST_USED_RESOLUTION = timedelta(minutes=1)


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}" if unknown
                         else "at least one scope is required")
    return scopes


def _presented_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("X-API-Key") or None


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    scope = request.app[ROUTE_SCOPES].get(request.match_info.route)
    if scope is not None:
        secret = _presented_key(request)
        if not secret:
            raise ApiError(401, "unauthorized", "an API key is required (Authorization: Bearer <key>)")
        key = store_of(request).authenticate(secret)
        if key is None:
            raise ApiError(401, "unauthorized", "the API key is invalid or revoked")
        if scope not in key.scopes:
            raise ApiError(403, "forbidden", f"the API key lacks the scope {scope!r}")
        if key.last_used_at is None or key.last_used_at < fmt_time(utcnow() - LAST_USED_RESOLUTION):
            store_of(request).touch_api_key(key.id)  # at most once a minute: not a write per request
        request[API_KEY] = key
    return await handler(request)
