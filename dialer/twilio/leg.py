"""TwilioLeg: one interview's audio over a bidirectional Twilio Media Stream (<Connect><Stream>).

Twilio paces the candidate's side in real time (20 ms of mu-law per `media` message) and plays what we
send from a buffer, in real time and no faster. So sending follows the wall clock, not the count of
frames received: for each frame received the leg asks for just enough to keep CLOCKED_LEAD_FRAMES of audio ahead
of what Twilio has played (`dialer/send_lead.py`). Frames that arrive in a burst after our event loop
stalled (a model loading, another call's work) add nothing to that buffer, so a stall never makes every
later reply late; a `clear` empties the buffer and the lead is built again from then. After each stretch
of AI speech the leg sends a `mark`; Twilio echoes it once the audio before it has been played
to the caller, so the leg knows what was really heard: `hang_up` waits for the goodbye's mark before it
ends the call through REST. A barge-in sends `clear` (Twilio drops its buffer and echoes the marks in
it). Malformed or foreign messages are logged and dropped; too many of them end the stream.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Awaitable, Callable

from aiohttp import WSMsgType, web

from dialer.leg import Dtmf, Leg, LegEvent, LineEnded
from dialer.send_lead import PlayoutClock
from dialer.twilio import media_streams as wire
from dialer.twilio.calls import dial_twiml
from ivr.frames import AudioFrame, FrameChunker, silence
from ivr.g711 import ulaw_decode, ulaw_encode

log = logging.getLogger("phonescreen.twilio")
RATE = 8000  # Media Streams carry mu-law at 8 kHz
MAX_BAD_MESSAGES = 50  # then the far end is not Twilio, or broken: the stream ends (the interview is partial)
MAX_QUEUED_MESSAGES = 1500  # 30 s of audio not yet written to the socket: beyond that the socket is dead
PLAYED_WAIT_S = 5.0  # at most this long for Twilio to confirm the last words were played before hanging up


class TwilioLeg(Leg):
    sample_rate = RATE

    def __init__(self, ws: web.WebSocketResponse, stream_sid: str, *, end_call: Callable[[], Awaitable[None]],
                 interview_id: str = "", redirect: Callable[[str], Awaitable[None]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`end_call` ends the call through REST; `redirect(twiml)` gives it new instructions (a transfer);
        `clock` is the wall clock Twilio plays our audio by (tests pass their own)."""
        self.stream_sid = stream_sid
        self.marks_pending: list[str] = []  # sent, not yet echoed: audio Twilio still has to play
        self.marks_played: list[str] = []  # echoed: played to the caller (or dropped by a clear)
        self.clears = 0
        self.rejected = 0  # messages dropped as malformed or foreign
        self._ws, self._end_call, self._extra = ws, end_call, {"interview_id": interview_id}
        self._redirect = redirect
        self._handed_over = False  # transferred: the call goes on without us
        self._frames: deque[AudioFrame] = deque()
        self._chunker = FrameChunker(RATE)
        self._ended: LineEnded | None = None
        self._hung_up = False
        self._speaking = False  # the last frame sent was AI speech (not the idle line)
        self.playout = PlayoutClock(clock)  # what Twilio still has to play of what we sent
        self._marks_made = 0
        self._outbox: deque[tuple[str, str | None]] = deque()  # (message, the mark it carries)
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._writer = asyncio.get_running_loop().create_task(self._write(), name=f"twilio-out-{interview_id}")

    # -- from Twilio --------------------------------------------------------------------------------
    async def receive(self) -> LegEvent:
        while not self._frames:
            if self._ended is not None:
                return self._ended
            event = self._handle(await self._ws.receive())
            if event is not None:
                return event
        return self._frames.popleft()

    def _handle(self, message) -> Dtmf | LineEnded | None:
        if message.type == WSMsgType.TEXT:
            try:
                parsed = wire.parse_message(message.data)
            except wire.StreamMessageError as exc:
                return self._reject(str(exc))
            return self._on_message(parsed)
        if message.type == WSMsgType.BINARY:
            return self._reject("binary frame (Media Streams are JSON text)")
        return self._line_ended("stream_closed")  # CLOSE, CLOSING, CLOSED or ERROR: the socket is gone

    def _on_message(self, message: wire.InboundMessage) -> Dtmf | LineEnded | None:
        if isinstance(message, (wire.Connected, wire.Start)):
            return self._reject(f"unexpected {type(message).__name__.lower()} on a running stream")
        if message.stream_sid != self.stream_sid:
            return self._reject("message for another streamSid")
        if isinstance(message, wire.Media):
            if message.track not in ("inbound", "inbound_track"):
                return self._reject(f"media on track {message.track[:16]!r}")
            self._frames.extend(self._chunker.feed(ulaw_decode(message.payload).tobytes()))
            return None
        if isinstance(message, wire.Dtmf):
            return Dtmf(message.digit)
        if isinstance(message, wire.Mark):
            self._on_mark(message.name)
            return None
        return self._line_ended("remote_hangup")  # stop: the call ended or the stream was stopped

    def _on_mark(self, name: str) -> None:
        if name not in self.marks_pending:
            log.debug("twilio stream: echo of an unknown mark", extra=self._extra)
            return
        # Marks come back in the order they were sent: everything before this one has been played too.
        done = self.marks_pending[:self.marks_pending.index(name) + 1]
        del self.marks_pending[:len(done)]
        self.marks_played += done

    def _reject(self, reason: str) -> LineEnded | None:
        self.rejected += 1
        log.warning("twilio stream: dropped a message: %s", reason, extra=self._extra)
        if self.rejected >= MAX_BAD_MESSAGES:
            log.error("twilio stream: %d bad messages, ending the stream", self.rejected, extra=self._extra)
            return self._line_ended("protocol_errors")
        return None

    def _line_ended(self, reason: str) -> LineEnded:
        if self._ended is None:
            self._ended = LineEnded(reason)
        return self._ended

    # -- to Twilio ----------------------------------------------------------------------------------
    def frames_to_send(self) -> int:
        return self.playout.frames_wanted()

    def send(self, frame: AudioFrame) -> None:
        if self._ended is not None or self._hung_up:
            return
        # The playback hands out the one shared silence frame whenever it has nothing to play, so this
        # tells the idle line from a pause inside an utterance (which must be played, not skipped).
        if frame is silence(RATE):
            self._mark_end_of_speech()
        else:
            self._speaking = True
        self._post(wire.media_message(self.stream_sid, ulaw_encode(frame.pcm)))
        self.playout.sent()

    def clear(self) -> None:
        if self._ended is not None or self._hung_up:
            return
        for _, mark in self._outbox:  # not written yet: Twilio will never echo these
            if mark is not None:
                self.marks_pending.remove(mark)
        self._outbox.clear()
        self._speaking = False
        self.playout.clear()  # Twilio drops its buffer: the lead is built again from now
        self.clears += 1
        self._post(wire.clear_message(self.stream_sid))

    def _mark_end_of_speech(self) -> None:
        if self._speaking:
            self._speaking = False
            self._marks_made += 1
            name = f"ai-{self._marks_made}"
            self.marks_pending.append(name)
            self._post(wire.mark_message(self.stream_sid, name), mark=name)

    def _post(self, text: str, mark: str | None = None) -> None:
        if len(self._outbox) >= MAX_QUEUED_MESSAGES:
            if len(self._outbox) == MAX_QUEUED_MESSAGES:
                log.error("twilio stream: the socket is not draining; dropping audio", extra=self._extra)
                self._outbox.append(("", None))  # logged once; the empty entry is skipped by the writer
            if mark is not None:
                self.marks_pending.remove(mark)
            return
        self._outbox.append((text, mark))
        self._flushed.clear()
        self._wake.set()

    async def _write(self) -> None:
        """The one task that writes to the socket, so messages go out whole and in order."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._outbox:
                    text, _ = self._outbox.popleft()
                    if text:
                        await self._ws.send_str(text)
                self._flushed.set()
        except (ConnectionError, RuntimeError) as exc:  # the socket closed under us: receive() sees it too
            log.info("twilio stream: cannot write (%s)", type(exc).__name__, extra=self._extra)
        finally:
            self._outbox.clear()
            self._flushed.set()

    # -- the end ------------------------------------------------------------------------------------
    async def transfer(self) -> bool:
        """Once Twilio has played "Please hold.", redirect the call to <Dial> the recruiters' number."""
        if self._redirect is None or not self.transfer_target or self._ended is not None:
            return False
        self._mark_end_of_speech()
        # The bridge still reads the stream (marks come back through receive()): wait on them, not the socket.
        deadline = time.monotonic() + PLAYED_WAIT_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flushed.wait(), PLAYED_WAIT_S)
        while self.marks_pending and self._ended is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        try:
            await self._redirect(dial_twiml(self.transfer_target))
        except Exception as exc:  # the interview falls back to a recruiter's callback
            log.warning("twilio: could not put the call through: %s", exc, extra=self._extra)
            return False
        self._handed_over = True
        return True

    async def hang_up(self, reason: str) -> None:
        """Let Twilio play what it has (until the last mark comes back, bounded), then end the call
        through REST and close the stream. After a transfer the call is not ours to end: only the stream
        is closed."""
        if self._hung_up:
            return
        self._hung_up = True
        if self._handed_over:
            await self.close()
            return
        if self._ended is None:
            self._mark_end_of_speech()
            await self._wait_played(PLAYED_WAIT_S)
        try:
            await self._end_call()
        except Exception as exc:  # the call may already be over; the interview is stored either way
            log.warning("twilio: could not end the call: %s", exc, extra=self._extra)
        await self.close()

    async def _wait_played(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flushed.wait(), timeout_s)
        while self.marks_pending and self._ended is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.info("twilio stream: %d marks not echoed before hang-up", len(self.marks_pending),
                         extra=self._extra)
                return
            try:
                message = await asyncio.wait_for(self._ws.receive(), remaining)
            except TimeoutError:
                continue
            self._handle(message)  # marks are noted; the candidate's audio no longer matters
            self._frames.clear()

    async def close(self) -> None:
        """Stop writing and close the socket. Idempotent."""
        self._line_ended("local_hangup")
        if not self._writer.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flushed.wait(), 1.0)
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if not self._ws.closed:
            await self._ws.close()
