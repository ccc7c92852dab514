"""Twilio's side of the server: POST /twilio/status (signed call status callbacks) and GET /twilio/stream
(the Media Streams websocket). Not /api/v1 routes: Twilio proves itself with the request signature
(X-Twilio-Signature, keyed by the auth token) and the one-time stream token, never with an API key.

A stream must open with `connected` (optional) then `start` carrying the interview id and a token that
is spent on first use; anything else before that closes the socket. Once bound, the interview runs
through server.voice.run_interview over a TwilioLeg.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web
from multidict import MultiDictProxy
from twilio.request_validator import RequestValidator

from config.settings import Settings
from dialer.twilio import media_streams as wire
from dialer.twilio.calls import (INTERVIEW_PARAM, STATUS_PATH, STREAM_PATH, TOKEN_PARAM, TwilioCallError,
                                 TwilioCalls, place_twilio_call)
from dialer.twilio.leg import TwilioLeg
from dialer.twilio.status import CALL_STATUSES, WAITING, interpret
from models.lifecycle import IllegalTransition, Status
from models.store import NotFound
from server.http import SETTINGS, STORE, ApiError
from server.voice import run_interview

log = logging.getLogger("phonescreen.twilio")
START_TIMEOUT_S = 10.0  # a socket that has not sent a valid `start` by then is closed
MAX_WS_MESSAGE_BYTES = 64 * 1024  # far above any Media Streams message; bigger ones close the socket (1009)


@dataclass
class TwilioRuntime:
    calls: TwilioCalls | None = None  # made on first use, from the settings
    streams: dict[str, TwilioLeg] = field(default_factory=dict)  # interview id -> its live stream


TWILIO = web.AppKey("twilio", TwilioRuntime)


def _settings(app: web.Application) -> Settings:
    return app[SETTINGS]


def calls_of(app: web.Application) -> TwilioCalls:
    runtime = app[TWILIO]
    if runtime.calls is None:
        runtime.calls = TwilioCalls(_settings(app).twilio)
    return runtime.calls


async def place_call(app: web.Application, interview_id: str) -> str:
    """Call a scheduled Twilio interview's candidate with the app's settings and store; returns the call SID."""
    return await place_twilio_call(_settings(app), app[STORE], interview_id, calls=calls_of(app))


def require_enabled(request: web.Request) -> Settings:
    settings = _settings(request.app)
    if not settings.twilio.enabled:
        raise ApiError(404, "not_found", "the Twilio channel is not enabled")
    return settings


async def signed_form(request: web.Request, settings: Settings, what: str) -> MultiDictProxy:
    """The form of a webhook request Twilio signed with our auth token (X-Twilio-Signature over
    server.public_url + path and query: the URL it was given); 403, and nothing done, otherwise."""
    form = await request.post()
    signature = request.headers.get("X-Twilio-Signature", "")
    url = settings.public_url + request.path_qs
    if not signature or not RequestValidator(settings.twilio.auth_token).validate(url, form, signature):
        log.warning("twilio %s refused: bad or missing signature", what)
        raise ApiError(403, "forbidden", "the X-Twilio-Signature is missing or invalid")
    return form


# -- status callbacks ------------------------------------------------------------------------------
async def status_callback(request: web.Request) -> web.Response:
    settings = require_enabled(request)
    form = await signed_form(request, settings, "status callback")
    interview_id = request.query.get(INTERVIEW_PARAM, "")
    call_sid, call_status = form.get("CallSid", ""), form.get("CallStatus", "")
    if not interview_id or not isinstance(call_sid, str) or not call_sid or call_status not in CALL_STATUSES:
        raise ApiError(400, "bad_request", "a status callback needs interviewId, CallSid and a known CallStatus")
    if form.get("AccountSid") != settings.twilio.account_sid:
        raise ApiError(403, "forbidden", "the callback is for another account")
    store = request.app[STORE]
    interview = store.get_interview(interview_id)  # NotFound -> 404
    extra = {"interview_id": interview_id, "call_sid": call_sid}
    if not store.bind_twilio_call_sid(interview_id, call_sid):
        log.warning("twilio status callback for a call that is not the interview's; ignored", extra=extra)
        return web.Response(status=204)
    call = store.twilio_call(interview_id)
    answered_by = form.get("AnsweredBy", "")
    update = interpret(str(call_status), interview.status, streamed=bool(call and call.stream_started_at),
                       answered_by=answered_by if isinstance(answered_by, str) else "")
    log.info("twilio call %s (interview %s)", call_status, interview.status, extra=extra)
    if update.status is not None:
        with contextlib.suppress(IllegalTransition):  # the stream or another callback moved it first
            store.transition(interview_id, update.status, outcome_code=update.outcome_code,
                             reason=update.reason or f"twilio call status {call_status}")
    if update.hang_up:
        try:
            await calls_of(request.app).hang_up(call_sid)
        except TwilioCallError as exc:
            log.warning("twilio: could not hang up: %s", exc, extra=extra)
    return web.Response(status=204)


# -- the media stream ------------------------------------------------------------------------------
async def media_stream(request: web.Request) -> web.StreamResponse:
    require_enabled(request)
    ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE_BYTES, timeout=5.0)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "bad_request", "this address takes a Twilio Media Streams websocket")
    await ws.prepare(request)
    app = request.app
    try:
        bound = await asyncio.wait_for(_open_stream(app, ws), START_TIMEOUT_S)
    except TimeoutError:
        bound = _refuse(f"no start within {START_TIMEOUT_S:.0f} s")
    if bound is None:
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"stream refused")
        return ws
    interview_id, start = bound
    calls = calls_of(app)
    leg = TwilioLeg(ws, start.stream_sid, end_call=lambda: calls.hang_up(start.call_sid), interview_id=interview_id,
                    redirect=lambda twiml: calls.redirect(start.call_sid, twiml))
    app[TWILIO].streams[interview_id] = leg
    try:
        status = await run_interview(app, interview_id, leg)
        log.info("twilio interview ended %s", status, extra={"interview_id": interview_id})
    except Exception:  # the session could not even start (engines, store): the call must not hang open
        log.exception("twilio interview could not run", extra={"interview_id": interview_id})
        with contextlib.suppress(IllegalTransition, NotFound):
            app[STORE].transition(interview_id, Status.FAILED, reason="the interview could not run")
        await leg.hang_up("error")
    finally:
        app[TWILIO].streams.pop(interview_id, None)
        await leg.close()
    return ws


async def _open_stream(app: web.Application, ws: web.WebSocketResponse) -> tuple[str, wire.Start] | None:
    """Read up to `start` and bind the stream to its interview; None (logged) if it must be refused."""
    for _ in range(2):  # `connected`, then `start`
        message = await ws.receive()
        if message.type != WSMsgType.TEXT:
            return _refuse("binary frame or close before start" if message.type == WSMsgType.BINARY
                           else "socket closed before start")
        try:
            parsed = wire.parse_message(message.data)
        except wire.StreamMessageError as exc:
            return _refuse(f"bad message before start: {exc}")
        if isinstance(parsed, wire.Start):
            return _bind(app, parsed)
        if not isinstance(parsed, wire.Connected):
            return _refuse(f"{type(parsed).__name__.lower()} before start")
    return _refuse("no start after connected")


def _bind(app: web.Application, start: wire.Start) -> tuple[str, wire.Start] | None:
    settings, store = _settings(app), app[STORE]
    interview_id = start.custom_parameters.get(INTERVIEW_PARAM, "")
    token = start.custom_parameters.get(TOKEN_PARAM, "")
    if not interview_id or not token:
        return _refuse("start without the interview id and stream token parameters")
    if start.account_sid != settings.twilio.account_sid:
        return _refuse("start for another account")
    if start.media_format != wire.MULAW_8K:
        return _refuse(f"media format {start.media_format} is not mu-law 8 kHz mono")
    try:
        interview = store.get_interview(interview_id)
    except NotFound:
        return _refuse("start for an unknown interview")
    extra = {"interview_id": interview_id, "call_sid": start.call_sid}
    if interview.channel != "twilio" or interview.status not in WAITING | {Status.IN_PROGRESS}:
        return _refuse(f"start for a {interview.channel} interview that is {interview.status}", extra)
    # The token first: only its holder (Twilio, from our TwiML) may bind a call SID to the interview.
    if not store.redeem_stream_token(interview_id, token, start.stream_sid):
        return _refuse("stream token invalid, already used or expired", extra)
    if not store.bind_twilio_call_sid(interview_id, start.call_sid):
        return _refuse("start from a call that is not the interview's", extra)
    if interview.status in WAITING:
        try:
            store.transition(interview_id, Status.IN_PROGRESS, reason="twilio media stream started")
        except IllegalTransition:  # the answered callback got there first, or the call was cancelled
            if store.get_interview(interview_id).status != Status.IN_PROGRESS:
                return _refuse("the interview ended as the stream started", extra)
    log.info("twilio stream started", extra=extra)
    return interview_id, start


def _refuse(reason: str, extra: dict | None = None) -> None:
    log.warning("twilio stream refused: %s", reason, extra=extra or {})
    return None


def add_routes(app: web.Application) -> None:
    """Twilio's endpoints: public (no API key scope), so the auth middleware lets them through."""
    app[TWILIO] = TwilioRuntime()
    app.router.add_post(STATUS_PATH, status_callback)
    app.router.add_get(STREAM_PATH, media_stream)
