import warnings

import numpy as np
import pytest

from ivr.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))

# --- Scalar port of Sun's reference g711.c (the version CPython's audioop is built from) ---

SIGN_BIT, QUANT_MASK, SEG_SHIFT, SEG_MASK = 0x80, 0xF, 4, 0x70
BIAS, CLIP = 0x84, 8159
SEG_AEND = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]
SEG_UEND = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]


def search(val: int, table: list[int]) -> int:
    for i, end in enumerate(table):
        if val <= end:
            return i
    return len(table)


def linear2alaw(pcm_val: int) -> int:
    pcm_val >>= 3
    if pcm_val >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm_val = -pcm_val - 1
    seg = search(pcm_val, SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << SEG_SHIFT
    aval |= (pcm_val >> 1 if seg < 2 else pcm_val >> seg) & QUANT_MASK
    return aval ^ mask


def alaw2linear(a_val: int) -> int:
    a_val ^= 0x55
    t = (a_val & QUANT_MASK) << 4
    seg = (a_val & SEG_MASK) >> SEG_SHIFT
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a_val & SIGN_BIT else -t


def linear2ulaw(pcm_val: int) -> int:
    pcm_val >>= 2
    if pcm_val < 0:
        pcm_val = -pcm_val
        mask = 0x7F
    else:
        mask = 0xFF
    pcm_val = min(pcm_val, CLIP) + (BIAS >> 2)
    seg = search(pcm_val, SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm_val >> (seg + 1)) & 0xF)) ^ mask


def ulaw2linear(u_val: int) -> int:
    u_val = ~u_val & 0xFF
    t = (((u_val & QUANT_MASK) << 3) + BIAS) << ((u_val & SEG_MASK) >> SEG_SHIFT)
    return BIAS - t if u_val & SIGN_BIT else t - BIAS


# --- Exhaustive agreement with the reference port ---


@pytest.mark.parametrize("encode, reference", [(ulaw_encode, linear2ulaw), (alaw_encode, linear2alaw)])
def test_encode_matches_reference_port_for_every_int16(encode, reference):
    expected = bytes(reference(int(x)) for x in ALL_PCM)
    assert encode(ALL_PCM) == expected


@pytest.mark.parametrize("decode, reference", [(ulaw_decode, ulaw2linear), (alaw_decode, alaw2linear)])
def test_decode_matches_reference_port_for_every_code(decode, reference):
    out = decode(ALL_CODES)
    assert out.dtype == np.int16
    assert out.tolist() == [reference(c) for c in ALL_CODES]


# --- Exhaustive agreement with the stdlib (present up to Python 3.12) ---


def _audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            pytest.skip("audioop was removed in Python 3.13; the reference-port tests still cover G.711")
    return audioop


def test_matches_audioop_everywhere():
    audioop = _audioop()
    pcm = ALL_PCM.astype("<i2").tobytes()
    assert ulaw_encode(ALL_PCM) == audioop.lin2ulaw(pcm, 2)
    assert alaw_encode(ALL_PCM) == audioop.lin2alaw(pcm, 2)
    assert ulaw_decode(ALL_CODES).astype("<i2").tobytes() == audioop.ulaw2lin(ALL_CODES, 2)
    assert alaw_decode(ALL_CODES).astype("<i2").tobytes() == audioop.alaw2lin(ALL_CODES, 2)


# --- Round trips ---


def test_ulaw_round_trip_error_within_half_step_per_segment():
    codes = ulaw_encode(ALL_PCM)
    err = np.abs(ulaw_decode(codes).astype(np.int32) - ALL_PCM)
    seg = (~np.frombuffer(codes, np.uint8) & SEG_MASK) >> SEG_SHIFT
    half_step = 4 << seg.astype(np.int32)
    # Negatives are floored to 14 bits before coding, which can cost up to 3 more LSBs.
    bound = half_step + np.where(ALL_PCM < 0, 3, 0)
    in_range = np.abs(ALL_PCM.astype(np.int32)) <= 32635
    assert np.all(err[in_range] <= bound[in_range])
    # Beyond CLIP everything saturates to the largest magnitude.
    assert set(ulaw_decode(ulaw_encode(ALL_PCM[~in_range])).tolist()) == {-32124, 32124}


def test_alaw_round_trip_error_within_half_step_per_segment():
    codes = alaw_encode(ALL_PCM)
    err = np.abs(alaw_decode(codes).astype(np.int32) - ALL_PCM)
    seg = ((np.frombuffer(codes, np.uint8) ^ 0x55) & SEG_MASK) >> SEG_SHIFT
    half_step = 8 << np.maximum(seg.astype(np.int32) - 1, 0)
    assert np.all(err <= half_step)


def test_codes_survive_decode_encode():
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES
    # mu-law has two zeros; "negative zero" 0x7F decodes to 0 and comes back as 0xFF.
    back = ulaw_encode(ulaw_decode(ALL_CODES))
    assert back == ALL_CODES.replace(b"\x7f", b"\xff")


# --- Input forms ---


def test_bytes_and_array_inputs_agree():
    frame = (np.sin(np.arange(160) / 5) * 20000).astype(np.int16)
    pcm = frame.astype("<i2").tobytes()
    assert ulaw_encode(pcm) == ulaw_encode(frame)
    assert alaw_encode(pcm) == alaw_encode(frame)
    assert len(ulaw_encode(frame)) == 160


def test_non_int16_array_is_rejected_rather_than_wrapped():
    with pytest.raises(TypeError):
        ulaw_encode(np.zeros(4, dtype=np.int32))
    with pytest.raises(TypeError):
        alaw_encode(np.zeros(4, dtype=np.float32))
