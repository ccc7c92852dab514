"""One SIP call (outbound from a media worker, or inbound on a test phone) and its Leg.

pjsua2 callbacks read what they need from the call inside the callback (after DISCONNECTED `getInfo`
is no longer safe) and hand it to the event loop. The Call must be deleted before `libDestroy()`;
`release()` unlinks it once the call is over and gives its FramePort back to the process's pool.
"""
from __future__ import annotations

import asyncio
import collections
import logging

import pjsua2 as pj

from dialer.leg import Dtmf, Leg, LegEvent, LineEnded
from dialer.sip.media import RATE, FramePort, ports
from ivr.frames import AudioFrame

log = logging.getLogger("phonescreen.sip")
TRANSFER_TIMEOUT_S = 25.0  # for the transfer target to answer the candidate's new call
MAX_QUEUED_FRAMES = 150  # 3 s of received audio: beyond it the loop is stalled; older frames are dropped


class SipCall(pj.Call):
    def __init__(self, account: pj.Account, loop: asyncio.AbstractEventLoop, call_id: int = pj.PJSUA_INVALID_ID,
                 label: str = "") -> None:
        super().__init__(account, call_id)
        self.loop, self.label = loop, label
        self.leg = SipLeg(self)
        self.port: FramePort | None = ports.take(loop, self.leg.on_audio)
        self.state = pj.PJSIP_INV_STATE_NULL
        self.status_code = 0  # the last SIP status of the INVITE (180, 200, 486 ...)
        self.reason = ""
        self.remote_uri = ""
        self.local_uri = ""
        self.confirmed = asyncio.Event()
        self.early = asyncio.Event()  # 180/183 seen
        self.disconnected = asyncio.Event()
        self.audio_index: int | None = None  # the call's active audio media, once SDP is negotiated
        self.transfer_result: asyncio.Future[bool] | None = None  # of a REFER we sent: True once put through

    # -- pjsua2 callbacks -------------------------------------------------------------------------------
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        self._on_loop(self._state, info.state, info.lastStatusCode, info.lastReason, info.remoteUri, info.localUri)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE and self.port:
                self.audio_index = index
                audio = self.getAudioMedia(index)
                audio.startTransmit(self.port)
                self.port.startTransmit(audio)

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        """Our REFER's progress: the NOTIFYs of the candidate's call to the transfer target (or the REFER's
        own failure)."""
        self._on_loop(self._transfer_status, prm.statusCode, bool(prm.finalNotify))

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # RFC 4733 events and SIP INFO alike
        self._on_loop(self.leg.on_signal, Dtmf(str(prm.digit)))

    def _on_loop(self, fn, *args) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass  # the loop has closed: the process is shutting down

    # -- the event loop -----------------------------------------------------------------------------------
    def _state(self, state: int, code: int, reason: str, remote_uri: str, local_uri: str) -> None:
        self.state, self.reason = state, reason
        self.remote_uri, self.local_uri = remote_uri or self.remote_uri, local_uri or self.local_uri
        if code:
            self.status_code = code
        if state == pj.PJSIP_INV_STATE_EARLY and code in (180, 183):
            self.early.set()
        elif state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.confirmed.set()
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected.set()
            self.leg.on_signal(LineEnded("remote_hangup" if not self.leg.hanging_up else "local_hangup"))

    def _transfer_status(self, code: int, final: bool) -> None:
        if self.transfer_result is not None and not self.transfer_result.done() and (final or code >= 300):
            self.transfer_result.set_result(200 <= code < 300)

    def rtp_packets_received(self) -> int:
        """RTP packets (audio and telephone events) received on the call's audio stream so far."""
        if self.audio_index is None or self.disconnected.is_set():
            return 0
        try:
            return self.getStreamStat(self.audio_index).rtcp.rxStat.pkt
        except pj.Error:  # the media is being torn down
            return 0

    async def watch_rtp(self, timeout_s: float, interval_s: float = 0.25) -> None:
        """End the leg with LineEnded("rtp_timeout") once no RTP packet has arrived for `timeout_s`.
        pjsip's conference bridge keeps handing the FramePort (silent) frames after the far end stops
        sending, so the bridge's own media timeout cannot see the gap; the stream's packet count can."""
        last, quiet_since = -1, self.loop.time()
        while self.leg.ended is None:
            await asyncio.sleep(interval_s)
            count, now = self.rtp_packets_received(), self.loop.time()
            if count != last:
                last, quiet_since = count, now
            elif now - quiet_since >= timeout_s:
                log.info("no RTP for %.1f s; ending the call", now - quiet_since, extra={"interview_id": self.label})
                self.leg.on_signal(LineEnded("rtp_timeout"))
                return

    def hang_up_now(self, status_code: int = 0) -> None:
        """BYE if answered, CANCEL if still ringing, or a final response (e.g. 486) to an incoming call."""
        if self.disconnected.is_set():
            return
        prm = pj.CallOpParam(True)
        if status_code:
            prm.statusCode = status_code
        try:
            self.hangup(prm)
        except pj.Error as exc:  # already terminating
            log.debug("hangup: %s", exc.info())

    def answer_now(self, status_code: int) -> None:
        prm = pj.CallOpParam(True)
        prm.statusCode = status_code
        self.answer(prm)

    def release(self) -> None:
        """Once the call is over: unlink call and leg so plain reference counting frees the Call now, before
        `libDestroy()` (a Call freed after it trips an assertion in pjsua); the port rests in the pool."""
        port, self.port = self.port, None
        if port is not None:
            ports.give_back(port)
        self.leg.call = None


class SipLeg(Leg):
    """What the voice engine sees of a SIP call: frames from the FramePort, DTMF, the end of the line."""
    sample_rate = RATE

    def __init__(self, call: SipCall) -> None:
        self.call: SipCall | None = call  # None once the call is released
        self.events: collections.deque[LegEvent] = collections.deque()
        self.wakeup = asyncio.Event()
        self.frames_queued = 0
        self.dropped = 0
        self.frames_received = 0
        self.hanging_up = False
        self.ended: LineEnded | None = None

    def on_audio(self, frame: AudioFrame) -> None:
        if self.ended:
            return
        self.frames_received += 1
        if self.frames_queued >= MAX_QUEUED_FRAMES:
            self._drop_oldest_frame()
        self.events.append(frame)
        self.frames_queued += 1
        self.wakeup.set()

    def on_signal(self, event: Dtmf | LineEnded) -> None:
        if self.ended:
            return
        if isinstance(event, LineEnded):
            self.ended = event
        self.events.append(event)
        self.wakeup.set()

    def _drop_oldest_frame(self) -> None:
        for index, event in enumerate(self.events):
            if isinstance(event, AudioFrame):
                del self.events[index]
                self.frames_queued -= 1
                self.dropped += 1
                if self.dropped in (1, 100, 1000):
                    log.warning("event loop behind the media clock: %d frames dropped", self.dropped)
                return

    async def receive(self) -> LegEvent:
        while not self.events:
            if self.ended is not None:
                return self.ended
            self.wakeup.clear()
            await self.wakeup.wait()
        event = self.events.popleft()
        if isinstance(event, AudioFrame):
            self.frames_queued -= 1
        return event

    def send(self, frame: AudioFrame) -> None:
        if self.call is not None and self.call.port is not None:
            self.call.port.play(frame)

    def frames_to_send(self) -> int:
        return self.call.port.frames_wanted() if self.call is not None and self.call.port is not None else 1

    def clear(self) -> None:
        if self.call is not None and self.call.port is not None:
            self.call.port.clear()

    async def transfer(self) -> bool:
        """REFER the candidate to `transfer_target`; True once their call to it is answered (the final
        NOTIFY carries 2xx). A refused REFER, a failed or unanswered target: False."""
        call = self.call
        if call is None or not self.transfer_target or call.disconnected.is_set():
            return False
        await self._drain(2.0)  # "Please hold." is heard before the REFER
        call.transfer_result = call.loop.create_future()
        try:
            call.xfer(self.transfer_target, pj.CallOpParam(True))
        except pj.Error as exc:
            log.warning("transfer refused: %s", exc.reason, extra={"interview_id": call.label})
            return False
        try:
            return await asyncio.wait_for(call.transfer_result, TRANSFER_TIMEOUT_S)
        except TimeoutError:
            return False

    async def _drain(self, drain_s: float) -> None:
        """Until the queued audio has played (bounded)."""
        call = self.call
        deadline = call.loop.time() + drain_s
        while call.port is not None and call.port.outbound and call.loop.time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # the conference bridge and jitter buffer hold a few more frames

    async def hang_up(self, reason: str, drain_s: float = 2.0) -> None:
        """Let the queued audio (the goodbye's last frames) play, then BYE."""
        call = self.call
        if call is None or self.hanging_up or call.disconnected.is_set():
            return
        self.hanging_up = True
        await self._drain(drain_s)
        call.hang_up_now()
