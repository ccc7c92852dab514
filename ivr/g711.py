"""G.711 mu-law / A-law codecs with numpy lookup tables (audioop is gone in Python 3.13).

Bit-exact with Sun's reference g711.c as shipped in CPython's audioop: mu-law works on the
16-bit sample arithmetically shifted to 14 bits (BIAS 0x84 >> 2, CLIP 32635 >> 2), A-law on
13 bits with one's-complement magnitude for negatives.
"""

from __future__ import annotations

import numpy as np

_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _all_int16() -> np.ndarray:
    # Entry i holds the int16 whose bit pattern is i, so a table is indexed by pcm.view(uint16).
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> np.ndarray:
    v = _all_int16() >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), 8159) + 33
    seg = np.searchsorted(_ULAW_SEG_END, mag)
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0xF))
    return (code ^ mask).astype(np.uint8)


def _build_alaw_encode() -> np.ndarray:
    v = _all_int16() >> 3
    neg = v < 0
    mag = np.where(neg, -v - 1, v)  # <= 0xFFF, so the reference's seg >= 8 clip never fires
    seg = np.searchsorted(_ALAW_SEG_END, mag)
    quant = np.where(seg < 2, mag >> 1, mag >> seg) & 0xF
    return (((seg << 4) | quant) ^ np.where(neg, 0x55, 0xD5)).astype(np.uint8)


def _build_ulaw_decode() -> np.ndarray:
    u = ~np.arange(256) & 0xFF
    t = (((u & 0xF) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _build_alaw_decode() -> np.ndarray:
    a = np.arange(256) ^ 0x55
    t = (a & 0xF) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


ULAW_ENCODE = _build_ulaw_encode()
ALAW_ENCODE = _build_alaw_encode()
ULAW_DECODE = _build_ulaw_decode()
ALAW_DECODE = _build_alaw_decode()
for _t in (ULAW_ENCODE, ALAW_ENCODE, ULAW_DECODE, ALAW_DECODE):
    _t.flags.writeable = False


def _as_index(pcm16: np.ndarray | bytes) -> np.ndarray:
    if isinstance(pcm16, (bytes, bytearray, memoryview)):
        return np.frombuffer(pcm16, dtype="<u2")
    if pcm16.dtype != np.int16:
        raise TypeError(f"expected int16 samples, got {pcm16.dtype}")  # a cast would wrap silently
    return pcm16.view(np.uint16)


def ulaw_encode(pcm16: np.ndarray | bytes) -> bytes:
    """PCM16 (int16 array or little-endian bytes) -> mu-law bytes, one per sample."""
    return ULAW_ENCODE[_as_index(pcm16)].tobytes()


def ulaw_decode(codes: bytes) -> np.ndarray:
    """Mu-law bytes -> int16 samples."""
    return ULAW_DECODE[np.frombuffer(codes, dtype=np.uint8)]


def alaw_encode(pcm16: np.ndarray | bytes) -> bytes:
    """PCM16 (int16 array or little-endian bytes) -> A-law bytes, one per sample."""
    return ALAW_ENCODE[_as_index(pcm16)].tobytes()


def alaw_decode(codes: bytes) -> np.ndarray:
    """A-law bytes -> int16 samples."""
    return ALAW_DECODE[np.frombuffer(codes, dtype=np.uint8)]
