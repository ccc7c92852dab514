"""The web channel: a candidate joins an interview from the link `/join#TOKEN` in a browser.

The token sits in the URL fragment, which browsers never send, so it reaches no server or proxy log; the
page sends it as the first WebSocket message. The conversation on /ws/join:

    browser                                   server
    {"type": "join", "token": T}        ->
                                        <-    {"type": "ready", "candidateName", "company", "title"}
                                              or {"type": "refused", "reason", "message"} and close
    (the candidate presses Start and allows the microphone)
    {"type": "start"}                   ->    scheduled -> in_progress (one session per link)
                                        <-    {"type": "state", "state": "connecting"}
    PCM16 16 kHz frames, both ways, with state messages (speaking, listening) and at last "ended"

Once started, the WebLeg (dialer/web_leg.py) carries the call and `server.voice.run_interview` runs it, the
same InterviewSession as every phone channel, so the record has the same shape.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from dialer.web_leg import MAX_MESSAGE_BYTES, WebLeg
from ivr.interviewer import first_name
from models.db import parse_time
from models.lifecycle import IllegalTransition, Status
from models.records import Interview
from models.store import SessionStore
from server.http import STORE
from server.voice import VOICE, run_interview

log = logging.getLogger("phonescreen.web")

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"  # server/static, one level up
JOIN_TIMEOUT_S = 30  # for the page to send its token
START_TIMEOUT_S = 900  # for the candidate to read the page, press Start and allow the microphone
STATE_POLL_S = 0.1
HEARTBEAT_S = 20.0
# Sockets not yet started (no interview running): each costs a connection and a task, and needs no
# credential to open, so there is a ceiling; past it the upgrade is answered 503.
MAX_PENDING_SOCKETS = 200
MAX_TOKEN_CHARS = 128
# Pages use only their own scripts and styles; the worklet and the socket are same-origin.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
REFUSALS = {
    "invalid": "This interview link is not valid. Check that you opened the whole link from your invitation.",
    "expired": "This interview link has expired. Please contact the recruiter for a new invitation.",
    "cancelled": "This interview was cancelled. Please contact the recruiter if you think this is a mistake.",
    "used": "This interview link has already been used. Each link works for one session only.",
    "bad_request": "The page sent something unexpected. Please reload the page and try again.",
}


def static_page(name: str) -> web.FileResponse:
    """One of the plain HTML pages in server/static, with the headers every page gets."""
    return web.FileResponse(STATIC_DIR / name, headers=PAGE_HEADERS)


async def join_page(request: web.Request) -> web.StreamResponse:
    return static_page("join.html")


def refusal_reason(interview: Interview | None, store: SessionStore) -> str | None:
    """Why this link cannot start an interview now, or None if it can."""
    if interview is None:
        return "invalid"
    if interview.status == Status.EXPIRED or (interview.status == Status.SCHEDULED
                                              and parse_time(interview.expires_at) <= store.clock()):
        return "expired"
    if interview.status == Status.CANCELLED:
        return "cancelled"
    if interview.status != Status.SCHEDULED:
        return "used"
    return None


async def _receive_json(ws: web.WebSocketResponse, timeout_s: float) -> dict[str, Any] | None:
    """The next text message as a JSON object; None if the page left, timed out or sent anything else."""
    try:
        # An overall deadline: receive(timeout=) restarts its clock on every heartbeat pong.
        async with asyncio.timeout(timeout_s):
            message = await ws.receive()
    except asyncio.TimeoutError:
        return None
    if message.type != WSMsgType.TEXT:
        return None
    try:
        body = json.loads(message.data)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _refuse(ws: web.WebSocketResponse, reason: str) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json({"type": "refused", "reason": reason, "message": REFUSALS[reason]})
    await ws.close(code=WSCloseCode.POLICY_VIOLATION if reason == "bad_request" else WSCloseCode.OK)


async def _admit(request: web.Request, ws: web.WebSocketResponse) -> Interview | None:
    """Token, ready, start: returns the interview now in progress, or None after a refusal."""
    store = request.app[STORE]
    hello = await _receive_json(ws, JOIN_TIMEOUT_S)
    token = hello.get("token") if hello and hello.get("type") == "join" else None
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        await _refuse(ws, "bad_request")
        return None
    interview = store.find_interview_by_token(token)
    if (reason := refusal_reason(interview, store)) is not None:
        await _refuse(ws, reason)
        return None
    position = store.get_position(interview.position_id, interview.position_version)
    candidate = store.get_candidate(interview.candidate_id)
    await ws.send_json({"type": "ready", "candidateName": first_name(candidate.name), "title": position.title,
                        "company": position.template.company})
    start = await _receive_json(ws, START_TIMEOUT_S)
    if ws.closed or start is None or start.get("type") != "start":
        if not ws.closed:
            await _refuse(ws, "bad_request")
        return None
    # Re-read: the candidate may have waited past expiry, or another tab may have started meanwhile.
    interview = store.get_interview(interview.id)
    if (reason := refusal_reason(interview, store)) is not None:
        await _refuse(ws, reason)
        return None
    try:  # the transition is the lock: of two tabs pressing Start together, exactly one gets through
        interview = store.transition(interview.id, Status.IN_PROGRESS, reason="candidate joined from the web link")
    except IllegalTransition:
        await _refuse(ws, "used")
        return None
    log.info("web candidate joined", extra={"interview_id": interview.id})
    return interview


async def _report_state(app: web.Application, interview_id: str, leg: WebLeg) -> None:
    """Tell the page whether the AI is speaking or listening. The first state after "connecting" also
    tells it the session is live, so it starts sending the microphone then and not before."""
    last = "connecting"
    leg.notify({"type": "state", "state": last})
    while True:  # cancelled when the call ends
        session = app[VOICE].active.get(interview_id)
        if session is not None:
            speaking = session.playback.active and not session.playback.paused
            state = "speaking" if speaking else "listening"
            if state != last:
                leg.notify({"type": "state", "state": state})
                last = state
        await asyncio.sleep(STATE_POLL_S)


async def join_socket(request: web.Request) -> web.StreamResponse:
    pending = request.app[PENDING_SOCKETS]
    if pending.count >= MAX_PENDING_SOCKETS:
        log.warning("refused a /ws/join socket: %d are already waiting to start", pending.count)
        raise web.HTTPServiceUnavailable(text="too many pending interview connections; try again shortly",
                                         headers={"Retry-After": "5"})
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=HEARTBEAT_S)
    pending.count += 1
    try:
        await ws.prepare(request)
        interview = await _admit(request, ws)
    finally:
        pending.count -= 1
    if interview is None:
        return ws
    app = request.app
    leg = WebLeg(ws, interview.id)
    reporter = asyncio.create_task(_report_state(app, interview.id, leg))
    try:
        status = await run_interview(app, interview.id, leg)
        log.info("web interview ended: %s", status, extra={"interview_id": interview.id})
    except Exception:
        log.exception("web interview could not run", extra={"interview_id": interview.id})
        _fail_if_stuck(request.app[STORE], interview.id)
        leg.notify({"type": "error", "code": "internal", "message": "The interview could not continue. "
                                                                     "Please contact the recruiter."})
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        await leg.close()
    return ws


def _fail_if_stuck(store: SessionStore, interview_id: str) -> None:
    """The session never ran (engines failed to load): the interview must not stay in progress."""
    with contextlib.suppress(IllegalTransition):
        store.transition(interview_id, Status.FAILED, reason="the web session could not start")


@dataclass
class PendingSockets:
    count: int = 0


PENDING_SOCKETS = web.AppKey("pending_join_sockets", PendingSockets)


def add_routes(app: web.Application) -> None:
    app[PENDING_SOCKETS] = PendingSockets()
    app.router.add_get("/join", join_page)
    app.router.add_get("/ws/join", join_socket)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False, append_version=False)
