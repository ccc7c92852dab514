"""The bridge between pjsip's media thread and asyncio, one FramePort per call.

pjsip's conference bridge calls `onFrameReceived` (the candidate's audio) and `onFrameRequested` (what we
play) every 20 ms on its clock thread, holding the GIL. Both stay tiny: received PCM is handed to the
event loop with `call_soon_threadsafe`; frames to play are popped from a deque the loop appends to.
"""
from __future__ import annotations

import asyncio
import collections
from typing import Callable

import pjsua2 as pj

from ivr.frames import AudioFrame, samples_per_frame

RATE = 8000
FRAME_BYTES = 2 * samples_per_frame(RATE)
MAX_OUTBOUND_FRAMES = 50  # 1 s; the bridge sends one frame per frame received, so it stays near 1


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

    def clear(self) -> None:
        self.outbound.clear()
