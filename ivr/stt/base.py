"""Speech-to-text: one streaming interface. A stream takes 20 ms frames as the candidate speaks and
gives the final transcript (with word timings) when the turn ends."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ivr.frames import AudioFrame


@dataclass(frozen=True)
class Word:
    text: str
    start_ms: int  # from the start of the stream
    end_ms: int
    confidence: float | None = None


@dataclass(frozen=True)
class Transcript:
    text: str
    is_final: bool
    words: tuple[Word, ...] = ()
    confidence: float | None = None  # mean word confidence, when the engine gives one


class SttStream(ABC):
    """One candidate turn. Not thread-safe: one owner pushes, then finishes."""

    @abstractmethod
    def push(self, frame: AudioFrame) -> Transcript | None:
        """Feed one frame (at the engine's `sample_rate`); may return a partial transcript. Must stay cheap
        on average (the session calls it from a worker thread, in real time)."""

    @abstractmethod
    def finish(self) -> Transcript:
        """End of the turn: the final transcript of everything pushed. The stream is closed afterwards."""


class SpeechToText(ABC):
    name: str
    sample_rate: int  # the rate frames must have; the session resamples to it

    @abstractmethod
    def open_stream(self) -> SttStream: ...
