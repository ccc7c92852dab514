"""A stereo WAV of the call: candidate on the left channel, AI on the right, at the leg's rate."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


class StereoRecorder:
    def __init__(self, path: str | Path, sample_rate: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wav = wave.open(str(self.path), "wb")
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._left = bytearray()
        self._right = bytearray()

    def candidate(self, pcm: bytes) -> None:
        self._left += pcm
        self._flush()

    def agent(self, pcm: bytes) -> None:
        self._right += pcm
        self._flush()

    def _flush(self) -> None:
        n = min(len(self._left), len(self._right)) // 2 * 2
        if n == 0:
            return
        stereo = np.empty(n, dtype=np.int16)  # n/2 samples per channel, interleaved L R L R
        stereo[0::2] = np.frombuffer(self._left[:n], dtype=np.int16)
        stereo[1::2] = np.frombuffer(self._right[:n], dtype=np.int16)
        self._wav.writeframes(stereo.tobytes())
        del self._left[:n], self._right[:n]

    def close(self) -> None:
        """Pads the shorter channel with silence so nothing heard or said is lost, then closes."""
        if self._wav is None:
            return
        longer = max(len(self._left), len(self._right))
        self._left += bytes(longer - len(self._left))
        self._right += bytes(longer - len(self._right))
        self._flush()
        self._wav.close()
        self._wav = None
