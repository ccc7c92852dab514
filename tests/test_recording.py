"""The stereo call recording, and a resumed interview's recording going on in the same file."""
from __future__ import annotations

import wave

import numpy as np

from ivr.recording import StereoRecorder


def _frames(path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)


def test_a_resumed_leg_is_appended_to_the_earlier_recording(tmp_path) -> None:
    path = tmp_path / "int_x.wav"
    first = StereoRecorder(path, 8000)
    first.candidate(np.full(8000, 100, dtype=np.int16).tobytes())  # 1 s each side
    first.agent(np.full(8000, 200, dtype=np.int16).tobytes())
    first.close()
    second = StereoRecorder(path, 8000, append=True)
    assert second.recorded_ms == 1000  # the resumed leg's media time starts here
    second.candidate(np.full(4000, 300, dtype=np.int16).tobytes())
    second.agent(np.full(4000, 400, dtype=np.int16).tobytes())
    second.close()
    frames = _frames(path)
    assert len(frames) == 12000
    assert (frames[:8000] == [100, 200]).all() and (frames[8000:] == [300, 400]).all()


def test_a_fresh_recording_replaces_nothing_it_should_not(tmp_path) -> None:
    # Without append (a first leg), or with a file of another format, the recording starts at zero.
    path = tmp_path / "int_y.wav"
    with wave.open(str(path), "wb") as other:
        other.setnchannels(1), other.setsampwidth(2), other.setframerate(16000)
        other.writeframes(bytes(3200))
    for target in (path, tmp_path / "new.wav"):
        recorder = StereoRecorder(target, 8000, append=True)
        assert recorder.recorded_ms == 0
        recorder.close()
