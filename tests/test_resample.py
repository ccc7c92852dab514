from itertools import permutations
from math import ceil

import numpy as np
import pytest

from ivr.frames import samples_per_frame
from ivr.resample import StreamResampler, resample

RATES = [8000, 16000, 22050, 24000, 48000]
PAIRS = list(permutations(RATES, 2))


def tone(freq: float, rate: int, seconds: float = 0.5, amplitude: float = 16000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def level_db(y: np.ndarray, amplitude: float = 16000.0) -> float:
    """RMS level of the steady-state middle, in dB relative to a sine of `amplitude`."""
    core = y[len(y) // 8 : -len(y) // 8].astype(np.float64)
    return 20 * np.log10(max(np.sqrt(np.mean(core**2)), 1e-9) / (amplitude / np.sqrt(2)))


def peak_hz(y: np.ndarray, rate: int) -> float:
    core = y[len(y) // 8 : -len(y) // 8].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(core * np.hanning(core.size)))
    return float(np.fft.rfftfreq(core.size, 1 / rate)[np.argmax(spectrum)])


def test_1khz_keeps_frequency_and_amplitude_22050_to_8000():
    y = resample(tone(1000, 22050, seconds=1.0), 22050, 8000)
    assert abs(peak_hz(y, 8000) - 1000) <= 2
    assert abs(level_db(y)) <= 1.0
    assert abs(level_db(y)) <= 0.05  # in practice the passband is flat to hundredths of a dB


def test_anti_aliasing_22050_to_8000():
    # 3.9 kHz is inside the 8 kHz passband; 6 kHz is above its 4 kHz Nyquist and naive
    # decimation would fold it to 2 kHz at full level.
    assert abs(level_db(resample(tone(3900, 22050), 22050, 8000))) <= 0.5
    assert level_db(resample(tone(6000, 22050), 22050, 8000)) < -40
    assert level_db(resample(tone(6000, 22050), 22050, 8000)) < -60  # designed for ~80 dB


@pytest.mark.parametrize("src, dst", PAIRS)
def test_every_pair_is_flat_and_spurious_free(src, dst):
    x = tone(1000, src)
    y = resample(x, src, dst)
    assert len(y) == ceil(len(x) * dst / src)
    assert abs(peak_hz(y, dst) - 1000) <= 4
    assert abs(level_db(y)) <= 0.05
    # Aliases (downsampling) and images (upsampling) of 1 kHz land elsewhere in the band.
    core = y[len(y) // 8 : -len(y) // 8].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(core * np.blackman(core.size)))
    freqs = np.fft.rfftfreq(core.size, 1 / dst)
    spurs = spectrum[np.abs(freqs - 1000) > 50]
    assert spurs.max() < spectrum.max() * 10 ** (-80 / 20)


@pytest.mark.parametrize("src, dst", [(s, d) for s, d in PAIRS if s > d])
def test_every_downsample_rejects_tones_above_output_nyquist(src, dst):
    freq = (1.05 * dst / 2 + src / 2) / 2  # between the stop edge and the input Nyquist
    assert level_db(resample(tone(freq, src), src, dst)) < -60


@pytest.mark.parametrize("src, dst", PAIRS)
def test_streaming_20ms_frames_matches_one_shot(src, dst):
    rng = np.random.default_rng(src + dst)
    x = rng.normal(0, 6000, size=src // 2).clip(-32768, 32767).astype(np.int16)
    stream = StreamResampler(src, dst)
    n = samples_per_frame(src)
    outs = [stream.process(x[i : i + n]) for i in range(0, len(x), n)]
    assert all(len(o) == samples_per_frame(dst) for o in outs)  # one frame in, one frame out
    streamed = np.concatenate(outs + [stream.flush()])
    one_shot = resample(x, src, dst)
    assert len(streamed) == len(one_shot) + stream.delay
    assert stream.delay / dst < 0.015  # latency stays under 15 ms
    diff = np.abs(streamed[stream.delay :].astype(np.int32) - one_shot)
    assert diff.max() <= 1  # float32 summation order may flip a rounding


def test_streaming_with_ragged_chunks_and_reuse_after_flush():
    x = tone(440, 16000, seconds=0.3)
    expected = resample(x, 16000, 8000)
    stream = StreamResampler(16000, 8000)
    for _ in range(2):  # flush resets, so the second pass must match too
        cuts = [0, 1, 7, 300, 301, 2000, len(x)]
        parts = [stream.process(x[a:b]) for a, b in zip(cuts, cuts[1:])]
        streamed = np.concatenate(parts + [stream.flush()])
        assert np.abs(streamed[stream.delay :].astype(np.int32) - expected).max() <= 1


@pytest.mark.parametrize("src, dst", [(22050, 8000), (8000, 16000)])
def test_full_scale_overshoot_saturates_instead_of_wrapping(src, dst):
    square = np.where(tone(500, src) >= 0, 32767, -32768).astype(np.int16)
    y = resample(square, src, dst).astype(np.int32)
    assert y.max() == 32767 and y.min() == -32768  # Gibbs overshoot really hit the rails
    # The filter is linear, so half-scale input doubled is the unclipped answer.
    half = resample((square // 2).astype(np.int16), src, dst).astype(np.int32) * 2
    assert np.abs(y - np.clip(half, -32768, 32767)).max() <= 3


def test_same_rate_and_empty_input():
    x = tone(1000, 8000, seconds=0.01)
    same = resample(x, 8000, 8000)
    assert same.tolist() == x.tolist() and same is not x
    assert resample(np.zeros(0, dtype=np.int16), 22050, 8000).size == 0


def test_rejects_non_int16_and_bad_rates():
    with pytest.raises(TypeError):
        resample(np.zeros(10, dtype=np.float32), 16000, 8000)
    with pytest.raises(TypeError):
        StreamResampler(16000, 8000).process(np.zeros(10, dtype=np.int32))
    with pytest.raises(ValueError):
        StreamResampler(0, 8000)
