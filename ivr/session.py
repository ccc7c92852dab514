"""InterviewSession: one interview over 20 ms frames, the same for every leg (SIP, Twilio, web).

The leg calls `push_audio` for each frame it receives and `pull_audio` for each frame it must send (one
of each per 20 ms), `push_dtmf` for keypad digits and `remote_hangup` when the line drops; it reads
`control` for what it must do (clear buffered audio, hang up). `run()` is the conversation.

Timers (end of turn, re-prompt, inactivity, max duration) run on media time, the count of frames
received, so a leg that paces frames in real time behaves exactly like an in-process test that pushes
them faster. Blocking model work (STT, TTS) runs on the engines' thread pool, never on the event loop.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from config.settings import VoiceSettings
from config.templates import InterviewTemplate
from ivr.answers import Intent, detect_intent, is_backchannel
from ivr.engines import VoiceEngines
from ivr.frames import AudioFrame, frames_of
from ivr.interviewer import (InterviewState, Interviewer, Reply, ResumePoint, first_name, opening_sentences,
                             scripted_lines)
from ivr.phrasing import FollowUpPhraser
from understanding.listener import Listener, prepare_rubrics
from ivr.playback import Playback, Utterance
from ivr.recording import StereoRecorder
from ivr.stt.base import Transcript
from ivr.speaker import Speaker
from ivr.transcriber import TurnTranscriber
from ivr.transcript_sink import TranscriptSink
from ivr.tts.phrase_cache import ACKNOWLEDGEMENTS
from ivr.vad import EndpointConfig, Endpointer, SpeechStarted, TurnEnded, trails_off
from models.lifecycle import END_REASON_STATUS, Status
from models.recordings import DirectoryRecordings
from models.store import SessionStore

log = logging.getLogger("phonescreen.ivr")
PREROLL_MS = 300  # audio kept from before speech was confirmed, so the first syllable reaches STT
BARGE_IN_CONFIRM = 2  # speech this many times barge_in_ms long is an interruption whatever it says
FIXED_KINDS = frozenset({"reprompt", "goodbye"})  # replies whose wording never depends on the candidate
# Played from whole-sentence audio made beforehand: no silent gap can open inside them under load (the
# opening is made while the phone rings, see opening_of).
PREMADE_KINDS = FIXED_KINDS | {"greeting"}
ANTICIPATE_AFTER_QUIET_MS = 100  # past the VAD's last voiced frame: a pause, which may end the turn
OPEN_ANSWER_WORDS = 12  # fewer words than this, in answer to an interview question, is an answer just begun
STT_LAG_FRAMES = 2  # the recogniser this far behind the line is decoding, not just between two frames
TALKED_OVER_GRACE_MS = 600  # a reply begun this close to a prompt's end still heard the prompt
POLITE_END_QUIET_WAIT_S = 5.0  # end_politely runs inside the server's shutdown budget: a short wait to be heard
TRANSFER_WAIT_S = 30.0  # for the recruiter's side to answer a transfer
TALKED_OVER_WAIT_S = 30.0  # for a candidate who talked over a goodbye to finish, before it is said again
RESUME_GAP_MS = 1000  # between an earlier leg's last turn and a resumed leg, when there is no recording
# Said when the server must end a call early (shutdown): the interview ends partial.
POLITE_END = ("I'm sorry, we have to end the call here.", "Our team will be in touch.")


@dataclass(frozen=True)
class ClearPlayback:
    """The leg must drop audio it has already buffered (Twilio `clear`): the candidate barged in."""


@dataclass(frozen=True)
class Hangup:
    reason: str


@dataclass(frozen=True)
class Transfer:
    """The leg must put the caller through to a recruiter; `done` gets True once it has."""
    done: asyncio.Future


@dataclass
class TurnTiming:
    """Latency of one reply, for benchmarks and metrics. Wall-clock milliseconds from the endpoint
    unless named otherwise; add `endpoint_delay_ms` (media time waited in silence) for the total."""
    endpoint_delay_ms: int
    stt_final_ms: float = 0.0
    decide_ms: float = 0.0  # the interviewer, including LLM phrasing when it was used
    reply_source: str = "template"
    tts_first_audio_ms: float | None = None  # from the reply text to its first synthesized chunk
    first_audio_ms: float | None = None  # first AI frame on the wire (an acknowledgement or the reply)
    reply_audio_ms: float | None = None  # first frame of the reply itself
    acknowledged: bool = False
    ack_text: str | None = None  # the acknowledgement's words, to tell whether they vary from turn to turn

    @property
    def total_ms(self) -> float | None:
        """Candidate stops speaking -> first AI audio frame."""
        return None if self.first_audio_ms is None else self.endpoint_delay_ms + self.first_audio_ms


@dataclass(frozen=True)
class _CandidateTurn:
    transcript: Transcript
    start_ms: int
    end_ms: int
    timing: TurnTiming


@dataclass(frozen=True)
class _Signal:
    kind: str  # silence | dtmf | timeout | hangup
    value: str = ""


class InterviewSession:
    def __init__(self, *, store: TranscriptSink, interview_id: str, template: InterviewTemplate,
                 candidate_name: str, engines: VoiceEngines, voice: VoiceSettings, sample_rate: int = 8000,
                 recording_path: str | Path | None = None, timezone: str = "UTC",
                 resume: ResumePoint | None = None, earlier_legs_ms: int = 0,
                 can_transfer: Callable[[], bool] | None = None) -> None:
        """`resume`: this call goes on with a dropped interview; its turns and recording continue after the
        earlier legs' `earlier_legs_ms` (the recording is appended to)."""
        self.store, self.interview_id, self.template = store, interview_id, template
        self.engines, self.voice, self.sample_rate = engines, voice, sample_rate
        phraser = FollowUpPhraser(engines.llm, deadline_s=engines.llm_deadline_s) \
            if engines.llm is not None else None
        # Callback times are the candidate's local time; "now" is the store's clock (tests move it).
        self.interviewer = Interviewer(template, candidate_name, phraser,
                                       Listener(timezone=timezone, clock=store.clock), resume=resume,
                                       can_transfer=can_transfer)
        self.vad = engines.vad(voice.vad_aggressiveness, sample_rate)
        self.playback = Playback(sample_rate)
        self.recorder = StereoRecorder(recording_path, sample_rate, append=resume is not None) \
            if recording_path else None
        self.control: asyncio.Queue[ClearPlayback | Hangup | Transfer] = asyncio.Queue()
        self.timings: list[TurnTiming] = []
        self.status: str | None = None  # the interview's final status once run() returns
        # Media time goes on from the earlier legs, so one transcript's times match one recording.
        self.media_ms = self.recorder.recorded_ms if self.recorder and self.recorder.recorded_ms else earlier_legs_ms
        self.endpointer = Endpointer(EndpointConfig.from_settings(voice), start_ms=self.media_ms)
        self.idle = asyncio.Event()  # set while the session is not working out a reply
        self.idle.set()
        self._events: asyncio.Queue[_CandidateTurn | _Signal] = asyncio.Queue()
        self._preroll: deque[AudioFrame] = deque(maxlen=PREROLL_MS // 20)
        self._stt: TurnTranscriber | None = None
        self._partial = ""
        self._speech_started_ms = self.media_ms
        self._last_voiced_ms = self.media_ms
        self._silence_ms = 0  # media time with nobody speaking, since the AI last finished
        self._since_speech_ms = 0  # media time since the candidate last spoke (inactivity)
        self._timed_out = False
        self._pending: TurnTiming | None = None  # the reply being worked out, until its audio starts
        self._turn_before: TurnTiming | None = None  # the last candidate turn that ended
        self._endpoint_wall = 0.0
        self._begun_at_endpoint = 0
        self._ack_timer: asyncio.TimerHandle | None = None
        self._ack_index = random.randrange(len(ACKNOWLEDGEMENTS))  # calls do not all start on one word
        self._hung_up = asyncio.Event()
        self._candidate_quiet = asyncio.Event()  # set while no candidate speech is under way (endpointer)
        self._candidate_quiet.set()
        self._last_frame_wall = time.monotonic()
        self._ended = False
        self._last_prompt: Reply | None = None  # the last reply heard, in part or in full, and its end
        self._last_prompt_end_ms = 0
        self._cut_short = False  # ended by end_politely: partial, whatever the interviewer's state
        self._collecting: set[asyncio.Task] = set()  # turns whose final transcript is still coming
        # Lines every candidate of this template hears word for word: synthesized once per process.
        self._fixed_phrases = scripted_lines(template) | set(ACKNOWLEDGEMENTS)
        self.speaker = Speaker(engines, sample_rate, self._fixed_phrases, interview_id=interview_id)
        self.phrases = self.speaker.phrases
        # What the call opens with, made before its first word (a resumed call opens with a question instead).
        self._opening = () if resume is not None and resume.consented else opening_sentences(template, candidate_name)

    @classmethod
    def for_interview(cls, store: SessionStore, interview_id: str, *, engines: VoiceEngines, voice: VoiceSettings,
                      sample_rate: int = 8000, recordings_dir: str | Path | None = None,
                      can_transfer: Callable[[], bool] | None = None) -> "InterviewSession":
        """The session of a stored interview: the template at the interview's position version, the
        candidate's first name, and a recording in `recordings_dir`."""
        interview = store.get_interview(interview_id)
        position = store.get_position(interview.position_id, interview.position_version)
        candidate = store.get_candidate(interview.candidate_id)
        recording = DirectoryRecordings(recordings_dir).location(interview_id) if recordings_dir else None
        resume, earlier_ms = None, 0
        if interview.legs > 1 or interview.led_by == "ai_handover":
            # A resumed interview, or a recruiter's call handed to the AI: go on from what is stored.
            resume = ResumePoint.from_evaluations(store.turn_evaluations(interview_id).values())
            if interview.led_by == "ai_handover":
                resume = dataclasses.replace(resume, handover=True)
            earlier_ms = max((t.end_ms for t in store.turns(interview_id)), default=0) + RESUME_GAP_MS
        return cls(store=store, interview_id=interview_id, template=position.template,
                   candidate_name=first_name(candidate.name), engines=engines, voice=voice,
                   sample_rate=sample_rate, recording_path=recording, timezone=candidate.timezone or "UTC",
                   resume=resume, earlier_legs_ms=earlier_ms, can_transfer=can_transfer)

    @staticmethod
    def opening_of(store: SessionStore, interview_id: str) -> tuple[str, ...]:
        """The sentences a stored interview's call opens with (to synthesize while the phone rings)."""
        interview = store.get_interview(interview_id)
        if interview.legs > 1:  # a resumed call opens with its next question, made when the call is answered
            return ()
        template = store.get_position(interview.position_id, interview.position_version).template
        return opening_sentences(template, first_name(store.get_candidate(interview.candidate_id).name))

    # -- the leg's side ----------------------------------------------------------------------------
    def push_audio(self, frame: AudioFrame) -> None:
        """One received 20 ms frame. Cheap: VAD, endpointing and a hand-off to the STT thread."""
        if self._ended:
            return
        self.media_ms += 20
        self._last_frame_wall = time.monotonic()
        if self.recorder:
            self.recorder.candidate(frame.pcm)
        self._preroll.append(frame)
        voiced = self.vad.is_speech(frame)
        if voiced:
            self._last_voiced_ms = self.media_ms
        event = self.endpointer.update(voiced)
        if self.endpointer.in_speech:
            self._candidate_quiet.clear()
        else:
            self._candidate_quiet.set()
        if isinstance(event, SpeechStarted):
            self._on_speech_started(event)
        elif self._stt is not None:
            self._stt.put(frame)
            # The recogniser lags (it decodes at pauses): the turn must not end before its words are known.
            self.endpointer.words_pending(self.stt_backlog > STT_LAG_FRAMES)
            if isinstance(event, TurnEnded):
                self._on_turn_ended(event)
            elif not self.endpointer.in_speech:
                self._drop_stt()  # a burst too short to be speech: the endpointer let it go
        self._check_barge_in()
        self._advance_timers()

    def pull_audio(self) -> AudioFrame:
        """The next 20 ms frame to send: AI speech, or silence."""
        frame = self.playback.pull(self.media_ms)
        if self.recorder:
            self.recorder.agent(frame.pcm)
        utterance = self.playback.current
        if self._pending is not None and self.playback.begun > self._begun_at_endpoint \
                and utterance.started_ms is not None:
            self._note_first_audio(utterance)
        return frame

    def push_dtmf(self, digit: str) -> None:
        if not self._ended:
            self._events.put_nowait(_Signal("dtmf", digit))

    def end_politely(self, reason: str = "shutdown") -> None:
        """End the interview from our side now: once the AI has finished its current sentence it says a
        short goodbye and hangs up; the interview ends partial with every turn stored."""
        if not self._ended and not self._hung_up.is_set():
            self._events.put_nowait(_Signal("end", reason))

    def remote_hangup(self) -> None:
        """The candidate's side hung up or the stream dropped: the interview ends as partial, keeping
        the words spoken right before the line went dead."""
        if self._ended or self._hung_up.is_set():
            return
        if self._stt is not None and self._last_voiced_ms > self._speech_started_ms:
            self._on_turn_ended(TurnEnded(self._speech_started_ms, self._last_voiced_ms, 0))
        self._hung_up.set()
        self._events.put_nowait(_Signal("hangup"))

    @property
    def stt_backlog(self) -> int:
        """Frames of the turn in progress not yet taken by its speech recogniser."""
        return self._stt.backlog if self._stt is not None else 0

    @property
    def thinking(self) -> bool:
        return not self.idle.is_set()

    @property
    def waiting_for_audio(self) -> bool:
        """True while the session owes the line audio it has not made yet: before the opening, while
        working out a reply, or while synthesis lags playback. A faster-than-real-time line waits on it."""
        if self._ended:
            return False
        if self.playback.paused:
            return self.thinking  # a barge-in pause waits for the STT verdict: resume or interrupt
        if self.playback.queued:
            return False
        return self.playback.current is None or self.thinking or self.playback.active

    # -- turn-taking ---------------------------------------------------------------------------------
    def _on_speech_started(self, event: SpeechStarted) -> None:
        self._speech_started_ms = event.at_ms
        self._since_speech_ms = 0
        self._silence_ms = 0
        self._partial = ""
        self._drop_stt()
        job = TurnTranscriber(self.engines.stt, self.sample_rate, over_ai=self.playback.active,
                              first_frame_end_ms=self.media_ms - 20 * (len(self._preroll) - 1),
                              on_partial=self._on_partial, interview_id=self.interview_id)
        for frame in self._preroll:
            job.put(frame)
        self._stt = job

    def _on_partial(self, job: TurnTranscriber, text: str, heard_until_ms: int) -> None:
        """The words so far (of the audio up to `heard_until_ms`) tell the turn detector how long to wait:
        longer when they trail off ("um", "and", "because"), shorter when they are a finished thought and
        nothing was said after them."""
        if self._stt is not job:
            return  # the turn has ended (or was dropped) since this was decoded
        self._partial = text
        trailing = trails_off(text)
        hesitant = trailing or self._answer_just_begun(text)
        self.endpointer.hold(hesitant)
        if not hesitant:
            self.endpointer.complete_through(heard_until_ms)
        if not trailing and self.media_ms - self._last_voiced_ms >= ANTICIPATE_AFTER_QUIET_MS:
            self._anticipate(text)  # (a recogniser's partial mid-word would start the model every word)

    def _anticipate(self, text: str) -> None:
        """A follow-up these words would earn is worded while the candidate pauses (~10 ms here to judge)."""
        try:
            self.interviewer.anticipate(text)
        except Exception:  # only a head start is lost: the turn's own reply is worked out as usual
            log.exception("could not anticipate the reply", extra={"interview_id": self.interview_id})

    def _answer_just_begun(self, text: str) -> bool:
        """A sentence or two into the answer to an interview question ("I can work evenings."): people pause
        there to go on, so it gets a hesitant speaker's time. A question of their own does not wait."""
        return self.interviewer.state is InterviewState.QUESTIONS and len(text.split()) < OPEN_ANSWER_WORDS \
            and not text.rstrip().endswith("?")

    def _drop_stt(self) -> None:
        if self._stt is not None:
            self._stt.drop()
            self._stt = None

    def _on_turn_ended(self, event: TurnEnded) -> None:
        job, self._stt = self._stt, None
        job.finish()
        self.idle.clear()
        self._endpoint_wall = time.monotonic()
        timing = TurnTiming(endpoint_delay_ms=event.silence_ms)
        self._pending = timing
        self._begun_at_endpoint = self.playback.begun  # only audio begun after this answers the turn
        # A late reply gets an acknowledgement, but never two turns running: a candidate hears a pattern.
        # (The turn before's timing, not the last one handled: on a loaded machine that may be older.)
        acknowledged_last = self._turn_before is not None and self._turn_before.acknowledged
        self._turn_before = timing
        if not self.playback.active and not acknowledged_last:
            delay = self.voice.reply_deadline_ms / 1000
            self._ack_timer = asyncio.get_running_loop().call_later(delay, self._acknowledge, timing)
        task = asyncio.get_running_loop().create_task(self._collect_turn(job, event, timing))
        self._collecting.add(task)
        task.add_done_callback(self._collecting.discard)

    async def _collect_turn(self, job: TurnTranscriber, event: TurnEnded, timing: TurnTiming) -> None:
        try:
            transcript = await job.result
        except Exception:
            transcript = Transcript("", True)
        timing.stt_final_ms = (time.monotonic() - self._endpoint_wall) * 1000
        text = transcript.text.strip()
        if not text or (job.over_ai and self.playback.active and
                        self._backchannel(text, event.end_ms - event.start_ms)):
            self.playback.paused = False  # noise or "mm-hmm" over the AI: carry on where it paused
            self._cancel_pending()
            return
        if self.playback.paused:
            self._interrupt()  # real words over the AI: the rest of its utterance is dropped
        self._events.put_nowait(_CandidateTurn(transcript, event.start_ms, event.end_ms, timing))

    def _backchannel(self, text: str, voiced_ms: int) -> bool:
        """Speech over the AI that is a listener's nod, not a turn: "mm-hmm", "yeah", or anything that
        short (small STT models mishear hums: "Mm-hmm" came back as "Amen, Mom" and "Hey, man, mom.") unless it asks to stop
        or repeat."""
        if is_backchannel(text):
            return True
        brief = voiced_ms < self.voice.barge_in_ms * BARGE_IN_CONFIRM and len(text.split()) <= 3
        return brief and detect_intent(text) not in (Intent.REPEAT_REQUEST, Intent.STOP_REQUEST)

    def _check_barge_in(self) -> None:
        """Candidate speech over the AI pauses playback at once; it becomes an interruption when the
        speech goes on (or turns out not to be a backchannel), else playback resumes where it paused."""
        if not (self.endpointer.in_speech and self.playback.active):
            return
        # Voiced time, not time since onset: "mm-hmm" then silence must not count as a long interruption.
        voiced = self._last_voiced_ms - self._speech_started_ms
        if voiced < self.voice.barge_in_ms or (self._partial and is_backchannel(self._partial)):
            return
        if not self.playback.paused:
            self.playback.paused = True
            self.control.put_nowait(ClearPlayback())
        if voiced >= self.voice.barge_in_ms * BARGE_IN_CONFIRM:
            self._interrupt()

    def _interrupt(self) -> None:
        self.playback.interrupt()

    def _advance_timers(self) -> None:
        if self._timed_out:
            return
        if self.media_ms >= self.template.max_duration_s * 1000:
            self._timeout("max_duration")
            return
        if self.endpointer.in_speech or self.playback.active or self.thinking or self._stt is not None:
            return  # somebody is talking or a reply is on its way: nobody is waiting on the candidate
        self._since_speech_ms += 20
        self._silence_ms += 20
        if self._since_speech_ms >= self.template.inactivity_timeout_s * 1000:
            self._timeout("inactivity")
        elif self._silence_ms >= self.template.silence_reprompt_s * 1000:
            self._silence_ms = 0
            self._events.put_nowait(_Signal("silence"))

    def _timeout(self, reason: str) -> None:
        self._timed_out = True
        self._events.put_nowait(_Signal("timeout", reason))

    async def _watch_stalled_line(self) -> None:
        """No frames at all (a stalled stream) for the inactivity timeout: end the interview, keep the
        transcript. Media time cannot see this, so it is the one wall-clock timer."""
        limit = self.template.inactivity_timeout_s
        while not self._ended:
            await asyncio.sleep(min(1.0, limit / 4))
            if time.monotonic() - self._last_frame_wall >= limit and not self._timed_out:
                self._timeout("inactivity")

    # -- replies -----------------------------------------------------------------------------------
    def _acknowledge(self, timing: TurnTiming) -> None:
        """Nothing to say yet when the deadline passes: a short acknowledgement, never dead air."""
        if self._pending is not timing or self.playback.active:
            return
        text = ACKNOWLEDGEMENTS[self._ack_index % len(ACKNOWLEDGEMENTS)]
        self._ack_index += 1
        utterance = self.playback.begin()
        sentence = self.playback.add_sentence(utterance, text)
        self.playback.enqueue(utterance, sentence, frames_of(self.phrases.get(text), self.sample_rate), last=True)
        timing.acknowledged, timing.ack_text = True, text

    def _note_first_audio(self, utterance: Utterance) -> None:
        timing = self._pending
        elapsed = (time.monotonic() - self._endpoint_wall) * 1000
        if timing.first_audio_ms is None:
            timing.first_audio_ms = elapsed
        first = utterance.reply_from
        if timing.reply_audio_ms is None and first is not None and len(utterance.sentences) > first \
                and utterance.sentences[first].played:
            timing.reply_audio_ms = elapsed
            self._pending = None
            self.idle.set()

    def _cancel_pending(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        if self._pending is not None and self._pending.acknowledged and self.playback.current is not None:
            self.playback.close(self.playback.current)  # the acknowledgement stands alone: let it end
        self._pending = None
        self.idle.set()

    async def _say(self, reply: Reply, timing: TurnTiming | None = None) -> bool:
        """Speak a reply sentence by sentence (synthesis of the next overlaps playback of the first),
        wait until it has been played or interrupted, and store what the candidate actually heard.
        True when it was heard in full (not interrupted, no hang-up)."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        if not reply.say:
            self._cancel_pending()
            return True
        utterance = self.playback.current
        acknowledging = timing is not None and timing.acknowledged and utterance is not None \
            and not utterance.interrupted and not utterance.closed
        if not acknowledging:
            utterance = self.playback.begin()
        utterance.reply_from = len(utterance.sentences)  # what follows is the reply, after any acknowledgement
        ready_wall = time.monotonic()
        for text in reply.say:
            if utterance.done.is_set() or self._hung_up.is_set():
                break  # interrupted or replaced: nothing more of it will be heard
            sentence = self.playback.add_sentence(utterance, text)
            async for pcm in self.speaker.audio(text, cached=reply.kind in PREMADE_KINDS):
                if timing is not None and timing.tts_first_audio_ms is None:
                    timing.tts_first_audio_ms = (time.monotonic() - ready_wall) * 1000
                self.playback.enqueue(utterance, sentence, frames_of(pcm, self.sample_rate))
            self.playback.enqueue(utterance, sentence, [], last=True)
        self.playback.close(utterance)
        await self._wait_played(utterance)
        cut = utterance.interrupted or self._hung_up.is_set()
        spoken = utterance.spoken_text() if cut else utterance.full_text
        if spoken:
            start = utterance.started_ms if utterance.started_ms is not None else self.media_ms
            end = utterance.ended_ms if utterance.ended_ms is not None else start
            self._last_prompt, self._last_prompt_end_ms = reply, end
            turn = self.store.add_turn(self.interview_id, role="agent", text=spoken, start_ms=start, end_ms=end,
                                       interrupted=cut)
            # What was asked, from the interviewer itself: a question cut short still counts for its factor.
            self.store.set_turn_evaluation(self.interview_id, turn.turn_number, role="agent", kind=reply.kind,
                                           factor=reply.factor)
        self._silence_ms = 0
        if self._pending is timing:
            self._cancel_pending()
        return not cut

    async def _wait_played(self, utterance: Utterance) -> None:
        done = asyncio.ensure_future(utterance.done.wait())
        hung_up = asyncio.ensure_future(self._hung_up.wait())
        await asyncio.wait({done, hung_up}, return_when=asyncio.FIRST_COMPLETED)
        for task in (done, hung_up):
            task.cancel()

    # -- the conversation ----------------------------------------------------------------------------
    async def run(self) -> str:
        """The whole interview. Returns the final status (completed, or partial if the line dropped)."""
        watchdog = asyncio.create_task(self._watch_stalled_line())
        try:
            loop = asyncio.get_running_loop()
            loop.run_in_executor(self.engines.executor, prepare_rubrics, self.template.factors)
            # The opening's sentences in order (already made if the phone rang long enough): its first word
            # plays as soon as its first sentence is ready, the rest are made while that one plays.
            loop.run_in_executor(self.engines.executor, self.phrases.warm, (*self._opening, *ACKNOWLEDGEMENTS))
            # The template's fixed lines are made while the greeting plays, once per process.
            loop.run_in_executor(self.engines.executor, self.phrases.warm, self._fixed_phrases)
            reply = self.interviewer.opening()
            if not await self._say(reply):
                self.interviewer.prompt_cut_short(reply)  # a yes into the greeting is not consent
            while not reply.end_call and not self._hung_up.is_set():
                event = await self._events.get()
                if isinstance(event, _Signal) and event.kind == "hangup":
                    break
                if isinstance(event, _Signal) and event.kind == "end":
                    reply = await self._say_polite_end(event.value)
                    break
                reply, timing = await self._handle(event)
                if not await self._say(reply, timing):
                    self.interviewer.prompt_cut_short(reply)  # e.g. a consent question nobody heard in full
                    if reply.end_call and not self._hung_up.is_set():
                        await self._say_again(reply)  # the closing is always heard
            if reply.kind == "transfer" and not self._hung_up.is_set() and not await self._put_through():
                reply = self.interviewer.transfer_failed()
                await self._say(reply)
            if self._hung_up.is_set() or reply.end_call:
                await self._store_last_words()  # words said over the goodbye are kept too
            if (self._hung_up.is_set() and not reply.end_call) or self._cut_short:
                self.status = Status.PARTIAL
            else:  # the interviewer ended the call: its reason says how (completed, declined, withdrawn, ...)
                self.status = END_REASON_STATUS.get(self.interviewer.end_reason or "completed", Status.COMPLETED)
        except Exception:
            log.exception("interview session failed", extra={"interview_id": self.interview_id})
            self.status = Status.PARTIAL  # every turn so far is stored; the call itself is lost
        finally:
            self.status = self.status or Status.PARTIAL  # cancelled (worker shutdown): the call was cut short
            self._ended = True
            watchdog.cancel()
            self._drop_stt()
            self._finish()
        return self.status

    async def _put_through(self) -> bool:
        """Ask the leg to transfer the call to a recruiter; True once it has (bounded wait)."""
        done = asyncio.get_running_loop().create_future()
        self.control.put_nowait(Transfer(done))
        try:
            handed_over = await asyncio.wait_for(asyncio.shield(done), TRANSFER_WAIT_S)
        except TimeoutError:
            handed_over = False
        log.info("transfer to a recruiter %s", "done" if handed_over else "failed",
                 extra={"interview_id": self.interview_id})
        return bool(handed_over)

    async def _say_polite_end(self, reason: str) -> Reply:
        """The server ends the call (end_politely): store what the candidate said so far, then the goodbye."""
        log.info("ending the interview early: %s", reason, extra={"interview_id": self.interview_id})
        self._cut_short = True
        if self._stt is not None and self._last_voiced_ms > self._speech_started_ms:
            self._on_turn_ended(TurnEnded(self._speech_started_ms, self._last_voiced_ms, 0))  # keep those words
            self._cancel_pending()  # no acknowledgement: the goodbye follows
        await self._store_last_words()
        reply = Reply(POLITE_END, end_call=True, kind="goodbye")
        if not await self._say(reply) and not self._hung_up.is_set():
            # talked over (an answer already on its way), like a closing; a shutting-down server waits less
            await self._say_again(reply, quiet_wait_s=POLITE_END_QUIET_WAIT_S)
        return reply

    async def _say_again(self, goodbye: Reply, quiet_wait_s: float = TALKED_OVER_WAIT_S) -> None:
        """A goodbye the candidate talked over is said again once they have finished, after their words are
        stored. Said at once, the same speech would interrupt it again before its first word."""
        quiet = asyncio.ensure_future(self._candidate_quiet.wait())
        hung_up = asyncio.ensure_future(self._hung_up.wait())
        await asyncio.wait({quiet, hung_up}, timeout=quiet_wait_s, return_when=asyncio.FIRST_COMPLETED)
        for task in (quiet, hung_up):
            task.cancel()
        if self._hung_up.is_set():
            return
        self._cancel_pending()  # no acknowledgement of their words: the goodbye follows
        await self._store_last_words()
        await self._say(Reply(("Sorry, as I was saying.", *goodbye.say), end_call=True, kind=goodbye.kind))

    async def _store_last_words(self) -> None:
        """After a hang-up: wait for transcripts still being decoded and store them, unanswered."""
        if self._collecting:
            await asyncio.wait(self._collecting, timeout=30)
        while not self._events.empty():
            event = self._events.get_nowait()
            if isinstance(event, _CandidateTurn):
                self._store_candidate_turn(event)

    def _store_candidate_turn(self, event: _CandidateTurn) -> tuple[str, int]:
        text = _clean(event.transcript.text)
        turn = self.store.add_turn(self.interview_id, role="candidate", text=text, start_ms=event.start_ms,
                                   end_ms=event.end_ms, stt_confidence=event.transcript.confidence)
        return text, turn.turn_number

    def _store_understanding(self, turn_number: int, heard_before: int) -> None:
        """What the interviewer made of the turn just stored: its intent and, for an answer, its evaluation,
        kept with the turn as it ends (scoring builds the scorecard from these)."""
        if len(self.interviewer.heard) <= heard_before:
            return
        heard = self.interviewer.heard[-1]
        self.store.set_turn_evaluation(self.interview_id, turn_number, role="candidate", kind=heard.kind,
                                       factor=heard.factor, question=heard.question, evaluation=heard.evaluation)

    async def _handle(self, event: _CandidateTurn | _Signal) -> tuple[Reply, TurnTiming | None]:
        if isinstance(event, _CandidateTurn):
            if self._last_prompt is not None and event.start_ms < self._last_prompt_end_ms - TALKED_OVER_GRACE_MS:
                # Speech that began well before the prompt ended (even without a barge-in) answered
                # something other than the prompt: a consent question talked over is asked again.
                self.interviewer.prompt_cut_short(self._last_prompt)
            text, turn_number = self._store_candidate_turn(event)
            started = time.monotonic()
            heard_before = len(self.interviewer.heard)
            reply = await self.interviewer.on_candidate_turn(text)
            event.timing.decide_ms = (time.monotonic() - started) * 1000
            self._store_understanding(turn_number, heard_before)
            event.timing.reply_source = reply.source
            self.timings.append(event.timing)
            return reply, event.timing
        if event.kind == "silence":
            return self.interviewer.on_silence(), None
        if event.kind == "dtmf":
            return self.interviewer.on_dtmf(event.value), None
        return self.interviewer.on_timeout(event.value), None

    def _finish(self) -> None:
        if self.recorder:
            self.recorder.close()
            if self.status == Status.DECLINED:
                # No consent, no recording: the audio is deleted at once (the transcript is only the consent
                # exchange, since no question was asked).
                self.recorder.path.unlink(missing_ok=True)
            else:
                self.store.set_recording(self.interview_id, str(self.recorder.path))
        reason = self.interviewer.end_reason if self.status != Status.PARTIAL else (
            "shutdown" if self._cut_short else "hung_up")
        try:
            if self.interviewer.callback_at is not None and self.status == Status.CALLBACK_SCHEDULED:
                self.store.schedule_callback(self.interview_id, self.interviewer.callback_at)
            self.store.transition(self.interview_id, self.status, reason=reason)
        except Exception:
            log.exception("could not store the final status", extra={"interview_id": self.interview_id})
        self.control.put_nowait(Hangup(str(self.status)))


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
