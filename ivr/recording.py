"""A stereo WAV of the call: candidate on the left channel, AI on the right, at the leg's rate."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


class StereoRecorder:
    def __init__(self, path: str | Path, sample_rate: int, *, append: bool = False) -> None:
        """`append`: an earlier leg's recording at `path` (same format) is kept at the start of the file, so
        a resumed interview has one recording; `recorded_ms` says how long it is."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        earlier = _earlier_leg(self.path, sample_rate) if append else b""
        self.recorded_ms = len(earlier) // 4 * 1000 // sample_rate  # 4 bytes per stereo frame
        self._wav = wave.open(str(self.path), "wb")
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        if earlier:
            self._wav.writeframes(earlier)
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


def _earlier_leg(path: Path, sample_rate: int) -> bytes:
    """The stereo frames already recorded at `path`, or nothing (no file, or another format)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (2, 2, sample_rate):
                return b""
            return wav.readframes(wav.getnframes())
    except (FileNotFoundError, wave.Error, EOFError):
        return b""
