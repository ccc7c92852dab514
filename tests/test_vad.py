"""WebRTC VAD + endpointer on real Piper speech over the phone path, and the endpointer's own rules."""
from __future__ import annotations

import numpy as np
import pytest

from config.settings import VoiceSettings
from ivr.frames import FRAME_MS, AudioFrame
from ivr.vad import EndpointConfig, Endpointer, SpeechStarted, TurnEnded, WebRtcVoiceActivity, trails_off
from voice import candidate_audio, frames_of, silence_frames

FIRST_PART = "I worked at a call center for two years"
SECOND_PART = "mostly on billing questions and refunds."
CONFIG = EndpointConfig.from_settings(VoiceSettings())
# WebRTC VAD hears soft word endings ("s", a breath) a frame or two short of the energy end.
VAD_END_TOLERANCE_MS = 2 * FRAME_MS


def speech_extent(pcm: np.ndarray, rate: int, floor_db: float = -30.0) -> tuple[int, int]:
    """(first, last + 1) 20 ms frame whose level is within floor_db of the loudest frame."""
    size = rate * FRAME_MS // 1000
    frames = pcm[: len(pcm) // size * size].reshape(-1, size).astype(np.float64)
    level = np.sqrt(np.mean(frames**2, axis=1))
    loud = np.nonzero(level > level.max() * 10 ** (floor_db / 20))[0]
    return int(loud[0]), int(loud[-1]) + 1


def trimmed(text: str, rate: int = 8000, telephone: bool = True) -> list[AudioFrame]:
    """The speech frames of `text`, cut where they fade 30 dB below the loudest frame.

    Piper ends sentences with a breath-like tail 35-45 dB down that the VAD rightly ignores; cutting
    it off makes the end of speech unambiguous.
    """
    first, end = speech_extent(candidate_audio(text, rate, telephone=telephone), rate)
    return frames_of(candidate_audio(text, rate, telephone=telephone), rate)[first:end]


def run(frames: list[AudioFrame], endpointer: Endpointer | None = None, aggressiveness: int = 2):
    """Feed frames through VAD and endpointer; return [(media ms when emitted, event)]."""
    endpointer = endpointer or Endpointer(CONFIG)
    vad = WebRtcVoiceActivity(aggressiveness, frames[0].sample_rate)
    events = []
    for frame in frames:
        event = endpointer.update(vad.is_speech(frame))
        if event:
            events.append((endpointer.now_ms, event))
    return events


@pytest.mark.parametrize("rate, telephone", [(8000, True), (16000, False)])
def test_turn_start_and_end_on_real_speech(rate, telephone):
    speech = trimmed(f"{FIRST_PART}, {SECOND_PART}", rate, telephone)
    onset_ms, speech_end_ms = 600, 600 + FRAME_MS * len(speech)
    events = run(silence_frames(600, rate) + speech + silence_frames(1500, rate))
    assert [type(e) for _, e in events] == [SpeechStarted, TurnEnded]
    (_, started), (ended_at, ended) = events
    assert abs(started.at_ms - onset_ms) <= 100
    assert abs(ended.end_ms - speech_end_ms) <= VAD_END_TOLERANCE_MS
    # In media time the turn ends exactly the allowance after the end of speech, hangover included.
    assert ended.silence_ms == ended_at - ended.end_ms == CONFIG.end_silence_ms
    assert ended.start_ms == started.at_ms


def test_true_onset_includes_piper_lead_in():
    # Untrimmed audio: the onset is where the waveform's energy starts, not where the clip starts.
    pcm = candidate_audio(FIRST_PART + ".")
    first, _ = speech_extent(pcm, 8000)
    events = run(silence_frames(400, 8000) + frames_of(pcm, 8000) + silence_frames(1000, 8000))
    assert abs(events[0][1].at_ms - (400 + first * FRAME_MS)) <= 100


def test_short_pause_mid_sentence_does_not_end_the_turn():
    first, second = trimmed(FIRST_PART + ","), trimmed(SECOND_PART)
    events = run(silence_frames(400, 8000) + first + silence_frames(300, 8000) + second + silence_frames(1000, 8000))
    turns = [e for _, e in events if isinstance(e, TurnEnded)]
    assert len(turns) == 1
    assert abs(turns[0].end_ms - (400 + FRAME_MS * (len(first) + len(second)) + 300)) <= VAD_END_TOLERANCE_MS


def test_one_second_pause_ends_the_turn_unless_held():
    first, second = trimmed(FIRST_PART + " and"), trimmed(SECOND_PART)
    frames = silence_frames(400, 8000) + first + silence_frames(1000, 8000) + second + silence_frames(2000, 8000)
    assert sum(isinstance(e, TurnEnded) for _, e in run(frames)) == 2

    held = Endpointer(CONFIG)
    held.hold(trails_off("I worked at a call center for two years and"))  # what the session does on a partial
    turns = [e for _, e in run(frames, held) if isinstance(e, TurnEnded)]
    assert len(turns) == 1
    assert turns[0].silence_ms == CONFIG.hesitation_silence_ms


def test_click_is_ignored():
    # 100 ms of decaying broadband noise, loud enough for the VAD to call it speech.
    noise = np.random.default_rng(7).standard_normal(800) * np.exp(-np.arange(800) / 300) * 12000
    click = frames_of(noise.astype(np.int16), 8000)
    endpointer = Endpointer(CONFIG)
    events = run(silence_frames(400, 8000) + click + silence_frames(1000, 8000), endpointer)
    assert not any(isinstance(e, TurnEnded) for _, e in events)
    assert not endpointer.in_speech
    # A real turn right after is measured from its own start.
    onset_ms = endpointer.now_ms
    later = run(trimmed(FIRST_PART + ".") + silence_frames(1000, 8000), endpointer)
    assert [type(e) for _, e in later] == [SpeechStarted, TurnEnded]
    assert abs(later[0][1].at_ms - onset_ms) <= 100


def test_vad_rejects_unsupported_rates_and_modes():
    with pytest.raises(ValueError, match="22050"):
        WebRtcVoiceActivity(2, 22050)
    with pytest.raises(ValueError, match="aggressiveness"):
        WebRtcVoiceActivity(4, 8000)
    with pytest.raises(ValueError, match="16000"):
        WebRtcVoiceActivity(2, 8000).is_speech(silence_frames(20, 16000)[0])


def test_vad_calls_digital_silence_non_speech():
    vad = WebRtcVoiceActivity(3, 48000)
    assert not any(vad.is_speech(frame) for frame in silence_frames(200, 48000))


# The endpointer alone, on VAD decisions given frame by frame.

def feed(endpointer: Endpointer, pattern: str) -> list[tuple[int, SpeechStarted | TurnEnded]]:
    """pattern: one character per 20 ms frame, '#' speech and '.' silence."""
    events = []
    for mark in pattern:
        event = endpointer.update(mark == "#")
        if event:
            events.append((endpointer.now_ms, event))
    return events


def test_speech_start_is_debounced_and_back_dated():
    endpointer = Endpointer()
    assert feed(endpointer, "....##...") == []  # 40 ms < start_speech_ms
    assert feed(endpointer, "###") == [(240, SpeechStarted(at_ms=180))]
    assert endpointer.in_speech


def test_turn_end_timing_in_media_time():
    endpointer = Endpointer(EndpointConfig(end_silence_ms=100, min_speech_ms=100))
    events = feed(endpointer, "..######.##" + "." * 10)
    assert events == [(100, SpeechStarted(at_ms=40)), (320, TurnEnded(start_ms=40, end_ms=220, silence_ms=100))]
    assert not endpointer.in_speech


def test_hangover_is_taken_off_the_turn_end():
    endpointer = Endpointer(EndpointConfig(end_silence_ms=200, min_speech_ms=0, vad_hangover_ms=60))
    events = feed(endpointer, "#####" + "." * 10)
    assert events[-1] == (240, TurnEnded(start_ms=0, end_ms=40, silence_ms=200))


def test_short_burst_is_dropped_and_hold_is_cleared():
    endpointer = Endpointer(EndpointConfig(end_silence_ms=200, hesitation_silence_ms=400, min_speech_ms=200))
    endpointer.hold(True)
    events = feed(endpointer, "#####" + "." * 30)  # 100 ms of "speech"
    assert [type(e) for _, e in events] == [SpeechStarted]
    assert not endpointer.in_speech
    # The hold ended with that turn: the next one gets the normal allowance.
    assert feed(endpointer, "#" * 20 + "." * 10)[-1][1].silence_ms == 200


def test_reset_keeps_the_media_clock():
    endpointer = Endpointer()
    feed(endpointer, "#####")
    endpointer.reset()
    assert not endpointer.in_speech and endpointer.now_ms == 100
    assert feed(endpointer, "###")[0][1] == SpeechStarted(at_ms=100)


def test_config_from_settings():
    config = EndpointConfig.from_settings(VoiceSettings(vad_aggressiveness=0, end_silence_ms=700,
                                                        hesitation_silence_ms=2000, min_speech_ms=150))
    assert (config.end_silence_ms, config.hesitation_silence_ms, config.min_speech_ms) == (700, 2000, 150)
    assert config.vad_hangover_ms > CONFIG.vad_hangover_ms > 0  # mode 0 holds on longer than mode 2


@pytest.mark.parametrize("text, expected", [
    ("I worked there for two years and", True),
    ("because um", True),
    ("It was, uh...", True),
    ("I handled billing for the", True),
    ("I think I", True),
    ("I want to", True),
    ("", False),
    ("I worked there for two years.", False),
    ("Yes", False),
    ("billing questions", False),
])
def test_trails_off(text, expected):
    assert trails_off(text) is expected
