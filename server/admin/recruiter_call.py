"""Recruiter-led calls from the dashboard: the recruiter picks a candidate and clicks "Call"; the server
dials the candidate's phone through the SIP media workers and bridges it to the recruiter's browser.

    POST /admin/api/recruiter-calls {candidateId, positionId}   -> a scheduled SIP interview led by a recruiter
    GET  /admin/recruiter/{id}                                   the copilot page (recruiter.html)
    WS   /admin/ws/recruiter/{id}                                the recruiter's microphone and earpiece:
         PCM16 16 kHz both ways (the web channel's wire format, dialer/web_leg.py); opening it places the call
    GET  /admin/events/interviews/{id}/copilot                   the copilot pane, server-sent events
    PUT  /admin/api/interviews/{id}/notes {text}                 the recruiter's notes, saved as they type
    POST /admin/api/interviews/{id}/handover                     "let the AI finish the interview"

The media worker holding the candidate's leg (dialer/recruiter_link.py) relays audio, transcribes each side
and stores the turns; this process only carries the recruiter's audio between the browser and the pool
(resampled 16 kHz <-> 8 kHz) and serves the pages. All of it is behind the admin login.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import numpy as np
from aiohttp import web

from config.logging_setup import mask_phone
from dialer.leg import LineEnded
from dialer.sip.pool import MediaWorkerPool
from dialer.sip.shared_pool import SharedPool
from dialer.sip.targets import NoRoute, sip_target
from dialer.web_leg import MAX_MESSAGE_BYTES, WEB_RATE, WebLeg
from ivr.frames import AudioFrame, FrameChunker
from ivr.resample import StreamResampler
from models.lifecycle import IllegalTransition, Status
from models.store import Conflict, NotFound
from server.admin.dashboard import event_stream
from server.admin.auth import admin_data as data_route, admin_page, is_admin
from server.admin.copilot import copilot
from server.http import ApiError, json_response, read_json, reject_unknown, settings_of, store_of
from server.shutdown import OPS
from server.channels.web_channel import static_page

log = logging.getLogger("phonescreen.recruiter")
SIP_RATE = 8000
# The process's media worker pool; serve's dialing job owns it (tests may set their own).
RECRUITER_POOL = web.AppKey("recruiter_pool", SharedPool)


def _shared_pool(app: web.Application) -> SharedPool | None:
    if RECRUITER_POOL in app:
        return app[RECRUITER_POOL]
    dialing = app[OPS].dialing
    return dialing.shared if dialing is not None else None


@data_route
async def create_call(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"candidate_id", "position_id"})
    store, settings = store_of(request), settings_of(request)
    if not settings.sip.enabled or _shared_pool(request.app) is None:
        raise ApiError(409, "sip_disabled", "recruiter calls go over SIP: enable sip and set sip.domain")
    try:
        candidate = store.get_candidate(str(body.get("candidate_id") or ""))
        position = store.get_position(str(body.get("position_id") or ""))
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    try:
        sip_target(candidate.phone or "", settings.sip)
    except NoRoute as exc:
        raise ApiError(422, "no_route", str(exc), "candidateId") from None
    # Led by a recruiter: no dialer takes it (store.due_calls); the page's socket places the call.
    try:
        interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="sip",
                                              expires_at=store.clock() + timedelta(hours=1), led_by="recruiter")
    except Conflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    log.info("recruiter call created", extra={"interview_id": interview.id})
    return json_response({"interview_id": interview.id, "page": f"/admin/recruiter/{interview.id}"}, status=201)


@data_route
async def callable_candidates(request: web.Request) -> web.Response:
    """The picker: candidates with a phone number (masked) and the open positions."""
    store = store_of(request)
    candidates, _ = store.list_candidates(page=1, page_size=100)
    positions, _ = store.list_positions(page=1, page_size=100)
    return json_response({
        "candidates": [{"id": c.id, "name": c.name, "phone": mask_phone(c.phone)} for c in candidates if c.phone],
        "positions": [{"id": p.id, "title": p.title} for p in positions]})


@data_route
async def copilot_events(request: web.Request) -> web.StreamResponse:
    store, interview_id = store_of(request), request.match_info["id"]
    store.get_interview(interview_id)  # 404 before the stream starts
    return await event_stream(request, lambda: copilot(store, interview_id))


@data_route
async def save_notes(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"text"})
    text = body.get("text")
    if not isinstance(text, str):
        raise ApiError(400, "invalid_body", "text must be a string", "text")
    try:
        saved_at = store_of(request).save_notes(request.match_info["id"], text)
    except ValueError as exc:
        raise ApiError(422, "too_long", str(exc), "text") from None
    return json_response({"saved_at": saved_at})


@data_route
async def hand_over(request: web.Request) -> web.Response:
    interview = store_of(request).get_interview(request.match_info["id"])
    shared = _shared_pool(request.app)
    if interview.led_by != "recruiter" or interview.status != Status.IN_PROGRESS or shared is None \
            or shared.pool is None or not shared.pool.hand_over(interview.id):
        raise ApiError(409, "not_live", "only a recruiter-led call in progress can be handed to the AI")
    log.info("recruiter hands the call to the AI", extra={"interview_id": interview.id})
    return json_response({"handed_over": True}, status=202)


@admin_page
async def page(request: web.Request) -> web.StreamResponse:
    return static_page("recruiter.html")


async def call_socket(request: web.Request) -> web.StreamResponse:
    """The recruiter's audio. Opening it dials the candidate; closing it hangs up (unless handed over)."""
    if not is_admin(request):
        raise web.HTTPUnauthorized(text="log in at /admin/login")
    store, settings = store_of(request), settings_of(request)
    try:
        interview = store.get_interview(request.match_info["id"])
    except NotFound:
        raise web.HTTPNotFound(text="no such interview") from None
    shared = _shared_pool(request.app)
    if interview.led_by != "recruiter" or interview.status != Status.SCHEDULED or shared is None:
        raise web.HTTPConflict(text="this call cannot be placed (already placed, ended, or SIP is off)")
    try:
        target = sip_target(store.get_candidate(interview.candidate_id).phone or "", settings.sip)
    except NoRoute as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=20.0)
    await ws.prepare(request)
    leg = WebLeg(ws, interview.id)
    up, down = StreamResampler(SIP_RATE, WEB_RATE), StreamResampler(WEB_RATE, SIP_RATE)
    to_line = FrameChunker(SIP_RATE)

    def hear_candidate(pcm: bytes) -> None:
        out = up.process(np.frombuffer(pcm, dtype="<i2"))
        if out.size:
            leg.send(AudioFrame(out.astype("<i2").tobytes(), WEB_RATE))

    pool: MediaWorkerPool = await shared.get()
    call = asyncio.create_task(pool.dial(interview.id, target, on_audio=hear_candidate),
                               name=f"recruiter-{interview.id}")
    leg.notify({"type": "state", "state": "dialing"})
    listener = asyncio.create_task(_recruiter_audio(leg, pool, interview.id, down, to_line))
    try:
        done, _ = await asyncio.wait({call, listener}, return_when=asyncio.FIRST_COMPLETED)
        if listener in done and not call.done():
            # The recruiter left: hang up, unless the AI has the call now (it finishes on its own).
            if store.get_interview(interview.id).led_by == "recruiter":
                pool.hang_up(interview.id)
            await call
        result = call.result()
        log.info("recruiter call ended: %s", result.status, extra={"interview_id": interview.id})
        await leg.hang_up(result.status)
    except IllegalTransition as exc:
        leg.notify({"type": "error", "code": "not_dialed", "message": str(exc)})
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await leg.close()
    return ws


async def _recruiter_audio(leg: WebLeg, pool: MediaWorkerPool, interview_id: str, down: StreamResampler,
                           to_line: FrameChunker) -> None:
    """The recruiter's microphone, 16 kHz frames from the browser, to the candidate's line at 8 kHz."""
    while True:
        event = await leg.receive()
        if isinstance(event, LineEnded):  # the page closed or hung up
            return
        if not isinstance(event, AudioFrame):  # a keypad digit: nothing to do on this call
            continue
        pcm = down.process(np.frombuffer(event.pcm, dtype="<i2"))
        for frame in to_line.feed(pcm.astype("<i2").tobytes()):
            pool.send_audio(interview_id, frame.pcm)


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/admin/api/recruiter-calls", create_call)
    router.add_get("/admin/api/recruiter-candidates", callable_candidates)
    router.add_get("/admin/recruiter", page)
    router.add_get("/admin/recruiter/{id}", page)
    router.add_get("/admin/ws/recruiter/{id}", call_socket)
    router.add_get("/admin/events/interviews/{id}/copilot", copilot_events)
    router.add_put("/admin/api/interviews/{id}/notes", save_notes)
    router.add_post("/admin/api/interviews/{id}/handover", hand_over)
