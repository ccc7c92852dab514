"""A local Twilio double, written from Twilio's documentation, for the Twilio channel's tests and the
latency benchmark. It listens on 127.0.0.1 and plays both of Twilio's roles:

- the REST API: POST /2010-04-01/Accounts/{AccountSid}/Calls.json (form fields as the `twilio` library
  sends them, HTTP Basic auth with the Account SID and auth token, Twilio's JSON errors) and
  POST .../Calls/{CallSid}.json (Status=completed|canceled ends a call);
- the call itself: status callbacks signed with X-Twilio-Signature (RequestValidator.compute_signature)
  in Twilio's order (initiated, ringing, answered as in-progress, then completed or the unanswered
  status), and, once answered, the client side of a bidirectional Media Stream to the TwiML's
  <Connect><Stream url>: `connected`, `start` (with the <Parameter>s as customParameters), the callee's
  voice as 20 ms mu-law `media` paced in real time, `stop` when the call ends. What the server sends is
  buffered and "played" one 20 ms frame per tick to a SimulatedCandidate (the most ever buffered is kept:
  a backlog there makes every reply late); a `mark` is echoed only once the audio queued before it has
  been played, and `clear` empties the buffer (echoing the marks in it);
- inbound calls (`call_in`): a signed POST to the number's voice webhook, whose <Connect><Stream> it follows;
- the Messages resource: POST .../Messages.json (To, From, Body, StatusCallback) creates an SMS, then its
  signed status callbacks follow (queued, sent, then delivered, or undelivered / failed with an ErrorCode,
  as `message_fates` says for the number); a number Twilio cannot parse is refused with error 21211.

The callee at each number is a `Callee`: a simulated candidate, or busy / no-answer / failed / a machine.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime

import aiohttp
from aiohttp import WSMsgType, web
from twilio.request_validator import RequestValidator

from config.settings import Settings, TwilioSettings
from config.templates import InterviewTemplate

from dialer.simulator import (BACKCHANNEL, SPEECH_RMS, CandidateScript, SimulatedCandidate, candidate_audio, rms,
                              scheduled_interview)
from ivr.frames import AudioFrame, FrameChunker, silence
from ivr.g711 import ulaw_decode, ulaw_encode
from models.store import SessionStore

API_VERSION = "2010-04-01"
RATE = 8000
TICK_S = 0.02


@dataclass(frozen=True)
class Callee:
    """Who picks up at a number, and how the call goes."""
    script: CandidateScript | None = None  # a person: the simulated candidate speaking these answers
    answer: str = "human"  # human | busy | no-answer | failed | machine
    ring_s: float = 0.2
    inject: tuple[str | bytes, ...] = ()  # raw websocket frames sent right after `start` (robustness tests)
    drop_after_answers: int | None = None  # the socket drops (no `stop`) once this many answers are spoken
    max_call_s: float = 300.0


@dataclass
class DoubleMessage:
    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    status: str = "queued"
    callbacks: list[tuple[str, int]] = field(default_factory=list)  # (MessageStatus, our server's HTTP answer)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def resource(self, account_sid: str) -> dict:
        now = _rfc2822()
        return {"sid": self.sid, "account_sid": account_sid, "to": self.to, "from": self.from_, "body": self.body,
                "status": self.status, "direction": "outbound-api", "api_version": API_VERSION, "num_segments": "1",
                "num_media": "0", "price": None, "price_unit": "USD", "error_code": None, "error_message": None,
                "date_created": now, "date_updated": now, "date_sent": None, "messaging_service_sid": None,
                "uri": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{self.sid}.json", "subresource_uris": {}}


# What becomes of a message, by the number it is sent to: (final MessageStatus, ErrorCode or None).
MESSAGE_FATES = {"delivered": ("delivered", None), "undelivered": ("undelivered", "30003"),
                 "failed": ("failed", "30008")}


@dataclass
class DoubleCall:
    sid: str
    to: str
    from_: str
    stream_url: str | None
    stream_params: dict[str, str]
    status_callback: str | None
    events: list[str]
    machine_detection: str | None
    status: str = "queued"
    callbacks: list[tuple[str, int]] = field(default_factory=list)  # (CallStatus, our server's HTTP answer)
    candidate: SimulatedCandidate | None = None
    stream_sid: str | None = None
    media_received: int = 0
    marks_received: list[str] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    clears: int = 0
    protocol_errors: list[str] = field(default_factory=list)  # what the server sent that Twilio would reject
    heard_loud_ms: list[int] = field(default_factory=list)  # candidate media time of each loud frame it heard
    # The most audio waiting in the playout buffer at a tick, in 20 ms frames: how late what the server
    # sent then was heard (a backlog here delays every reply by as much)
    max_buffered_frames: int = 0
    stream_end: str = ""  # callee_hung_up | rest_hangup | redirected | server_closed | dropped | max_duration | refused
    answered_at: float | None = None
    hangup_requested: asyncio.Event = field(default_factory=asyncio.Event)
    dialed: str | None = None  # the number of a <Dial> the call was redirected to (a transfer)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def resource(self, account_sid: str) -> dict:
        """The Call resource as Twilio's API returns it (the fields the library reads)."""
        now = _rfc2822()
        return {"sid": self.sid, "account_sid": account_sid, "to": self.to, "to_formatted": self.to,
                "from": self.from_, "from_formatted": self.from_, "status": self.status,
                "direction": "outbound-api", "api_version": API_VERSION, "date_created": now, "date_updated": now,
                "start_time": None, "end_time": None, "duration": None, "price": None, "price_unit": "USD",
                "answered_by": None, "parent_call_sid": None, "phone_number_sid": None, "forwarded_from": None,
                "caller_name": None, "group_sid": None, "queue_time": "0", "trunk_sid": None,
                "uri": f"/{API_VERSION}/Accounts/{account_sid}/Calls/{self.sid}.json", "subresource_uris": {}}


class TwilioDouble:
    def __init__(self, *, from_number: str = "+15005550006", default: Callee = Callee()) -> None:
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.numbers = {from_number}  # numbers the account owns (a call must come from one)
        self.from_number = from_number
        self.default = default
        self.callees: dict[str, Callee] = {}
        self.calls: dict[str, DoubleCall] = {}
        self.messages: dict[str, DoubleMessage] = {}
        self.message_fates: dict[str, str] = {}  # number -> a key of MESSAGE_FATES (default: delivered)
        self.messages_refused = 0  # every create refused with a 5xx while > 0 (counts down): a Twilio outage
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        base = f"/{API_VERSION}/Accounts/{{account}}/Calls"
        app.router.add_post(base + ".json", self._create_call)
        app.router.add_post(base + "/{sid}.json", self._update_call)
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._create_message)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_ended(self, sid: str, timeout_s: float = 180.0) -> DoubleCall:
        call = self.calls[sid]
        await asyncio.wait_for(call.ended.wait(), timeout_s)
        return call

    def sign(self, url: str, params: dict[str, str]) -> str:
        return RequestValidator(self.auth_token).compute_signature(url, params)

    async def call_in(self, voice_url: str, from_: str, caller: Callee = Callee(), *,
                      timeout_s: float = 240.0) -> tuple[DoubleCall, str]:
        """An inbound call: `caller` rings the account's number from `from_`; as Twilio does, the double asks
        the number's voice webhook for TwiML (a signed POST) and follows <Connect><Stream> with the caller
        on the stream, or ends the call after anything else (<Say>, <Hangup>, <Gather> are not followed).
        Returns the call, once ended, and the TwiML the webhook gave."""
        call = DoubleCall("CA" + secrets.token_hex(16), self.from_number, from_, None, {}, None, [], None,
                          status="ringing")
        self.calls[call.sid] = call
        params = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "CallSid": call.sid,
                  "CallStatus": "ringing", "Direction": "inbound", "From": from_, "Caller": from_,
                  "To": self.from_number, "Called": self.from_number}
        headers = {"X-Twilio-Signature": self.sign(voice_url, params)}
        async with self._session.post(voice_url, data=params, headers=headers) as response:
            twiml = await response.text()
        try:
            call.stream_url, call.stream_params = _connect_stream(twiml)
        except ValueError:  # nothing to stream: the call ends after the webhook's words
            call.status = "completed"
            call.ended.set()
            return call, twiml
        if caller.script is not None:
            await asyncio.get_running_loop().run_in_executor(None, _warm, caller.script)
        call.status, call.answered_at = "in-progress", time.monotonic()
        try:
            await asyncio.wait_for(self._stream(call, caller), timeout_s)
        finally:
            call.status = "completed"
            call.ended.set()
        return call, twiml

    # -- REST -------------------------------------------------------------------------------------
    def _check_auth(self, request: web.Request) -> None:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            login = password = ""
        if scheme.lower() != "basic" or login != self.account_sid or password != self.auth_token \
                or request.match_info["account"] != self.account_sid:
            raise _error(401, 20003, "Authenticate")

    async def _create_call(self, request: web.Request) -> web.Response:
        self._check_auth(request)
        form = await request.post()
        to, from_ = form.get("To", ""), form.get("From", "")
        if not to:
            raise _error(400, 21201, "No 'To' number is specified")
        if not from_:
            raise _error(400, 21603, "A 'From' phone number is required.")
        if from_ not in self.numbers:
            raise _error(400, 21210, f"The source phone number provided, {from_}, is not yet verified for your account.")
        if not (to.startswith("+") and to[1:].isdigit() and 8 <= len(to) <= 16):
            raise _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        twiml = form.get("Twiml")
        if not twiml and not form.get("Url"):
            raise _error(400, 21205, "Url parameter is required.")
        try:
            stream_url, params = _connect_stream(twiml) if twiml else (None, {})
        except ValueError as exc:
            raise _error(400, 12100, f"Document parse failure: {exc}") from None
        events = form.getall("StatusCallbackEvent", []) or ["completed"]
        call = DoubleCall("CA" + secrets.token_hex(16), to, from_, stream_url, params, form.get("StatusCallback"),
                          list(events), form.get("MachineDetection"))
        self.calls[call.sid] = call
        task = asyncio.get_running_loop().create_task(self._run_call(call, self.callees.get(to, self.default)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response(call.resource(self.account_sid), status=201)

    async def _update_call(self, request: web.Request) -> web.Response:
        self._check_auth(request)
        call = self.calls.get(request.match_info["sid"])
        if call is None:
            raise _error(404, 20404, f"The requested resource /{API_VERSION}/Accounts/{self.account_sid}/Calls/"
                                     f"{request.match_info['sid']}.json was not found")
        form = await request.post()
        if form.get("Twiml"):  # new instructions: Twilio stops the stream and follows them (a <Dial>)
            if call.status != "in-progress":
                raise _error(400, 21220, "Call is not in-progress. Cannot redirect.")
            call.dialed = _dial_number(str(form["Twiml"]))
            call.hangup_requested.set()
            return web.json_response(call.resource(self.account_sid))
        status = form.get("Status")
        if status not in ("completed", "canceled"):
            raise _error(400, 21218, "Invalid Status: only completed and canceled are supported by this double")
        if call.status in ("completed", "busy", "no-answer", "failed", "canceled"):
            raise _error(400, 21220, "Call is not in-progress. Cannot redirect.")
        call.hangup_requested.set()
        return web.json_response(call.resource(self.account_sid))

    async def _create_message(self, request: web.Request) -> web.Response:
        self._check_auth(request)
        if self.messages_refused > 0:
            self.messages_refused -= 1
            raise _error(503, 20503, "Service unavailable")
        form = await request.post()
        to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to:
            raise _error(400, 21604, "A 'To' phone number is required.")
        if from_ not in self.numbers:
            raise _error(400, 21606, f"The From phone number {from_} is not a valid, SMS-capable number.")
        if not (to.startswith("+") and to[1:].isdigit() and 8 <= len(to) <= 16):
            raise _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not body:
            raise _error(400, 21602, "Message body is required.")
        message = DoubleMessage("SM" + secrets.token_hex(16), to, from_, str(body), form.get("StatusCallback"))
        self.messages[message.sid] = message
        task = asyncio.get_running_loop().create_task(self._deliver(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response(message.resource(self.account_sid), status=201)

    async def _deliver(self, message: DoubleMessage) -> None:
        final, error_code = MESSAGE_FATES[self.message_fates.get(message.to, "delivered")]
        try:
            await asyncio.sleep(0.05)
            if final != "failed":
                await self._message_callback(message, "sent")
            await asyncio.sleep(0.05)
            await self._message_callback(message, final, ErrorCode=error_code)
        finally:
            message.done.set()

    async def _message_callback(self, message: DoubleMessage, status: str, **extra) -> None:
        message.status = status
        if not message.status_callback:
            return
        params = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "MessageSid": message.sid,
                  "SmsSid": message.sid, "MessageStatus": status, "SmsStatus": status, "From": message.from_,
                  "To": message.to, **{k: v for k, v in extra.items() if v is not None}}
        headers = {"X-Twilio-Signature": self.sign(message.status_callback, params)}
        try:
            async with self._session.post(message.status_callback, data=params, headers=headers) as response:
                message.callbacks.append((status, response.status))
        except aiohttp.ClientError:
            message.callbacks.append((status, 0))

    # -- the call ---------------------------------------------------------------------------------
    async def _run_call(self, call: DoubleCall, callee: Callee) -> None:
        try:
            if callee.script is not None:  # synthesized now, not on the real-time path
                await asyncio.get_running_loop().run_in_executor(None, _warm, callee.script)
            await self._progress(call, "initiated", "initiated")
            await self._progress(call, "ringing", "ringing")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.hangup_requested.wait(), callee.ring_s)
            if call.hangup_requested.is_set():
                return await self._final(call, "canceled")
            if callee.answer in ("busy", "no-answer", "failed"):
                return await self._final(call, callee.answer)
            machine = callee.answer == "machine"
            answered_by = ("machine_start" if machine else "human") if call.machine_detection else None
            call.answered_at = time.monotonic()
            await self._progress(call, "in-progress", "answered", AnsweredBy=answered_by)
            if call.hangup_requested.is_set():
                call.stream_end = "rest_hangup"
            elif machine:  # a voicemail greeting nobody listens to, until someone hangs up
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.hangup_requested.wait(), 5.0)
            elif call.stream_url:
                await self._stream(call, callee)
            await self._final(call, "completed", AnsweredBy=answered_by)
        finally:
            call.ended.set()

    async def _progress(self, call: DoubleCall, status: str, event: str, **extra) -> None:
        call.status = status
        if event in call.events:
            await self._callback(call, status, **extra)

    async def _final(self, call: DoubleCall, status: str, **extra) -> None:
        call.status = status
        if status == "completed" and call.answered_at is not None:
            duration = str(int(time.monotonic() - call.answered_at))
            extra.update(CallDuration=duration, Duration=duration)
        if "completed" in call.events:  # every final status is delivered as the `completed` event
            await self._callback(call, status, **extra)

    async def _callback(self, call: DoubleCall, status: str, **extra) -> None:
        if not call.status_callback:
            return
        params = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "CallSid": call.sid,
                  "CallStatus": status, "Called": call.to, "Caller": call.from_, "Direction": "outbound-api",
                  "From": call.from_, "To": call.to, "CallbackSource": "call-progress-events",
                  "SequenceNumber": str(len(call.callbacks)), "Timestamp": _rfc2822(),
                  **{k: v for k, v in extra.items() if v is not None}}
        headers = {"X-Twilio-Signature": self.sign(call.status_callback, params)}
        try:
            async with self._session.post(call.status_callback, data=params, headers=headers) as response:
                call.callbacks.append((status, response.status))
        except aiohttp.ClientError:
            call.callbacks.append((status, 0))

    # -- the media stream -------------------------------------------------------------------------
    async def _stream(self, call: DoubleCall, callee: Callee) -> None:
        call.stream_sid = "MZ" + secrets.token_hex(16)
        try:
            ws = await self._session.ws_connect(call.stream_url, max_msg_size=1 << 20)
        except aiohttp.ClientError:
            call.stream_end = "refused"
            return
        async with ws:
            await ws.send_str(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send_str(json.dumps({
                "event": "start", "sequenceNumber": "1", "streamSid": call.stream_sid,
                "start": {"accountSid": self.account_sid, "streamSid": call.stream_sid, "callSid": call.sid,
                          "tracks": ["inbound"], "customParameters": call.stream_params,
                          "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1}}}))
            for raw in callee.inject:  # "{stream_sid}" stands for this stream's SID
                await (ws.send_bytes(raw) if isinstance(raw, bytes)
                       else ws.send_str(raw.replace("{stream_sid}", call.stream_sid)))
            playout = Playout()
            reader = asyncio.get_running_loop().create_task(self._read(ws, call, playout))
            try:
                call.stream_end = await self._talk(ws, call, callee, playout, reader)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    async def _talk(self, ws, call: DoubleCall, callee: Callee, playout: Playout, reader: asyncio.Task) -> str:
        """The callee's side in real time: every 20 ms, play one frame of what the server sent to the
        candidate and send one frame of what the candidate says."""
        candidate = call.candidate = SimulatedCandidate(callee.script or CandidateScript("silent", ()))
        started, tick, sequence = time.monotonic(), 0, 1
        stopped_talking_at: int | None = None
        while True:
            tick += 1
            await asyncio.sleep(max(0.0, started + tick * TICK_S - time.monotonic()))
            sequence += 1
            if call.hangup_requested.is_set():
                await self._stop(ws, call, sequence)
                return "redirected" if call.dialed else "rest_hangup"
            if reader.done():
                return "server_closed"
            if tick * TICK_S > callee.max_call_s:
                await self._stop(ws, call, sequence)
                return "max_duration"
            call.max_buffered_frames = max(call.max_buffered_frames, playout.frames)
            heard, reached = playout.play()
            for name in reached + playout.take_cleared():
                call.marks_echoed.append(name)
                sequence += 1
                await ws.send_str(json.dumps({"event": "mark", "sequenceNumber": str(sequence),
                                              "streamSid": call.stream_sid, "mark": {"name": name}}))
            if rms(heard) > SPEECH_RMS:
                call.heard_loud_ms.append(candidate.now_ms + 20)
            said = candidate.step(heard)
            if said is None:
                await self._stop(ws, call, sequence)
                return "callee_hung_up"
            if callee.drop_after_answers is not None and len(candidate.said) >= callee.drop_after_answers:
                last = candidate.said[-1]
                if last.end_ms == last.start_ms:  # still speaking it
                    stopped_talking_at = None
                elif stopped_talking_at is None:
                    stopped_talking_at = tick
                elif tick - stopped_talking_at >= 10:
                    await ws.close()  # the line drops: no `stop`, the socket just goes
                    return "dropped"
            payload = base64.b64encode(ulaw_encode(said.pcm)).decode("ascii")
            await ws.send_str(json.dumps({"event": "media", "sequenceNumber": str(sequence),
                                          "streamSid": call.stream_sid,
                                          "media": {"track": "inbound", "chunk": str(tick),
                                                    "timestamp": str(tick * 20), "payload": payload}}))

    async def _stop(self, ws, call: DoubleCall, sequence: int) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(json.dumps({"event": "stop", "sequenceNumber": str(sequence),
                                          "streamSid": call.stream_sid,
                                          "stop": {"accountSid": self.account_sid, "callSid": call.sid}}))
        await ws.close()

    async def _read(self, ws, call: DoubleCall, playout: Playout) -> None:
        """What the server sends: media into the playout buffer, marks behind it, clear empties it."""
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                call.protocol_errors.append(f"{message.type.name} frame")
                continue
            try:
                data = json.loads(message.data)
                event = data["event"]
                if data.get("streamSid") != call.stream_sid:
                    raise ValueError(f"{event} for streamSid {data.get('streamSid')!r}")
                if event == "media":
                    playout.add_audio(base64.b64decode(data["media"]["payload"], validate=True))
                    call.media_received += 1
                elif event == "mark":
                    name = data["mark"]["name"]
                    call.marks_received.append(name)
                    playout.add_mark(name)
                elif event == "clear":
                    call.clears += 1
                    playout.clear()
                else:
                    raise ValueError(f"unknown event {event!r}")
            except (ValueError, KeyError, TypeError) as exc:
                call.protocol_errors.append(str(exc))


class Playout:
    """Twilio's buffer of a stream's outbound audio: 20 ms frames with marks between them."""

    def __init__(self) -> None:
        self._items: deque[AudioFrame | str] = deque()
        self._chunker = FrameChunker(RATE)
        self._cleared: list[str] = []

    def add_audio(self, mulaw: bytes) -> None:
        self._items.extend(self._chunker.feed(ulaw_decode(mulaw).tobytes()))

    def add_mark(self, name: str) -> None:
        self._items.append(name)

    @property
    def frames(self) -> int:
        """Audio frames waiting to be played."""
        return sum(1 for item in self._items if not isinstance(item, str))

    def clear(self) -> None:
        """Drop the buffered audio; its marks are echoed at once."""
        self._cleared += [item for item in self._items if isinstance(item, str)]
        self._items.clear()
        self._chunker.flush()

    def take_cleared(self) -> list[str]:
        names, self._cleared = self._cleared, []
        return names

    def play(self) -> tuple[AudioFrame, list[str]]:
        """The next 20 ms the caller hears, and the marks whose audio has now all been played."""
        reached = self._marks()  # a mark right behind this frame is reached at the next tick
        return (self._items.popleft() if self._items else silence(RATE)), reached

    def _marks(self) -> list[str]:
        names = []
        while self._items and isinstance(self._items[0], str):
            names.append(self._items.popleft())
        return names


def _dial_number(twiml: str) -> str:
    """The number of <Response><Dial>NUMBER</Dial></Response>; the double follows nothing else."""
    dial = ET.fromstring(twiml).find("Dial")
    if dial is None or not (dial.text or "").strip():
        raise _error(400, 12100, "Document parse failure: only <Dial>NUMBER</Dial> is followed by this double")
    return dial.text.strip()


def _connect_stream(twiml: str) -> tuple[str, dict[str, str]]:
    """<Response><Connect><Stream url="..."><Parameter name value/>...: the stream URL and parameters."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise ValueError(str(exc)) from None
    stream = root.find("./Connect/Stream") if root.tag == "Response" else None
    if stream is None or not stream.get("url", "").startswith(("wss://", "ws://")):
        raise ValueError("expected <Response><Connect><Stream url=\"wss://...\">")
    return stream.get("url"), {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}


def _warm(script: CandidateScript) -> None:
    for text in (*script.answers, BACKCHANNEL):
        candidate_audio(text, RATE)


def _error(status: int, code: int, message: str) -> web.HTTPException:
    body = json.dumps({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                       "status": status})
    return _HTTP_ERRORS[status](text=body, content_type="application/json")


_HTTP_ERRORS = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 404: web.HTTPNotFound,
                503: web.HTTPServiceUnavailable}


def _rfc2822() -> str:
    return format_datetime(datetime.now(timezone.utc))


def twilio_interview(store: SessionStore, template: InterviewTemplate, phone: str,
                     name: str = "Ana Ruiz") -> str:
    """A scheduled Twilio interview for a candidate at `phone`; returns its id."""
    return scheduled_interview(store, template, channel="twilio", name=name, phone=phone)


def twilio_settings(base: Settings, double: TwilioDouble, port: int, **twilio: object) -> Settings:
    """`base` with the Twilio channel enabled against the double, and the server's public URL on `port`."""
    server = dataclasses.replace(base.server, port=port, public_url=f"http://127.0.0.1:{port}")
    account = TwilioSettings(enabled=True, account_sid=double.account_sid, auth_token=double.auth_token,
                             from_number=double.from_number, api_base_url=double.url)
    return dataclasses.replace(base, server=server, twilio=dataclasses.replace(account, **twilio))
