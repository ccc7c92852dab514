"""A short exchange on a leg before (or instead of) an interview: say a fixed phrase (Piper, through the
process's phrase cache) and hear a short answer (WebRTC VAD and the endpointer, then speech-to-text), or a
key. Used by inbound calls ("Am I speaking with Ana?", the message to an unknown number). Paced by the
frames the caller sends, like the voicemail message; every wait is bounded."""
from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass

import numpy as np

from dialer.leg import Dtmf, Leg, LineEnded
from ivr.engines import VoiceEngines
from ivr.frames import AudioFrame, frames_of
from ivr.resample import resample
from ivr.vad import Endpointer, EndpointConfig, SpeechStarted, TurnEnded, WebRtcVoiceActivity

FRAME_WAIT_S = 5.0  # no frame at all this long: the line is dead
PREROLL_FRAMES = 15  # 300 ms before the speech onset, as the session keeps
VAD_AGGRESSIVENESS = 2


@dataclass(frozen=True)
class Heard:
    text: str = ""  # what was said ("" for silence or a key)
    digit: str = ""  # a key pressed


async def _event(leg: Leg) -> AudioFrame | Dtmf | None:
    """The leg's next frame or key; None once the line has ended or gone quiet."""
    try:
        event = await asyncio.wait_for(leg.receive(), FRAME_WAIT_S)
    except TimeoutError:
        return None
    return None if isinstance(event, LineEnded) else event


async def say(leg: Leg, engines: VoiceEngines, text: str) -> bool:
    """Speak `text`, one frame per frame received; False if the line ended first. Keys are ignored."""
    audio = await _phrase(leg, engines, text)
    for frame in frames_of(audio, leg.sample_rate):
        if await _event(leg) is None:
            return False
        leg.send(frame)
    return True


async def ask(leg: Leg, engines: VoiceEngines, text: str) -> Heard | None:
    """Say `text` and hear the answer (see `hear`); a key pressed while it plays is the answer at once."""
    audio = await _phrase(leg, engines, text)
    for frame in frames_of(audio, leg.sample_rate):
        event = await _event(leg)
        if event is None:
            return None
        if isinstance(event, Dtmf):
            leg.clear()
            return Heard(digit=event.digit)
        leg.send(frame)
    return await hear(leg, engines)


async def _phrase(leg: Leg, engines: VoiceEngines, text: str) -> np.ndarray:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(engines.executor, engines.phrases(leg.sample_rate).get, text)


async def hear(leg: Leg, engines: VoiceEngines, *, wait_s: float = 6.0, max_s: float = 6.0) -> Heard | None:
    """The caller's next short answer: their words, or a key. Heard() when nothing was said within
    `wait_s`; None when the line ended. Speech is cut at `max_s`."""
    vad = WebRtcVoiceActivity(VAD_AGGRESSIVENESS, leg.sample_rate)
    endpointer = Endpointer(EndpointConfig())
    preroll: collections.deque[AudioFrame] = collections.deque(maxlen=PREROLL_FRAMES)
    speech: list[AudioFrame] | None = None
    waited_ms = 0
    while True:
        event = await _event(leg)
        if event is None:
            return None
        if isinstance(event, Dtmf):
            return Heard(digit=event.digit)
        turn = endpointer.update(vad.is_speech(event))
        if speech is None:
            preroll.append(event)
            waited_ms += 20
            if isinstance(turn, SpeechStarted):
                speech = list(preroll)
            elif waited_ms >= wait_s * 1000:
                return Heard()
            continue
        speech.append(event)
        if isinstance(turn, TurnEnded) or len(speech) * 20 >= max_s * 1000:
            return Heard(text=await _transcribe(engines, speech))
        if not endpointer.in_speech:  # a click or a breath, too short for a turn: listen on
            speech = None


async def _transcribe(engines: VoiceEngines, speech: list[AudioFrame]) -> str:
    def run() -> str:
        rate = engines.stt.sample_rate
        pcm = resample(np.frombuffer(b"".join(f.pcm for f in speech), dtype="<i2"), speech[0].sample_rate, rate)
        stream = engines.stt.open_stream()
        for frame in frames_of(pcm, rate):
            stream.push(frame)
        return stream.finish().text
    return await asyncio.get_running_loop().run_in_executor(engines.executor, run)
