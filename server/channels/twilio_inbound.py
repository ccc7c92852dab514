"""Inbound calls on Twilio: the number's voice webhook, POST /twilio/voice (set it as the number's "A call
comes in" URL). Signed like the status callbacks (server.channels.twilio_endpoints.signed_form), from our account.

The caller's number (From) is matched to a candidate's interview (models/inbound_calls.py). One match: the
interview is claimed in_progress on the twilio channel, the call SID bound, a one-time stream token issued,
and the answer is <Connect><Stream> with them, so the media stream runs it like a dialed call (resumed
where it stopped if it had dropped). A number several candidates share first gets <Gather> "Am I speaking
with Ana?" (speech, or key 1 / 2), answered at POST /twilio/voice/confirm: yes connects, no asks about the
next one, neither asks once more. Unknown numbers (or nothing to run now): <Say> one sentence, <Hangup>.

A watcher per claimed call keeps its campaign attempt's lease, gives the attempt its outcome, and ends the
interview if no stream starts (the caller hung up first): failed, or partial when earlier legs stored turns.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy
from twilio.twiml.voice_response import VoiceResponse

from config.settings import Settings
from dialer.inbound import (LEASE_S, MAX_ASKS, UNKNOWN_MESSAGE, caller_number, confirm_question, confirmation,
                            inbound_owner, keep_lease)
from dialer.twilio.calls import stream_twiml, stream_url
from ivr.interviewer import first_name
from models.inbound_calls import InboundClaim, InboundMatch
from models.lifecycle import IllegalTransition, Status
from models.store import Conflict, SessionStore
from config.logging_setup import mask_phone
from server.http import STORE, ApiError
from server.channels.twilio_endpoints import require_enabled, signed_form

log = logging.getLogger("phonescreen.twilio")
VOICE_PATH = "/twilio/voice"
CONFIRM_PATH = "/twilio/voice/confirm"
CHANNEL = "twilio"
STREAM_WAIT_S = 30.0  # a claimed call whose stream has not started by then was hung up
GATHER_TIMEOUT_S = 5
NO_STREAM = "inbound_no_stream"
INBOUND_TASKS = web.AppKey("twilio_inbound_tasks", set)  # the watchers, kept from the garbage collector


def _settings(request: web.Request) -> Settings:
    settings = require_enabled(request)
    if not settings.twilio.inbound:
        raise ApiError(404, "not_found", "inbound Twilio calls are off (twilio.inbound)")
    return settings


async def _caller(request: web.Request, settings: Settings) -> tuple[str | None, str, MultiDictProxy]:
    """The caller's E.164 number (None if withheld or unusable), the call SID and the form of a signed
    webhook request."""
    form = await signed_form(request, settings, "voice webhook")
    if form.get("AccountSid") != settings.twilio.account_sid:
        raise ApiError(403, "forbidden", "the call is for another account")
    call_sid, caller = form.get("CallSid", ""), form.get("From", "")
    if not isinstance(call_sid, str) or not call_sid:
        raise ApiError(400, "bad_request", "a voice webhook needs CallSid")
    return caller_number(caller if isinstance(caller, str) else None), call_sid, form


async def voice_webhook(request: web.Request) -> web.Response:
    settings = _settings(request)
    phone, call_sid, _ = await _caller(request, settings)
    plan = request.app[STORE].inbound_plan(phone)
    if plan.confirm:
        return _twiml(_ask(settings, plan.matches[0], 1))
    return _twiml(_connect(request.app, settings, plan.matches[0] if plan.matches else None, call_sid, phone))


async def confirm_webhook(request: web.Request) -> web.Response:
    """The caller's answer to "Am I speaking with ...?" (Gather's SpeechResult or Digits; neither when the
    Gather timed out and its <Redirect> came here)."""
    settings = _settings(request)
    phone, call_sid, form = await _caller(request, settings)
    asked, tries = request.query.get("candidateId", ""), request.query.get("ask", "")
    matches = request.app[STORE].inbound_plan(phone).matches  # again: it is the store's word that counts
    index = next((n for n, m in enumerate(matches) if m.candidate_id == asked), None)
    if index is None or not tries.isdigit():
        return _twiml(_goodbye())
    speech, digits = form.get("SpeechResult", ""), form.get("Digits", "")
    answer = confirmation(speech if isinstance(speech, str) else "", digits if isinstance(digits, str) else "")
    if answer is True:
        return _twiml(_connect(request.app, settings, matches[index], call_sid, phone))
    if answer is None and int(tries) < MAX_ASKS:
        return _twiml(_ask(settings, matches[index], int(tries) + 1))
    if answer is False and index + 1 < len(matches):
        return _twiml(_ask(settings, matches[index + 1], 1))
    return _twiml(_goodbye())


def _connect(app: web.Application, settings: Settings, match: InboundMatch | None, call_sid: str,
             phone: str | None) -> str:
    """Claim the match's interview and connect its stream; the message and a hang-up if there is none."""
    store: SessionStore = app[STORE]
    extra = {"caller": mask_phone(phone) or "unknown", "call_sid": call_sid}
    owner = inbound_owner(CHANNEL)
    claim = store.claim_inbound(match.candidate_id, CHANNEL, owner, LEASE_S) if match else None
    if claim is None:
        log.info("inbound call: no interview for this number", extra=extra)
        return _goodbye()
    iid = claim.interview.id
    try:
        token = store.issue_stream_token(iid, settings.twilio.stream_token_ttl_s)
    except Conflict:  # a stream of this leg was set up already: never two calls for one interview
        log.error("inbound call: the interview has a Twilio call already", extra={**extra, "interview_id": iid})
        _end_unstreamed(store, iid, "inbound_conflict")
        return _goodbye()
    store.bind_twilio_call_sid(iid, call_sid)
    log.info("inbound call runs its interview (%s)", match.kind, extra={**extra, "interview_id": iid})
    task = asyncio.create_task(_watch(store, claim, owner, settings), name=f"twilio-inbound-{iid}")
    tasks = app[INBOUND_TASKS]
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return stream_twiml(stream_url(settings), iid, token)


async def _watch(store: SessionStore, claim: InboundClaim, owner: str, settings: Settings) -> None:
    iid = claim.interview.id
    lease = asyncio.create_task(keep_lease(store, claim, owner, max_s=STREAM_WAIT_S + settings.sip.max_call_s + 60))
    try:
        for _ in range(int(STREAM_WAIT_S)):
            await asyncio.sleep(1.0)
            call = store.twilio_call(iid)
            if (call and call.stream_started_at) or store.get_interview(iid).status != Status.IN_PROGRESS:
                break
        else:
            log.warning("inbound call: no media stream within %g s", STREAM_WAIT_S, extra={"interview_id": iid})
            _end_unstreamed(store, iid, NO_STREAM)
        await lease
    finally:
        lease.cancel()


def _end_unstreamed(store: SessionStore, iid: str, code: str) -> None:
    """An inbound interview whose media never came: failed, or partial (resumable) after earlier legs."""
    status = Status.PARTIAL if store.turns(iid) else Status.FAILED
    with contextlib.suppress(IllegalTransition):
        store.transition(iid, status, outcome_code=code, reason="the inbound call ended before the interview began")


def _ask(settings: Settings, match: InboundMatch, ask: int) -> str:
    """<Gather> the answer to "Am I speaking with <first name>?"; no answer comes back as neither."""
    action = (f"{settings.public_url}{CONFIRM_PATH}?"
              + urlencode({"candidateId": match.candidate_id, "ask": ask}))
    response = VoiceResponse()
    gather = response.gather(input="speech dtmf", num_digits=1, timeout=GATHER_TIMEOUT_S, speech_timeout="auto",
                             action=action, method="POST")
    gather.say(confirm_question(first_name(match.name)))
    response.redirect(action, method="POST")
    return str(response)


def _goodbye() -> str:
    response = VoiceResponse()
    response.say(UNKNOWN_MESSAGE)
    response.hangup()
    return str(response)


def _twiml(twiml: str) -> web.Response:
    return web.Response(text=twiml, content_type="text/xml")


async def _stop_watchers(app: web.Application) -> None:
    for task in list(app[INBOUND_TASKS]):
        task.cancel()  # their leases run out; the campaigns' recovery takes the attempts


def add_routes(app: web.Application) -> None:
    """Public like the other /twilio/* routes: Twilio's signature guards them."""
    app[INBOUND_TASKS] = set()
    app.router.add_post(VOICE_PATH, voice_webhook)
    app.router.add_post(CONFIRM_PATH, confirm_webhook)
    app.on_cleanup.append(_stop_watchers)
