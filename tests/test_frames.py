import dataclasses

import numpy as np
import pytest

from ivr.frames import FRAME_MS, AudioFrame, FrameChunker, samples_per_frame, silence

RATES = [8000, 16000, 22050, 24000, 48000]


@pytest.mark.parametrize("rate, expected", [(8000, 160), (16000, 320), (22050, 441), (24000, 480), (48000, 960)])
def test_samples_per_frame(rate, expected):
    assert FRAME_MS == 20
    assert samples_per_frame(rate) == expected


def test_rate_without_whole_sample_frame_is_rejected():
    with pytest.raises(ValueError):
        samples_per_frame(11025)  # 220.5 samples per 20 ms


def test_frame_properties_and_array_round_trip():
    arr = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    frame = AudioFrame.from_array(arr, 8000)
    assert frame.pcm == b"\x00\x00\x01\x00\xff\xff\xff\x7f\x00\x80"  # little-endian
    assert frame.samples == 5
    assert frame.duration_ms == pytest.approx(0.625)
    assert frame.as_array().dtype == np.int16
    assert frame.as_array().tolist() == arr.tolist()


def test_frame_is_immutable_and_validated():
    frame = silence(8000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.sample_rate = 16000
    with pytest.raises(ValueError):
        AudioFrame(b"\x00\x00\x00", 8000)
    with pytest.raises(TypeError):
        AudioFrame.from_array(np.zeros(4, dtype=np.float64), 8000)


@pytest.mark.parametrize("rate", RATES)
def test_silence_is_one_zero_frame(rate):
    frame = silence(rate)
    assert frame.sample_rate == rate
    assert frame.duration_ms == FRAME_MS
    assert not frame.as_array().any()


@pytest.mark.parametrize("rate", RATES)
def test_chunker_recuts_arbitrary_pieces_without_loss(rate):
    rng = np.random.default_rng(rate)
    total = rng.integers(-32768, 32768, size=rate // 3, dtype=np.int16).astype("<i2").tobytes()
    frame_bytes = 2 * samples_per_frame(rate)
    chunker = FrameChunker(rate)
    frames: list[AudioFrame] = []
    pos = 0
    while pos < len(total):
        step = int(rng.integers(1, 3 * frame_bytes))  # odd sizes split samples too
        frames += chunker.feed(total[pos : pos + step])
        pos += step
        assert len(chunker._rest) < frame_bytes  # leftover stays below one frame
    assert all(f.samples == samples_per_frame(rate) and f.sample_rate == rate for f in frames)
    tail = chunker.flush(pad=False)
    joined = b"".join(f.pcm for f in frames) + (tail.pcm if tail else b"")
    assert joined == total


def test_flush_pads_tail_to_a_full_frame():
    chunker = FrameChunker(8000)
    assert chunker.feed(b"\x01\x02" * 50) == []
    frame = chunker.flush()
    assert frame.samples == 160
    assert frame.pcm == b"\x01\x02" * 50 + bytes(220)
    assert chunker.flush() is None  # flushing empties the buffer


def test_flush_without_pad_keeps_short_tail_and_drops_half_sample():
    chunker = FrameChunker(8000)
    chunker.feed(b"\x01\x02\x03")
    frame = chunker.flush(pad=False)
    assert frame.pcm == b"\x01\x02"
    assert frame.duration_ms == pytest.approx(0.125)


def test_exact_frames_leave_nothing_behind():
    chunker = FrameChunker(16000)
    frames = chunker.feed(bytes(640 * 3))
    assert len(frames) == 3
    assert chunker.flush() is None
