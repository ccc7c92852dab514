"""The one audio frame type: PCM16 little-endian mono, chunked into 20 ms frames."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

FRAME_MS = 20


def samples_per_frame(rate: int) -> int:
    """Samples in one FRAME_MS frame; rejects rates where that is fractional (it would drift)."""
    samples, rest = divmod(rate * FRAME_MS, 1000)
    if rest or samples <= 0:
        raise ValueError(f"{rate} Hz has no whole-sample {FRAME_MS} ms frame")
    return samples


@dataclass(frozen=True, slots=True)
class AudioFrame:
    pcm: bytes  # PCM16 little-endian mono
    sample_rate: int

    def __post_init__(self) -> None:
        if len(self.pcm) % 2:
            raise ValueError("PCM16 needs an even number of bytes")

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration_ms(self) -> float:
        return self.samples * 1000 / self.sample_rate

    def as_array(self) -> np.ndarray:
        """Read-only int16 view of pcm (no copy)."""
        return np.frombuffer(self.pcm, dtype="<i2")

    @classmethod
    def from_array(cls, arr: np.ndarray, sample_rate: int) -> AudioFrame:
        if arr.dtype != np.int16:
            raise TypeError(f"expected int16 samples, got {arr.dtype}")  # a cast would wrap
        return cls(arr.astype("<i2", copy=False).tobytes(), sample_rate)


@cache
def silence(rate: int) -> AudioFrame:
    """A 20 ms frame of digital silence (frames are immutable, so one per rate is shared)."""
    return AudioFrame(bytes(2 * samples_per_frame(rate)), rate)


class FrameChunker:
    """Re-cuts arbitrary PCM16 byte runs into exact 20 ms frames at one rate.

    Holds less than one frame between calls, so a producer cannot make it grow.
    """

    __slots__ = ("sample_rate", "_frame_bytes", "_rest")

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._frame_bytes = 2 * samples_per_frame(sample_rate)
        self._rest = bytearray()

    def feed(self, pcm: bytes) -> list[AudioFrame]:
        """Append bytes; return every complete frame (a list, so nothing waits on iteration)."""
        rest, size, rate = self._rest, self._frame_bytes, self.sample_rate
        rest += pcm
        end = len(rest) - len(rest) % size
        with memoryview(rest) as view:
            frames = [AudioFrame(bytes(view[i : i + size]), rate) for i in range(0, end, size)]
        del rest[:end]
        return frames

    def flush(self, pad: bool = True) -> AudioFrame | None:
        """Return the buffered tail (zero-padded to 20 ms if pad) and empty the buffer."""
        tail = bytes(self._rest[: len(self._rest) & ~1])  # a lone odd byte is half a sample
        self._rest.clear()
        if not tail:
            return None
        if pad:
            tail += bytes(self._frame_bytes - len(tail))
        return AudioFrame(tail, self.sample_rate)


def frames_of(pcm: np.ndarray, rate: int) -> list[AudioFrame]:
    """A whole int16 buffer as 20 ms frames, the last one zero-padded."""
    chunker = FrameChunker(rate)
    frames = chunker.feed(pcm.astype("<i2", copy=False).tobytes())
    tail = chunker.flush()
    return frames + ([tail] if tail is not None else [])
