"""Recordings through short-lived signed URLs: `GET /api/v1/interviews/{id}/recording-url` (scope
interviews:read) answers `/recordings/{id}?expires=<unix s>&sig=<hex>`, an HMAC-SHA256 over the interview
id and the expiry keyed by `server.recording_url_secret`, valid `server.recording_url_ttl_s` (1 h). The
URL itself is the permission: `GET /recordings/{id}` takes no API key and answers 403 once it expired or
when anything in it was changed. (The dashboard serves recordings to a logged-in admin, server/admin/dashboard.py.)"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from config.settings import Settings
from models.db import fmt_time
from server.http import SETTINGS, ApiError, Route, json_response, store_of
from server.api.schemas import COMPONENTS, ERROR_REF, json_ok, path_id, ref

MAX_SIG_CHARS = 128


class RecordingSigner:
    def __init__(self, secret: str, ttl_s: int) -> None:
        # No secret configured: a random one, so URLs stop working when the server restarts (never forgeable).
        self.key = secret.encode() if secret else secrets.token_bytes(32)
        self.ttl_s = ttl_s

    def _sign(self, interview_id: str, expires: int) -> str:
        return hmac.new(self.key, f"{interview_id}.{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, interview_id: str, now: datetime) -> tuple[str, datetime]:
        """The path and query of a signed URL, and when it expires."""
        expires = int(now.timestamp()) + self.ttl_s
        query = urlencode({"expires": expires, "sig": self._sign(interview_id, expires)})
        return f"/recordings/{interview_id}?{query}", datetime.fromtimestamp(expires, timezone.utc)

    def valid(self, interview_id: str, expires: str, sig: str, now: datetime) -> bool:
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12 and len(sig) <= MAX_SIG_CHARS):
            return False
        if int(expires) < now.timestamp():
            return False
        return hmac.compare_digest(self._sign(interview_id, int(expires)).encode(), sig.encode("ascii", "replace"))


RECORDING_SIGNER = web.AppKey("recording_signer", RecordingSigner)


def _recording_file(request: web.Request, interview_id: str) -> Path:
    interview = store_of(request).get_interview(interview_id)  # NotFound -> 404
    path = Path(interview.recording_path) if interview.recording_path else None
    if path is None or not path.is_file():
        raise ApiError(404, "not_found", "this interview has no recording")
    return path


async def recording_url(request: web.Request) -> web.Response:
    interview_id = request.match_info["id"]
    _recording_file(request, interview_id)
    url, expires_at = request.app[RECORDING_SIGNER].url(interview_id, store_of(request).clock())
    return json_response({"url": f"{request.app[SETTINGS].public_url}{url}", "expires_at": fmt_time(expires_at)})


async def signed_recording(request: web.Request) -> web.StreamResponse:
    interview_id = request.match_info["id"]
    if not request.app[RECORDING_SIGNER].valid(interview_id, request.query.get("expires", ""),
                                               request.query.get("sig", ""), store_of(request).clock()):
        raise ApiError(403, "forbidden", "this recording link is invalid or has expired; ask the API for a new one")
    path = _recording_file(request, interview_id)
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "private, no-store",
                                           "Content-Disposition": f'inline; filename="{interview_id}.wav"'})


def add_routes(app: web.Application, settings: Settings) -> None:
    app[RECORDING_SIGNER] = RecordingSigner(settings.server.recording_url_secret, settings.server.recording_url_ttl_s)
    app.router.add_get("/recordings/{id}", signed_recording)


COMPONENTS["schemas"]["RecordingUrl"] = {
    "type": "object", "required": ["url", "expiresAt"],
    "properties": {"url": {"type": "string", "description": "GET it without an API key until expiresAt."},
                   "expiresAt": {"type": "string", "format": "date-time"}}}

ROUTES: list[Route] = [
    Route("GET", "/api/v1/interviews/{id}/recording-url", recording_url, "interviews:read", {
        "summary": "A short-lived signed URL of the interview's stereo recording (WAV)",
        "operationId": "getInterviewRecordingUrl", "parameters": [path_id()],
        "description": "The URL works without an API key for server.recording_url_ttl_s (default 1 hour), "
                       "then answers 403. 404 when the interview has no recording.",
        "responses": {"200": json_ok(ref("RecordingUrl")), "404": ERROR_REF}}),
]
