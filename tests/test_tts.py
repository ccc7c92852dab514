"""Piper TTS and the phrase cache, on the bundled voice."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from config.settings import TtsSettings
from ivr.tts.phrase_cache import PhraseCache
from ivr.tts.piper_tts import PiperTts, bundled_voice_path

TWO_SENTENCES = "Thanks for calling about the support role. Do you have a few minutes to talk today?"
LONG_FIRST_SENTENCE = (
    "Before we begin, I need to tell you that this call is recorded, that the recording is kept "
    "for thirty days, and that you can ask for it to be deleted at any time. Is that alright?"
)


@pytest.fixture(scope="module")
def tts() -> PiperTts:
    return PiperTts(TtsSettings())


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


def count_model_runs(monkeypatch: pytest.MonkeyPatch, tts: PiperTts) -> list[int]:
    """Counts calls into the real Piper model (one per chunk synthesized)."""
    runs = [0]
    real = tts._voice.phoneme_ids_to_audio

    def counted(*args, **kwargs):
        runs[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(tts._voice, "phoneme_ids_to_audio", counted)
    return runs


def test_bundled_voice_and_rate(tts: PiperTts):
    assert bundled_voice_path().is_file()
    assert bundled_voice_path().with_name(bundled_voice_path().name + ".json").is_file()
    assert tts.name == "piper"
    assert tts.sample_rate == 22050


def test_two_sentences_stream_as_plausible_speech(tts: PiperTts):
    chunks = list(tts.synthesize(TWO_SENTENCES))
    assert len(chunks) >= 2
    assert all(chunk.dtype == np.int16 and chunk.ndim == 1 for chunk in chunks)
    audio = np.concatenate(chunks)
    seconds_per_word = len(audio) / tts.sample_rate / len(TWO_SENTENCES.split())
    assert 0.15 < seconds_per_word < 0.8
    assert rms(audio) > 1000  # speech level, not near-silence
    assert all(rms(chunk) > 500 for chunk in chunks)


def test_first_chunk_is_yielded_before_the_rest_is_synthesized(tts: PiperTts, monkeypatch: pytest.MonkeyPatch):
    runs = count_model_runs(monkeypatch, tts)
    stream = tts.synthesize(TWO_SENTENCES)
    first = next(stream)
    assert runs[0] == 1 and len(first) > 0
    rest = list(stream)
    assert rest and runs[0] == 1 + len(rest)


def test_long_first_sentence_is_cut_at_a_clause(tts: PiperTts):
    chunks = list(tts.synthesize(LONG_FIRST_SENTENCE))
    durations = [len(chunk) / tts.sample_rate for chunk in chunks]
    # "Before we begin, I need to tell you ..." : the first piece is a clause, not the whole sentence.
    assert len(chunks) >= 3
    assert 0.4 < durations[0] < sum(durations) / 4
    # Later pieces grow (no gap while the next is made) instead of staying clause-sized.
    assert max(durations[1:]) > 2 * durations[0]


def test_sentences_without_clause_marks_stay_whole(tts: PiperTts):
    assert len(list(tts.synthesize(TWO_SENTENCES))) == 2


def test_empty_text_yields_nothing(tts: PiperTts):
    assert list(tts.synthesize("")) == []


def test_length_scale_slows_speech(tts: PiperTts):
    slow = PiperTts(TtsSettings(length_scale=1.5))
    normal_s = sum(map(len, tts.synthesize(TWO_SENTENCES))) / tts.sample_rate
    slow_s = sum(map(len, slow.synthesize(TWO_SENTENCES))) / slow.sample_rate
    # Durations scale by about 1.33 here (pauses and rounding do not stretch), within a few percent.
    assert 1.15 < slow_s / normal_s < 1.6


def test_missing_voice_file_names_the_path(tmp_path: Path):
    missing = tmp_path / "nobody.onnx"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        PiperTts(TtsSettings(voice_path=str(missing)))
    without_config = tmp_path / "voice.onnx"
    without_config.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"voice\.onnx\.json"):
        PiperTts(TtsSettings(voice_path=str(without_config)))


def test_phrase_cache_returns_the_same_array_at_the_leg_rate(tts: PiperTts):
    phrase = "Thank you for your time today."
    telephone = PhraseCache(tts, 8000)
    first = telephone.get(phrase)
    assert telephone.get(phrase) is first
    assert first.dtype == np.int16 and not first.flags.writeable
    # Piper's timing varies a little per run; a wrong rate would be off by 2.75x.
    native_s = len(PhraseCache(tts, tts.sample_rate).get(phrase)) / tts.sample_rate
    assert abs(len(first) / 8000 - native_s) < 0.15 * native_s
    assert rms(first) > 1000


def test_phrase_cache_is_lru_bounded(tts: PiperTts):
    cache = PhraseCache(tts, 8000, max_phrases=2)
    okay = cache.get("Okay.")
    cache.warm(["Thank you.", "Okay.", "Goodbye."])  # "Thank you." is now the least recent
    assert len(cache) == 2
    assert cache.get("Okay.") is okay


def test_phrase_cache_synthesizes_once_under_concurrency(tts: PiperTts, monkeypatch: pytest.MonkeyPatch):
    runs = count_model_runs(monkeypatch, tts)
    cache = PhraseCache(tts, 16000)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("Got it."))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all(r is results[0] for r in results)
    assert runs[0] == 1


class _HeldTts:
    """Synthesizes "slow" only once released: what a long phrase under load looks like to the cache."""
    name, sample_rate = "held", 8000

    def __init__(self) -> None:
        self.release = threading.Event()

    def synthesize(self, text: str):
        if text == "slow":
            assert self.release.wait(10)
        yield np.ones(160, dtype=np.int16)


def test_phrase_cache_makes_other_phrases_while_one_is_being_made() -> None:
    # A call's consent sentence must not wait behind another call's warm-up of its closing lines.
    held = _HeldTts()
    cache = PhraseCache(held, 8000)
    slow = threading.Thread(target=cache.get, args=("slow",))
    slow.start()
    try:
        fast = threading.Thread(target=cache.get, args=("fast",))
        fast.start()
        fast.join(timeout=5)
        assert not fast.is_alive()
    finally:
        held.release.set()
        slow.join(timeout=10)
    assert len(cache) == 2
