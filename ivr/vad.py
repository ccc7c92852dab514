"""Voice activity per 20 ms frame (WebRTC VAD) and the endpointer that turns it into caller turns.

The endpointer counts frames, so all its times are media time: a turn ends after the same amount of
caller audio whether frames arrive in real time, in bursts, or from a file in a test.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import webrtcvad

from config.settings import VoiceSettings
from ivr.frames import FRAME_MS, AudioFrame

VAD_RATES = frozenset({8000, 16000, 32000, 48000})

# Words after which a speaker is usually still thinking, not done: fillers, conjunctions,
# prepositions, articles and bare subjects.
_TRAILING_WORDS = frozenset(
    """
    um umm uh uhm er erm ah hmm mm well like
    and but or so because cause since then if that which when while
    to of with for in on at from about as by into than
    the a an my our your their his her
    i we you they he she it
    """.split()
)
_WORD = re.compile(r"[a-z']+")
# How long WebRTC VAD keeps saying "speech" after sustained speech stops, per aggressiveness, for
# 20 ms frames: its hangover, kOverHangMax2 in vad_core.c. (In practice it runs a frame longer on
# an abrupt stop and shorter after soft endings like a final "s", so ends land within +-2 frames.)
_WEBRTC_HANGOVER_MS = {0: 140, 1: 140, 2: 100, 3: 100}


class VoiceActivity(Protocol):
    """Speech or not, one 20 ms frame at a time: what the session's endpointer is fed."""

    def is_speech(self, frame: AudioFrame) -> bool: ...


class WebRtcVoiceActivity:
    """Speech / non-speech for single frames, at one of the rates WebRTC VAD supports."""

    def __init__(self, aggressiveness: int, sample_rate: int) -> None:
        if sample_rate not in VAD_RATES:
            raise ValueError(f"WebRTC VAD needs one of {sorted(VAD_RATES)} Hz, got {sample_rate}")
        if not 0 <= aggressiveness <= 3:
            raise ValueError(f"VAD aggressiveness must be 0..3, got {aggressiveness}")
        self.sample_rate = sample_rate
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: AudioFrame) -> bool:
        if frame.sample_rate != self.sample_rate:
            raise ValueError(f"frame at {frame.sample_rate} Hz fed to a {self.sample_rate} Hz VAD")
        return self._vad.is_speech(frame.pcm, self.sample_rate)


@dataclass(frozen=True)
class EndpointConfig:
    end_silence_ms: int = 500  # silence after speech that ends the turn
    hesitation_silence_ms: int = 1500  # ... while hold() is on
    complete_silence_ms: int = 500  # ... once the words up to this pause are known to be a finished thought
    # ... while the recogniser is still decoding this turn: long enough for a decode on a busy machine, not a
    # thinker's whole allowance for every turn of a loaded worker.
    words_pending_silence_ms: int = 1000
    min_speech_ms: int = 200  # shorter turns are noise and are dropped
    start_speech_ms: int = 60  # speech this long counts as started (clicks are shorter)
    # Speech the VAD still reports after the voice has stopped: the turn's end is back-dated by it,
    # so silences are measured from the real end of speech.
    vad_hangover_ms: int = 0

    @classmethod
    def from_settings(cls, voice: VoiceSettings) -> EndpointConfig:
        """The call's settings, with the hangover of the WebRTC VAD they configure."""
        return cls(
            end_silence_ms=voice.end_silence_ms,
            hesitation_silence_ms=voice.hesitation_silence_ms,
            complete_silence_ms=min(voice.complete_silence_ms, voice.end_silence_ms),
            min_speech_ms=voice.min_speech_ms,
            vad_hangover_ms=_WEBRTC_HANGOVER_MS[voice.vad_aggressiveness],
        )


@dataclass(frozen=True)
class SpeechStarted:
    at_ms: int  # media time of the first speech frame


@dataclass(frozen=True)
class TurnEnded:
    start_ms: int  # media time the speech began
    end_ms: int  # end of the last speech frame, less the VAD's hangover
    silence_ms: int  # silence after end_ms that ended the turn


class Endpointer:
    """Feed one VAD decision per 20 ms frame; it reports when a turn starts and when it ends."""

    def __init__(self, config: EndpointConfig | None = None, start_ms: int = 0) -> None:
        """`start_ms`: the media time of the first frame (a resumed interview goes on from its earlier legs)."""
        self.config = config or EndpointConfig()
        self._now_ms = start_ms
        self.reset()

    @property
    def now_ms(self) -> int:
        """Media time: the end of the last frame fed."""
        return self._now_ms

    @property
    def in_speech(self) -> bool:
        """True from SpeechStarted until the turn ends or is dropped."""
        return self._start_ms is not None

    def hold(self, on: bool) -> None:
        """While on, the turn waits hesitation_silence_ms instead of end_silence_ms. Cleared when a turn ends."""
        self._hold = on

    def words_pending(self, on: bool) -> None:
        """While on, the speech recogniser is still working on audio of this turn (decoding at a pause): wait
        as for a hesitation rather than end the turn before its words are known."""
        self._words_pending = on

    def complete_through(self, media_ms: int) -> None:
        """The words said up to `media_ms` are transcribed and make a finished thought: if nothing is said
        after it, the turn ends after complete_silence_ms. Cleared when a turn ends."""
        self._complete_ms = media_ms

    def reset(self) -> None:
        """Forget the turn in progress and the hold; the media clock keeps running."""
        self._run_start_ms: int | None = None  # first frame of the current run of speech frames
        self._start_ms: int | None = None
        self._last_speech_end_ms = 0
        self._hold = False
        self._words_pending = False
        self._complete_ms = -1

    def update(self, is_speech: bool) -> SpeechStarted | TurnEnded | None:
        frame_start = self._now_ms
        self._now_ms += FRAME_MS
        if self._start_ms is None:
            return self._await_start(is_speech, frame_start)
        if is_speech:
            self._last_speech_end_ms = self._now_ms
            return None
        start = self._start_ms
        end = max(start, self._last_speech_end_ms - self.config.vad_hangover_ms)
        silence = self._now_ms - end
        allowance = self._allowance()
        if silence < allowance:
            return None
        self.reset()
        if end - start < self.config.min_speech_ms:
            return None
        return TurnEnded(start_ms=start, end_ms=end, silence_ms=silence)

    def _allowance(self) -> int:
        if self._hold:
            return self.config.hesitation_silence_ms
        if self._words_pending:
            return max(self.config.words_pending_silence_ms, self.config.end_silence_ms)
        # No speech since the finished thought (the VAD's hangover after it is not speech).
        if self._last_speech_end_ms - self.config.vad_hangover_ms <= self._complete_ms:
            return self.config.complete_silence_ms
        return self.config.end_silence_ms

    def _await_start(self, is_speech: bool, frame_start: int) -> SpeechStarted | None:
        if not is_speech:
            self._run_start_ms = None
            return None
        if self._run_start_ms is None:
            self._run_start_ms = frame_start
        if self._now_ms - self._run_start_ms < self.config.start_speech_ms:
            return None
        self._start_ms = self._run_start_ms
        self._last_speech_end_ms = self._now_ms
        return SpeechStarted(at_ms=self._start_ms)


def trails_off(partial_text: str) -> bool:
    """True when the words so far end on a filler or a word that needs more after it ("and", "to", "um")."""
    words = _WORD.findall(partial_text.lower())
    return bool(words) and words[-1] in _TRAILING_WORDS
