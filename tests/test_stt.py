"""Speech-to-text on real phone-quality speech: Whisper tiny.en on Piper-voiced candidate answers through G.711,
Vosk with the bundled Korean model on espeak-ng speech, and the engine choice per interview language."""
from __future__ import annotations

import re
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from config.settings import SttSettings
from ivr.g711 import ulaw_decode, ulaw_encode
from ivr.models_catalog import bundled_vosk_korean_path
from ivr.resample import resample
from ivr.stt import make_stt
from ivr.stt.base import Transcript
from ivr.stt.vosk_stt import VoskStt
from ivr.stt.whisper_stt import WhisperStt
from requirements import require
from voice import candidate_audio, frames_of, silence_frames, word_error_rate

PHONE_RATE = 8000
WHISPER_RATE = 16000

ANSWERS = [
    "I worked for three years at a call center for a phone company, mostly handling billing questions and "
    "helping customers change their plans.",
    "When a customer is angry, I let them explain the whole problem first, I apologize for the trouble, and then "
    "I tell them exactly what I am going to do to fix it.",
    "I can work evenings and weekends, and I could start next Monday.",
    "Once a customer was charged twice for the same order. I checked the records, refunded the extra payment, "
    "and sent an email the next day to make sure the money arrived.",
    "I type quickly and I am comfortable using two screens, a ticket system and a chat window at the same time.",
    "I like helping people. It feels good when someone calls upset and hangs up happy because I solved their "
    "problem.",
    "If I do not know the answer, I put the caller on a short hold, ask my team leader, and come back with the "
    "right information instead of guessing.",
    "My last manager would say that I am reliable, patient with difficult callers, and always on time for my "
    "shifts.",
]
KOREAN = ["안녕하세요 저는 고객 상담 업무에 지원했습니다", "저는 삼 년 동안 콜센터에서 일했습니다"]
HANGUL = re.compile("[\uac00-\ud7a3]")


def phone_to_whisper(pcm_8k: np.ndarray) -> np.ndarray:
    """What the session does: the 8 kHz call audio resampled up to Whisper's 16 kHz."""
    return resample(pcm_8k, PHONE_RATE, WHISPER_RATE)


def transcribe(stt, pcm: np.ndarray, rate: int) -> tuple[Transcript, list[Transcript]]:
    """(final transcript, partials returned by push) for one stream fed all of pcm."""
    stream = stt.open_stream()
    partials = [p for frame in frames_of(pcm, rate) if (p := stream.push(frame)) is not None]
    return stream.finish(), partials


def assert_word_timings(transcript: Transcript, duration_ms: float) -> None:
    assert transcript.words, transcript
    previous_end = 0
    for word in transcript.words:
        assert word.text
        assert previous_end <= word.start_ms <= word.end_ms <= duration_ms, (word, transcript.words)
        assert word.confidence is not None and 0.0 <= word.confidence <= 1.0
        previous_end = word.end_ms


@pytest.fixture(scope="module")
def whisper() -> WhisperStt:
    return WhisperStt(SttSettings(), incremental=False)


@pytest.fixture(scope="module")
def answers_16k() -> list[np.ndarray]:
    return [phone_to_whisper(candidate_audio(answer)) for answer in ANSWERS]


@pytest.fixture(scope="module")
def whisper_results(whisper: WhisperStt, answers_16k: list[np.ndarray]) -> list[Transcript]:
    return [transcribe(whisper, pcm, WHISPER_RATE)[0] for pcm in answers_16k]


def test_whisper_understands_candidates_over_the_phone(whisper_results: list[Transcript]) -> None:
    overall = word_error_rate(" ".join(ANSWERS), " ".join(t.text for t in whisper_results))
    assert overall <= 0.15, [(round(word_error_rate(a, t.text), 2), t.text) for a, t in zip(ANSWERS, whisper_results)]
    assert all(t.is_final for t in whisper_results)


def test_whisper_words_are_timed_in_order_inside_the_audio(whisper_results: list[Transcript],
                                                           answers_16k: list[np.ndarray]) -> None:
    for transcript, pcm in zip(whisper_results, answers_16k):
        assert_word_timings(transcript, len(pcm) * 1000 / WHISPER_RATE)
        assert 0.0 <= transcript.confidence <= 1.0
        # Speech fills the audio: the words must span most of it, not sit bunched at one end.
        assert transcript.words[-1].end_ms - transcript.words[0].start_ms > 0.6 * len(pcm) * 1000 / WHISPER_RATE


def test_whisper_incremental_decodes_during_the_turn_as_well_as_one_shot(whisper: WhisperStt) -> None:
    answer = ANSWERS[5:8]  # about 23 s, with the pauses a candidate makes between sentences
    pause = np.zeros(PHONE_RATE * 350 // 1000, dtype=np.int16)
    pcm = phone_to_whisper(np.concatenate([part for text in answer for part in (candidate_audio(text), pause)]))
    reference = " ".join(answer)

    one_shot, no_partials = transcribe(whisper, pcm, WHISPER_RATE)
    final, partials = transcribe(WhisperStt(SttSettings(), incremental=True), pcm, WHISPER_RATE)

    assert no_partials == []
    assert len(partials) >= 2, "a 23 s answer with pauses should be decoded in pieces while it is spoken"
    # A partial is what was committed plus a guess at the rest, made at a pause; a later partial may word
    # that guess differently, with the context that came after it.
    assert not any(partial.is_final for partial in partials)
    # The answer ends in a pause, decoded as it began: finish() has nothing left to decode.
    assert final.text == partials[-1].text
    assert word_error_rate(reference, final.text) <= word_error_rate(reference, one_shot.text) + 0.05, final.text
    assert_word_timings(final, len(pcm) * 1000 / WHISPER_RATE)  # pieces are placed at their offset in the stream
    assert 0.0 <= final.confidence <= 1.0


def test_whisper_short_window_hears_what_the_full_window_hears(whisper: WhisperStt,
                                                                answers_16k: list[np.ndarray]) -> None:
    """Pieces under 29 s are encoded in a 15 s window (a quarter of the encoder's cost): the words must be
    as good as the full 30 s window's, and a one-word answer must not come back repeated."""
    windowed = [whisper.decode(pcm, 0)[0] for pcm in answers_16k]
    full = [whisper._decode_full(pcm.astype(np.float32) / 32768.0, 0)[0] for pcm in answers_16k]
    reference = " ".join(ANSWERS)
    assert word_error_rate(reference, " ".join(windowed)) <= word_error_rate(reference, " ".join(full)) + 0.03, \
        list(zip(windowed, full))
    for word in ("Yes.", "No.", "Okay."):
        text, words = whisper.decode(phone_to_whisper(candidate_audio(word)), 0)
        assert word_error_rate(word, text) == 0 and len(words) == 1, (word, text)


def test_whisper_repeating_decodes_are_caught() -> None:
    from ivr.stt.whisper_stt import _repeating
    assert _repeating("Can you repeat that? Can you repeat that?", False)
    assert _repeating("No. " * 30, False)
    assert _repeating("I worked there.", True)  # used up its token budget
    assert not _repeating("No. No.", False)  # one word twice is something people say
    assert not _repeating("I worked at a bank. Then I worked at a call center.", False)


def test_whisper_does_not_invent_words_for_silence(whisper: WhisperStt) -> None:
    stream = WhisperStt(SttSettings(), incremental=True).open_stream()
    assert all(stream.push(frame) is None for frame in silence_frames(4000, WHISPER_RATE))
    assert stream.finish() == Transcript("", True, (), None)


def test_whisper_stream_rejects_misuse(whisper: WhisperStt) -> None:
    stream = whisper.open_stream()
    with pytest.raises(ValueError, match="16000 Hz"):
        stream.push(silence_frames(20, PHONE_RATE)[0])
    stream.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        stream.push(silence_frames(20, WHISPER_RATE)[0])


def test_whisper_missing_model_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-whisper"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        WhisperStt(SttSettings(whisper_model_path=str(missing)))


def espeak_korean(text: str, folder: Path) -> np.ndarray:
    """Korean speech as a caller's phone delivers it: espeak-ng voice, 8 kHz, G.711 mu-law."""
    require(shutil.which("espeak-ng"), "the espeak-ng executable (Korean speech for the Vosk test)",
            "./run installs the apt package espeak-ng")
    wav_path = folder / f"{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(wav_path), text], check=True, capture_output=True)
    with wave.open(str(wav_path)) as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        rate = wav.getframerate()
    return ulaw_decode(ulaw_encode(resample(pcm, rate, PHONE_RATE)))


@pytest.fixture(scope="module")
def korean_speech(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    folder = tmp_path_factory.mktemp("korean")
    return [espeak_korean(text, folder) for text in KOREAN]


@pytest.fixture(scope="module")
def vosk_korean() -> VoskStt:
    return VoskStt(bundled_vosk_korean_path())


def test_vosk_streams_korean_phone_audio(vosk_korean: VoskStt, korean_speech: list[np.ndarray]) -> None:
    pcm = np.concatenate([korean_speech[0], np.zeros(PHONE_RATE // 2, dtype=np.int16)])
    final, partials = transcribe(vosk_korean, pcm, PHONE_RATE)

    assert vosk_korean.sample_rate == PHONE_RATE
    assert partials and all(not p.is_final for p in partials)
    assert any(HANGUL.search(p.text) for p in partials), "partial text should arrive while the caller speaks"
    assert final.is_final and HANGUL.search(final.text), final
    assert_word_timings(final, len(pcm) * 1000 / PHONE_RATE)
    assert 0.0 <= final.confidence <= 1.0


def test_vosk_joins_segments_it_closed_mid_turn(vosk_korean: VoskStt, korean_speech: list[np.ndarray]) -> None:
    gap = np.zeros(PHONE_RATE * 3 // 2, dtype=np.int16)  # long enough for Vosk's endpointer to close a segment
    first, second = korean_speech
    final, _ = transcribe(vosk_korean, np.concatenate([first, gap, second]), PHONE_RATE)

    second_starts_ms = (len(first) + len(gap)) * 1000 / PHONE_RATE
    early = [w for w in final.words if w.end_ms <= len(first) * 1000 / PHONE_RATE + 100]
    late = [w for w in final.words if w.start_ms >= second_starts_ms - 100]
    assert early and late, final.words  # word times count from the stream start, not the segment start
    assert final.text == " ".join(w.text for w in final.words)
    assert_word_timings(final, (len(first) + len(gap) + len(second)) * 1000 / PHONE_RATE)


def test_vosk_missing_model_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-such-vosk"):
        VoskStt(tmp_path / "no-such-vosk")


def korean_settings(**overrides: str) -> SttSettings:
    return SttSettings(**{"vosk_model_path": str(bundled_vosk_korean_path()), "vosk_language": "ko", **overrides})


def test_auto_takes_vosk_when_a_model_for_the_language_is_set(vosk_korean: VoskStt) -> None:
    stt = make_stt(korean_settings(), "ko-KR")
    assert isinstance(stt, VoskStt) and stt.model is vosk_korean.model  # loaded once per process


def test_auto_takes_whisper_for_english(whisper: WhisperStt) -> None:
    for settings in (SttSettings(), korean_settings()):
        stt = make_stt(settings, "en-US")
        assert isinstance(stt, WhisperStt) and stt.model is whisper.model
    assert isinstance(make_stt(SttSettings(engine="whisper"), "en"), WhisperStt)


def test_auto_without_a_model_for_the_language_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="vosk_model_path.*'ko'"):
        make_stt(SttSettings(), "ko")
    with pytest.raises(ValueError, match="configured Vosk model is for 'ko'"):
        make_stt(korean_settings(), "es-MX")


@pytest.mark.parametrize("settings, language, message", [
    (SttSettings(engine="whisper"), "ko-KR", "only transcribes English"),
    (SttSettings(engine="vosk"), "en", "needs \\[stt\\] vosk_model_path"),
    (SttSettings(engine="vosk", vosk_model_path="/models/vosk-en", vosk_language="en"), "ko", "vosk_language is 'en'"),
])
def test_explicit_engines_refuse_settings_that_cannot_work(settings: SttSettings, language: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_stt(settings, language)


def test_explicit_vosk_with_a_missing_folder_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "vosk-model-small-en-us-0.15"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        make_stt(SttSettings(engine="vosk", vosk_model_path=str(missing)), "en-US")
