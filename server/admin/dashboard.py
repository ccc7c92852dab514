"""The admin status dashboard under /admin, behind the admin login (server/admin/auth.py).

Pages are plain HTML and JavaScript from server/static (no build step). Their data comes as JSON
(/admin/api/...) and as server-sent events (/admin/events...), which push a fresh snapshot whenever it
changes (checked every second), so nothing needs a reload. Recordings are served only to a logged-in admin.
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from models.records import CHANNELS
from server.admin import data as admin_data
from server.admin.auth import ADMIN, AdminState, admin_data as data_route, admin_page, is_admin, login, \
    login_form, logout, see_other
from models.invitations import INVITATION_CHANNELS
from server.api.interviews import STATUSES
from server.http import ApiError, camelize, json_response, paging, read_json, reject_unknown, settings_of, store_of
from server.invitations import channel_problem
from server.voice import VOICE
from server.channels.web_channel import static_page

SSE_POLL_S = 1.0
SSE_KEEPALIVE_S = 15.0  # a comment line now and then, so proxies keep an idle stream open
SSE_MAX_S = 3600.0  # every stream ends within the hour; EventSource reconnects by itself


def _page(name: str):
    @admin_page
    async def handler(request: web.Request) -> web.StreamResponse:
        return static_page(name)
    return handler


async def _to_dashboard(request: web.Request) -> web.StreamResponse:
    return see_other("/admin")


async def event_stream(request: web.Request, snapshot: Callable[[], dict[str, Any]]) -> web.StreamResponse:
    """Send `snapshot()` now and again whenever it changes, until the page goes away or the session ends."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    last, quiet_s, deadline = None, 0.0, time.monotonic() + SSE_MAX_S
    try:
        while time.monotonic() < deadline:
            if not is_admin(request):  # logged out or expired meanwhile
                await response.write(b"event: logout\ndata: {}\n\n")
                break
            body = json.dumps(camelize(snapshot()), sort_keys=True, separators=(",", ":"))
            if body != last:
                now = store_of(request).now()  # lets the page count call durations on the server's clock
                await response.write(f'data: {{"now":"{now}","data":{body}}}\n\n'.encode())
                last, quiet_s = body, 0.0
            elif quiet_s >= SSE_KEEPALIVE_S:
                await response.write(b": keepalive\n\n")
                quiet_s = 0.0
            await asyncio.sleep(SSE_POLL_S)
            quiet_s += SSE_POLL_S
    except ConnectionError:  # the page was closed
        pass
    return response


@data_route
async def dashboard_events(request: web.Request) -> web.StreamResponse:
    store, voice, settings = store_of(request), request.app[VOICE], settings_of(request)
    return await event_stream(request, lambda: admin_data.dashboard(store, voice, settings))


@data_route
async def interview_events(request: web.Request) -> web.StreamResponse:
    store, voice, interview_id = store_of(request), request.app[VOICE], request.match_info["id"]
    store.get_interview(interview_id)  # 404 before the stream starts
    return await event_stream(request, lambda: admin_data.interview_detail(store, voice, interview_id))


def _choice(request: web.Request, name: str, allowed: tuple[str, ...] | list[str]) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in allowed:
        raise ApiError(400, "invalid_parameter", f"{name} must be one of {', '.join(allowed)}", name)
    return value


@data_route
async def interviews_api(request: web.Request) -> web.Response:
    page, page_size = paging(request)
    search = request.query.get("q") or None
    if search is not None and len(search) > admin_data.MAX_SEARCH_CHARS:
        raise ApiError(400, "invalid_parameter", f"q must be at most {admin_data.MAX_SEARCH_CHARS} characters", "q")
    store = store_of(request)
    items, total = admin_data.interview_list(
        store, page=page, page_size=page_size, status=_choice(request, "status", STATUSES),
        channel=_choice(request, "channel", CHANNELS), campaign_id=request.query.get("campaignId") or None,
        position_id=request.query.get("positionId") or None, search=search)
    return json_response({"items": items, "total": total, "page": page, "page_size": page_size,
                          "statuses": STATUSES, "channels": list(CHANNELS), **admin_data.filter_choices(store)})


@data_route
async def interview_api(request: web.Request) -> web.Response:
    return json_response(admin_data.interview_detail(store_of(request), request.app[VOICE], request.match_info["id"]))


@data_route
async def invite(request: web.Request) -> web.Response:
    """Queue an invitation from the interview page, as POST /api/v1/interviews/{id}/invitations does."""
    body = await read_json(request)
    reject_unknown(body, {"channel"})
    channel = body.get("channel")
    if channel not in INVITATION_CHANNELS:
        raise ApiError(400, "invalid_field", f"channel must be one of {', '.join(INVITATION_CHANNELS)}", "channel")
    if (problem := channel_problem(settings_of(request), channel)) is not None:
        raise ApiError(409, "not_configured", problem, "channel")
    invitation = store_of(request).queue_invitation(request.match_info["id"], channel)
    return json_response({"id": invitation.id, "status": invitation.status}, status=202)


@data_route
async def recording(request: web.Request) -> web.StreamResponse:
    interview = store_of(request).get_interview(request.match_info["id"])
    path = Path(interview.recording_path) if interview.recording_path else None
    if path is None or not path.is_file():
        raise ApiError(404, "not_found", "this interview has no recording")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "no-store",
                                           "Content-Disposition": f'inline; filename="{interview.id}.wav"'})


def add_routes(app: web.Application) -> None:
    app[ADMIN] = AdminState()
    router = app.router
    router.add_get("/admin/login", login_form)
    router.add_post("/admin/login", login)
    router.add_post("/admin/logout", logout)
    router.add_get("/admin", _page("admin.html"))
    router.add_get("/admin/", _to_dashboard)
    router.add_get("/admin/interviews", _page("interviews.html"))
    router.add_get("/admin/interviews/{id}", _page("interview.html"))
    router.add_get("/admin/interviews/{id}/recording", recording)
    router.add_get("/admin/api/interviews", interviews_api)
    router.add_get("/admin/api/interviews/{id}", interview_api)
    router.add_post("/admin/api/interviews/{id}/invitations", invite)
    router.add_get("/admin/events", dashboard_events)
    router.add_get("/admin/events/interviews/{id}", interview_events)
