"""Placing and ending Twilio calls with the `twilio` REST client (its aiohttp-based async HTTP client).

A call's TwiML connects a bidirectional Media Stream to the server's /twilio/stream, carrying the
interview id and a one-time stream token as <Parameter>s (they arrive in the stream's `start`, never in a
URL that could be logged). Status callbacks go to /twilio/status for initiated, ringing, answered and
completed; dialer/twilio/status.py says what each means for the interview.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Awaitable, Callable, TypeVar

from aiohttp import ClientError
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import Connect, VoiceResponse

from config.settings import Settings, TwilioSettings
from dialer.twilio.settings_check import check_twilio_settings
from models.lifecycle import ENDED, IllegalTransition, Status
from models.store import Conflict, SessionStore
from config.logging_setup import mask_phone

log = logging.getLogger("phonescreen.twilio")
T = TypeVar("T")
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
REST_TIMEOUT_S = 10.0
STREAM_PATH = "/twilio/stream"
STATUS_PATH = "/twilio/status"
INTERVIEW_PARAM = "interviewId"  # in the stream's <Parameter>s and the status callback's query
TOKEN_PARAM = "streamToken"
CALL_POLL_S = 1.0  # how often a dialer looks whether its call has ended


class TwilioCallError(Exception):
    def __init__(self, message: str, code: str, http_status: int | None = None):
        super().__init__(message)
        self.code = code  # Twilio's error code, or what failed on our side
        self.http_status = http_status  # the REST answer's status (a 5xx or 429 is worth another try)


class TwilioCalls:
    """The REST side of the channel for one account: create a call, end a call. Safe to share between
    calls under way at once (the dialers and the status callbacks of one server share one)."""

    def __init__(self, settings: TwilioSettings) -> None:
        self.settings = settings

    def _client(self) -> Client:
        return rest_client(self.settings)

    async def place(self, *, to: str, twiml: str, status_callback: str) -> str:
        """Create the call; returns its SID."""
        options = {"machine_detection": self.settings.machine_detection} if self.settings.machine_detection else {}
        call = await rest("place the call", self._client().calls.create_async(
            to=to, from_=self.settings.from_number, twiml=twiml, status_callback=status_callback,
            status_callback_event=STATUS_EVENTS, status_callback_method="POST", **options))
        return call.sid

    async def hang_up(self, call_sid: str) -> None:
        await rest("end the call", self._client().calls(call_sid).update_async(status="completed"))

    async def redirect(self, call_sid: str, twiml: str) -> None:
        """Replace the call's instructions (the media stream stops): a transfer's <Dial>."""
        await rest("redirect the call", self._client().calls(call_sid).update_async(twiml=twiml))


def rest_client(settings: TwilioSettings) -> Client:
    """A client per request: the library's async HTTP client keeps the last response on itself, so two
    requests at once on one client can each get the other's answer (a call SID bound to the wrong
    interview). No pooled session either: it would have to be opened and closed with an event loop."""
    client = Client(settings.account_sid, settings.auth_token, http_client=AsyncTwilioHttpClient(pool_connections=False))
    if settings.api_base_url:
        client.api.base_url = settings.api_base_url.rstrip("/")
    return client


async def rest(what: str, request: Awaitable[T]) -> T:
    """One REST request, bounded in time (the library's async client sets no timeout of its own)."""
    try:
        return await asyncio.wait_for(request, REST_TIMEOUT_S)
    except TwilioRestException as exc:
        raise TwilioCallError(f"Twilio refused to {what}: {exc.msg}", str(exc.code or exc.status), exc.status) from None
    except (TwilioException, ClientError, TimeoutError, OSError) as exc:
        raise TwilioCallError(f"could not {what}: Twilio's API did not answer ({type(exc).__name__})",
                              "unreachable") from None


def stream_url(settings: Settings) -> str:
    """The websocket address Twilio opens: the public URL with ws(s) for http(s)."""
    base = settings.public_url
    return ("wss://" + base[len("https://"):] if base.startswith("https://")
            else "ws://" + base[len("http://"):]) + STREAM_PATH


def status_callback_url(settings: Settings, interview_id: str) -> str:
    return f"{settings.public_url}{STATUS_PATH}?{INTERVIEW_PARAM}={interview_id}"


def dial_twiml(number: str) -> str:
    """<Response><Dial>number</Dial></Response>: put the caller through to a person."""
    response = VoiceResponse()
    response.dial(number)
    return str(response)


def stream_twiml(url: str, interview_id: str, token: str) -> str:
    """<Response><Connect><Stream url=...> with the interview id and the one-time token as parameters."""
    response, connect = VoiceResponse(), Connect()
    stream = connect.stream(url=url)
    stream.parameter(name=INTERVIEW_PARAM, value=interview_id)
    stream.parameter(name=TOKEN_PARAM, value=token)
    response.append(connect)
    return str(response)


async def place_twilio_call(settings: Settings, store: SessionStore, interview_id: str, *,
                            calls: TwilioCalls | None = None) -> str:
    """Call a scheduled Twilio interview's candidate: scheduled -> dialing, then the REST call; returns the
    call SID (stored with the interview). Status callbacks and the media stream take it from there.
    A refused call ends the interview failed, with Twilio's error code as its outcome."""
    check_twilio_settings(settings)
    if not settings.twilio.enabled:
        raise Conflict("the Twilio channel is not enabled (twilio.enabled)")
    interview = store.get_interview(interview_id)
    if interview.channel != "twilio":
        raise Conflict(f"interview {interview_id!r} is a {interview.channel} interview, not a twilio one")
    phone = store.get_candidate(interview.candidate_id).phone
    store.transition(interview_id, Status.DIALING)
    token = store.issue_stream_token(interview_id, settings.twilio.stream_token_ttl_s)
    calls = calls or TwilioCalls(settings.twilio)
    extra = {"interview_id": interview_id, "to": mask_phone(phone)}
    try:
        call_sid = await calls.place(to=phone, twiml=stream_twiml(stream_url(settings), interview_id, token),
                                     status_callback=status_callback_url(settings, interview_id))
    except TwilioCallError as exc:
        log.warning("twilio call not placed: %s", exc, extra=extra)
        with contextlib.suppress(IllegalTransition):  # a status callback may have ended it already
            store.transition(interview_id, Status.FAILED, outcome_code=exc.code, reason=str(exc))
        raise
    store.bind_twilio_call_sid(interview_id, call_sid)
    log.info("twilio call placed", extra={**extra, "call_sid": call_sid})
    return call_sid


async def call_until_ended(settings: Settings, store: SessionStore, interview_id: str, *,
                           calls: TwilioCalls | None = None, poll_s: float = CALL_POLL_S,
                           monotonic: Callable[[], float] = time.monotonic) -> None:
    """Place the call, then wait until the status callbacks and the media stream (in the server) have ended
    the interview, bounded by the longest a call may ring and last: a dialer's slot stays taken while its
    call goes on. A call Twilio refused returns at once (the interview ended failed)."""
    try:
        await place_twilio_call(settings, store, interview_id, calls=calls)
    except TwilioCallError:
        return
    deadline = monotonic() + settings.sip.ring_timeout_s + settings.sip.max_call_s + 60
    while store.get_interview(interview_id).status not in ENDED and monotonic() < deadline:
        await asyncio.sleep(poll_s)
