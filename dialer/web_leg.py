"""The web leg: a candidate's browser on a WebSocket (server/channels/web_channel.py admits it, then hands it here).

Wire format, both ways. Binary messages are PCM16 little-endian mono at 16 kHz, of any whole-sample
length; they are re-cut here into 20 ms frames. Text messages are JSON control. The browser may send
{"type": "hangup"} (the candidate left) and {"type": "dtmf", "digit": "1"}; we send {"type": "state",
"state": ...}, {"type": "clear"} when the candidate barges in (drop what is buffered), {"type":
"error", ...} before closing on a broken message, and {"type": "ended", "status": ...} at the end.

Nothing here grows with a misbehaving peer: a message is at most MAX_MESSAGE_BYTES (aiohttp refuses
larger ones), the chunker holds under one frame, and at most MAX_OUTBOX items wait to be sent.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from dialer.leg import Dtmf, Leg, LegEvent, LineEnded
from dialer.send_lead import PlayoutClock
from ivr.frames import AudioFrame, FrameChunker

log = logging.getLogger("phonescreen.dialer")

WEB_RATE = 16000
MAX_MESSAGE_BYTES = 64 * 1024  # 2 s of audio in one message is already far more than a browser sends
MAX_OUTBOX = 250  # 5 s of 20 ms frames: a browser that stops reading loses audio, the server no memory
DTMF_DIGITS = frozenset("0123456789*#ABCD")
_CLOSE = object()  # outbox sentinel: everything before it is sent, then the writer stops


class WebLeg(Leg):
    sample_rate = WEB_RATE

    def __init__(self, ws: web.WebSocketResponse, interview_id: str = "") -> None:
        self._ws = ws
        self._interview_id = interview_id
        self._chunker = FrameChunker(WEB_RATE)
        self._inbox: deque[LegEvent] = deque()  # frames cut from the last message, at most one message's worth
        self._ended: LineEnded | None = None
        self._close_code = WSCloseCode.OK
        self._outbox: deque[Any] = deque()
        self._wake = asyncio.Event()
        self._dropped = 0
        self._hung_up = False
        self.playout = PlayoutClock()  # what the browser still has to play of what we sent
        self._writer = asyncio.create_task(self._write_forever(), name=f"web-leg-writer-{interview_id}")

    # -- the candidate's side ------------------------------------------------------------------------
    async def receive(self) -> LegEvent:
        while not self._inbox:
            if self._ended is not None:
                return self._ended
            self._take(await self._ws.receive())
        return self._inbox.popleft()

    def _take(self, message: Any) -> None:
        if message.type == WSMsgType.BINARY:
            if len(message.data) % 2:
                self._refuse("audio must be PCM16: a message had an odd number of bytes")
                return
            self._inbox.extend(self._chunker.feed(message.data))
        elif message.type == WSMsgType.TEXT:
            self._take_control(message.data)
        elif message.type == WSMsgType.ERROR:
            # aiohttp has already answered (e.g. 1009 for a message over MAX_MESSAGE_BYTES) and closes.
            log.warning("web leg stream error: %s", message.data, extra={"interview_id": self._interview_id})
            self._end("stream_error")
        else:  # CLOSE, CLOSING, CLOSED
            self._end("stream_closed")

    def _take_control(self, text: str) -> None:
        try:
            command = json.loads(text)
        except ValueError:
            self._refuse("control messages must be JSON")
            return
        kind = command.get("type") if isinstance(command, dict) else None
        if kind == "hangup":
            self._end("remote_hangup")
        elif kind == "dtmf" and command.get("digit") in DTMF_DIGITS:
            self._inbox.append(Dtmf(command["digit"]))
        else:
            self._refuse("unknown control message; expected {\"type\": \"hangup\"} or {\"type\": \"dtmf\", "
                         "\"digit\": \"0\"-\"9\", \"*\", \"#\"}")

    def _refuse(self, message: str) -> None:
        """A broken message: tell the browser why and close. The interview ends partial with every turn
        so far stored (the bridge treats it as the line dropping)."""
        log.warning("web leg closed on a bad message: %s", message, extra={"interview_id": self._interview_id})
        self._outbox.clear()
        self._outbox.extend(({"type": "error", "code": "bad_message", "message": message}, _CLOSE))
        self._wake.set()
        self._end("protocol_error", close_code=WSCloseCode.UNSUPPORTED_DATA)

    def _end(self, reason: str, close_code: int = WSCloseCode.OK) -> None:
        if self._ended is None:
            self._ended, self._close_code = LineEnded(reason), close_code
        self._inbox.clear()

    # -- our side ------------------------------------------------------------------------------------
    def frames_to_send(self) -> int:
        return self.playout.frames_wanted()  # the browser primes 40 ms more before it plays

    def send(self, frame: AudioFrame) -> None:
        if self._ended is not None or self._hung_up:
            return
        if len(self._outbox) >= MAX_OUTBOX:
            self._dropped += 1
            if self._dropped == 1:
                log.warning("browser is not reading; dropping audio", extra={"interview_id": self._interview_id})
            return
        self._outbox.append(frame.pcm)
        self.playout.sent()
        self._wake.set()

    def notify(self, message: dict[str, Any]) -> None:
        """Queue a JSON control message, in order with the audio around it."""
        if self._ended is None and not self._hung_up:
            self._outbox.append(message)
            self._wake.set()

    def clear(self) -> None:
        kept = [item for item in self._outbox if not isinstance(item, bytes)]
        self._outbox.clear()
        self._outbox.extend(kept)
        self.playout.clear()
        self.notify({"type": "clear"})

    async def hang_up(self, reason: str) -> None:
        """Send what is queued, then {"type": "ended"}, then close; the browser plays out its buffer."""
        if self._hung_up:
            return
        self.notify({"type": "ended", "status": reason})
        self._hung_up = True
        self._outbox.append(_CLOSE)
        self._wake.set()
        await self.close()

    async def close(self, timeout_s: float = 5.0) -> None:
        """Let the writer finish (bounded), then close the socket. Safe to call more than once."""
        if not self._writer.done():
            if not self._outbox or self._outbox[-1] is not _CLOSE:
                self._outbox.append(_CLOSE)
                self._wake.set()
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._writer), timeout_s)
            self._writer.cancel()
        if not self._ws.closed:
            with contextlib.suppress(Exception):
                await self._ws.close(code=self._close_code)

    async def _write_forever(self) -> None:
        """Drain the outbox in order; consecutive audio frames go out as one binary message."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._outbox:
                    item = self._outbox.popleft()
                    if item is _CLOSE:
                        return
                    if isinstance(item, bytes):
                        run = [item]
                        while self._outbox and isinstance(self._outbox[0], bytes):
                            run.append(self._outbox.popleft())
                        await self._ws.send_bytes(b"".join(run))
                    else:
                        await self._ws.send_str(json.dumps(item))
        except (ConnectionError, RuntimeError) as exc:  # the browser went away mid-send
            log.info("web leg send failed: %s", exc, extra={"interview_id": self._interview_id})
            self._end("stream_closed")
