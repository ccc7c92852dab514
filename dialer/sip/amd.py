"""Answering-machine detection on a SIP call, over the callee's first 20 ms frames after the answer.

A person answers with a short "Hello?" and then waits (a pause), or says nothing at all; a voicemail
greeting talks on without such a pause ("Hi, you've reached Ana, I can't take your call right now, please
leave a message after the tone") or starts with the beep. So: a voiced run longer than
`max_greeting_ms` before any pause of `pause_ms` -> machine; a ~1 kHz tone for `beep_ms` -> machine;
speech followed by a pause, or `initial_silence_ms` without speech -> human. Pure and frame-counted (media
time), so tests feed it recorded or synthesized audio at any speed."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ivr.frames import FRAME_MS, AudioFrame
from ivr.vad import WebRtcVoiceActivity

HUMAN, MACHINE = "human", "machine"
BEEP_BAND_HZ = (700.0, 2100.0)  # voicemail beeps sit around 1 kHz
BEEP_SHARE = 0.7  # of a frame's energy in one narrow peak: a pure tone, not a voice
BEEP_MIN_RMS = 300.0
BEEP_STEADY_HZ = 60.0  # a beep's pitch stays within about a bin (50 Hz at 8 kHz) from frame to frame


@dataclass(frozen=True)
class AmdConfig:
    max_greeting_ms: int = 3000
    pause_ms: int = 600
    initial_silence_ms: int = 2500
    beep_ms: int = 160  # real voicemail beeps last 200 ms or more
    vad_aggressiveness: int = 2


@dataclass(frozen=True)
class Verdict:
    kind: str  # human | machine
    reason: str  # pause_after_speech | initial_silence | long_greeting | beep
    at_ms: int  # media time of the decision


def tone_hz(frame: AudioFrame) -> float | None:
    """The frequency of one narrow spectral peak in the beep band holding most of the frame's energy, if
    there is one (a tone), else None."""
    samples = frame.as_array().astype(np.float64)
    if np.sqrt(np.mean(samples ** 2)) < BEEP_MIN_RMS:
        return None
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1.0 / frame.sample_rate)
    peak = int(np.argmax(spectrum))
    if not BEEP_BAND_HZ[0] <= freqs[peak] <= BEEP_BAND_HZ[1]:
        return None
    around = spectrum[max(peak - 2, 0):peak + 3].sum()  # the Hann window spreads a tone over ~3 bins
    return float(freqs[peak]) if around / max(spectrum.sum(), 1e-9) >= BEEP_SHARE else None


class ToneRun:
    """How long one steady tone has sounded, frame by frame. A beep holds its pitch; a sung-out vowel's
    strongest harmonic can pass for a tone in a few frames, but it wanders (a voicemail greeting's vowel
    was taken for the beep once Piper's audio moved by a few ms against the 20 ms frames)."""

    def __init__(self) -> None:
        self.ms = 0
        self._hz: float | None = None

    def step(self, frame: AudioFrame) -> bool:
        """True when the frame is a tone (the run, `ms`, starts again if its pitch moved)."""
        hz = tone_hz(frame)
        if hz is None:
            self.ms, self._hz = 0, None
            return False
        if self._hz is None or abs(hz - self._hz) > BEEP_STEADY_HZ:
            self.ms, self._hz = 0, hz
        self.ms += FRAME_MS
        return True


class AnsweringMachineDetector:
    def __init__(self, sample_rate: int = 8000, config: AmdConfig = AmdConfig()) -> None:
        self.config = config
        self.vad = WebRtcVoiceActivity(config.vad_aggressiveness, sample_rate)
        self.now_ms = 0
        self.speech_started_ms: int | None = None
        self.silence_ms = 0
        self.tone = ToneRun()

    def step(self, frame: AudioFrame) -> Verdict | None:
        """Feed one frame; a Verdict once decided (then stop feeding)."""
        self.now_ms += FRAME_MS
        cfg = self.config
        self.tone.step(frame)
        if self.tone.ms >= cfg.beep_ms:
            return Verdict(MACHINE, "beep", self.now_ms)
        if self.vad.is_speech(frame):
            if self.speech_started_ms is None:
                self.speech_started_ms = self.now_ms - FRAME_MS
            self.silence_ms = 0
        else:
            self.silence_ms += FRAME_MS
        if self.speech_started_ms is None:
            if self.now_ms >= cfg.initial_silence_ms:
                return Verdict(HUMAN, "initial_silence", self.now_ms)
            return None
        if self.silence_ms >= cfg.pause_ms:
            return Verdict(HUMAN, "pause_after_speech", self.now_ms)
        if self.now_ms - self.speech_started_ms - self.silence_ms >= cfg.max_greeting_ms:
            return Verdict(MACHINE, "long_greeting", self.now_ms)
        return None


class GreetingEnd:
    """After a machine is detected by its long greeting: where to start a message (the beep, or a second
    of quiet once the greeting stops)."""

    def __init__(self, sample_rate: int = 8000, quiet_ms: int = 1000, vad_aggressiveness: int = 2) -> None:
        self.vad = WebRtcVoiceActivity(vad_aggressiveness, sample_rate)
        self.quiet_ms, self.silence_ms = quiet_ms, 0
        self.tone = ToneRun()
        self.beeped = False

    def step(self, frame: AudioFrame) -> bool:
        if self.tone.step(frame):
            self.beeped = self.beeped or self.tone.ms >= AmdConfig.beep_ms
            self.silence_ms = 0
            return False
        if self.beeped:
            return True  # the beep has just ended
        self.silence_ms = 0 if self.vad.is_speech(frame) else self.silence_ms + FRAME_MS
        return self.silence_ms >= self.quiet_ms
