"""Polyphase FIR resampling between telephony and TTS rates (8k/16k/22.05k/24k/48k).

One code path serves both uses: `StreamResampler` keeps filter history across 20 ms frames
(no clicks at frame boundaries) and `resample` is the same stream run over a whole buffer,
so streamed and one-shot output agree sample for sample, offset by `delay` output samples.
A 20 ms frame in gives exactly one 20 ms frame out for all the rates above.
"""

from __future__ import annotations

from functools import lru_cache
from math import ceil, gcd, pi

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Band edges as fractions of the lower Nyquist. The stop edge mirrors the pass edge so that
# everything folding back (or imaging) lands above the passband: 0-3.9 kHz stays alias-free
# at 8 kHz while a 3.9 kHz tone passes untouched.
_PASS_EDGE = 0.975
_STOP_EDGE = 2.0 - _PASS_EDGE
_STOPBAND_DB = 80.0  # below int16 speech noise floors; more only costs taps
_BLOCK = 8192  # one-shot input block: bounds the (outputs x taps) window matrix


@lru_cache(maxsize=None)
def _design(src_rate: int, dst_rate: int) -> tuple[int, int, int, np.ndarray]:
    """(up, down, delay, taps) with taps[phase, j] already reversed for a sliding window."""
    g = gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    nyquist = min(src_rate, dst_rate) / 2
    fs_up = src_rate * up  # the filter runs at the (virtual) upsampled rate
    width = 2 * pi * (_STOP_EDGE - _PASS_EDGE) * nyquist / fs_up
    half = ceil((_STOPBAND_DB - 7.95) / (2.285 * width) / 2)  # Kaiser's length estimate
    half = ceil(half / down) * down  # group delay = whole output samples
    cutoff = nyquist / fs_up  # cycles per upsampled sample, midway between the edges
    beta = 0.1102 * (_STOPBAND_DB - 8.7)
    h = 2 * cutoff * np.sinc(2 * cutoff * np.arange(-half, half + 1)) * np.kaiser(2 * half + 1, beta)
    h *= up / h.sum()  # unity DC gain per phase despite zero-stuffing
    taps = -(-h.size // up)
    poly = np.zeros(taps * up)
    poly[: h.size] = h
    # Output m sits at upsampled position m*down; phase p uses h[p], h[p+up], ... against
    # x[base], x[base-1], ...; reversing lets a forward window x[base-taps+1 : base+1] dot it.
    table = np.ascontiguousarray(poly.reshape(taps, up).T[:, ::-1], dtype=np.float32)
    table.flags.writeable = False
    return up, down, half // down, table


def _check_int16(pcm: np.ndarray) -> None:
    if pcm.dtype != np.int16:
        raise TypeError(f"expected int16 samples, got {pcm.dtype}")


def _to_int16(y: np.ndarray) -> np.ndarray:
    # Overshoot (Gibbs ringing on full-scale input) must saturate, not wrap.
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


class StreamResampler:
    """Stateful resampler for consecutive chunks of one mono int16 stream.

    Output lags input by `delay` output samples (a few ms); `flush` drains that tail.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError(f"sample rates must be positive: {src_rate} -> {dst_rate}")
        self._up, self._down, self.delay, self._table = _design(src_rate, dst_rate)
        self._reset()

    def _reset(self) -> None:
        self._history = np.zeros(self._table.shape[1] - 1, dtype=np.float32)
        self._n_in = 0  # input samples consumed so far
        self._m_out = 0  # output samples emitted so far

    def process(self, frame_pcm: np.ndarray) -> np.ndarray:
        """Feed int16 samples; return every output sample they complete (int16).

        Meant for frame-sized chunks: scratch memory is outputs x taps floats.
        """
        _check_int16(frame_pcm)
        up, down, table = self._up, self._down, self._table
        taps = table.shape[1]
        buf = np.concatenate((self._history, frame_pcm.astype(np.float32)))
        first = self._n_in - (taps - 1)  # input index of buf[0]
        self._n_in += len(frame_pcm)
        m_end = -(-self._n_in * up // down)  # outputs whose newest input sample has arrived
        pos = np.arange(self._m_out, m_end, dtype=np.int64) * down
        self._m_out = m_end
        self._history = buf[buf.size - (taps - 1) :]
        windows = sliding_window_view(buf, taps)[pos // up - first - (taps - 1)]
        return _to_int16(np.einsum("ij,ij->i", windows, table[pos % up]))

    def flush(self) -> np.ndarray:
        """Drain the filter tail (zero input) and reset for a new stream."""
        target = -(-self._n_in * self._up // self._down) + self.delay
        pending = target - self._m_out
        zeros = np.zeros(ceil((self.delay + 1) * self._down / self._up), dtype=np.int16)
        tail = self.process(zeros)[:pending]
        self._reset()
        return tail


def resample(pcm: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample a whole int16 buffer; len(out) == ceil(len(pcm) * dst_rate / src_rate)."""
    _check_int16(pcm)
    if src_rate == dst_rate:
        return pcm.copy()
    stream = StreamResampler(src_rate, dst_rate)
    parts = [stream.process(pcm[i : i + _BLOCK]) for i in range(0, len(pcm), _BLOCK)]
    parts.append(stream.flush())
    return np.concatenate(parts)[stream.delay :]
