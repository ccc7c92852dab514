"""The bridge between pjsip's media thread and asyncio, one FramePort per call.

pjsip's conference bridge calls `onFrameReceived` (the candidate's audio) and `onFrameRequested` (what we
play) every 20 ms on its clock thread, holding the GIL. Both stay tiny: received PCM is handed to the
event loop with `call_soon_threadsafe`; frames to play are popped from a deque the loop appends to.

Ports are reused, never destroyed while the library runs: since pjsip 2.15 the bridge removes a port
asynchronously, on its next clock tick, so a port freed on the event loop can still be read by the clock
thread (a SIGSEGV seen about once in five 30-call campaigns). `PortPool` hands a finished call's port to
a later call once the bridge has long let go of the old call's audio.
"""
from __future__ import annotations

import asyncio
import collections
import time
from typing import Callable

import pjsua2 as pj

from dialer.send_lead import SEND_LEAD_FRAMES, frames_short
from ivr.frames import AudioFrame, samples_per_frame

RATE = 8000
FRAME_BYTES = 2 * samples_per_frame(RATE)
MAX_OUTBOUND_FRAMES = 50  # 1 s; the bridge keeps SEND_LEAD_FRAMES queued, so it stays near that
REUSE_AFTER_S = 1.0  # many bridge ticks: the old call's stream is disconnected from the port by then


def audio_format() -> pj.MediaFormatAudio:
    fmt = pj.MediaFormatAudio()
    fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, 20_000, 16)
    return fmt


class FramePort(pj.AudioMediaPort):
    def __init__(self, name: str, loop: asyncio.AbstractEventLoop, on_audio: Callable[[AudioFrame], None]) -> None:
        """`on_audio` runs on the event loop for every received frame."""
        super().__init__()
        self.loop, self.on_audio = loop, on_audio
        self.outbound: collections.deque[bytes] = collections.deque(maxlen=MAX_OUTBOUND_FRAMES)
        self.createPort(name, audio_format())

    # -- pjsip's media thread -------------------------------------------------------------------------
    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO or frame.size != FRAME_BYTES:
            return  # no RTP this tick: nothing to deliver, so the leg's media timeout can notice
        try:
            self.loop.call_soon_threadsafe(self.on_audio, AudioFrame(bytes(frame.buf), RATE))
        except RuntimeError:
            pass  # the loop has closed: the process is shutting down

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        try:
            pcm = self.outbound.popleft()
        except IndexError:
            return  # nothing queued: pjsip plays silence
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(pcm)
        frame.size = len(pcm)

    # -- the event loop --------------------------------------------------------------------------------
    def play(self, frame: AudioFrame) -> None:
        self.outbound.append(frame.pcm)

    def frames_wanted(self) -> int:
        """Frames to queue now to keep the lead (none while the queue is at it or above)."""
        return frames_short(len(self.outbound), SEND_LEAD_FRAMES)  # pjsip pops one per tick: the queue is exact

    def clear(self) -> None:
        self.outbound.clear()


def _ignore_audio(frame: AudioFrame) -> None:
    """A resting port's audio goes nowhere (the media thread may still deliver a frame of its last call)."""


class PortPool:
    """The FramePorts of one process: a call takes one and gives it back when it is over; `drop_all()`
    frees them all just before `libDestroy()`, when no clock tick can reach them any more."""

    def __init__(self) -> None:
        self._resting: collections.deque[tuple[float, FramePort]] = collections.deque()
        self._made = 0

    def take(self, loop: asyncio.AbstractEventLoop, on_audio: Callable[[AudioFrame], None]) -> FramePort:
        if self._resting and time.monotonic() - self._resting[0][0] >= REUSE_AFTER_S:
            _, port = self._resting.popleft()
            port.loop, port.on_audio = loop, on_audio
            port.outbound.clear()
            return port
        self._made += 1
        return FramePort(f"call-{self._made}", loop, on_audio)

    def give_back(self, port: FramePort) -> None:
        port.on_audio = _ignore_audio  # also breaks the port -> leg -> call cycle
        port.outbound.clear()
        self._resting.append((time.monotonic(), port))

    @property
    def size(self) -> int:
        """Ports made so far (resting or in use)."""
        return self._made

    def drop_all(self) -> None:
        self._resting.clear()


ports = PortPool()  # one pjsua2 library per process, so one pool
