"""The interview's dialog policy: what to say next, given what the candidate said or did. Text in, text
out: no audio, no SIP, no clock (InterviewSession turns audio, keypad and timers into these calls).

Every decision comes from the understanding component (understanding/): the turn's intent from a
sentence-embedding classifier trained on labelled turns, the answer's evaluation against the factor's
anchors. Both say why, in words. The wording of a follow-up may come from an LLM, behind the guard, but
never the decision to ask one.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Callable, Iterable

from config.templates import EvaluationFactor, InterviewTemplate
from ivr.phrasing import FollowUpPhraser
from models.records import TurnEvaluation
from understanding.intents import DialogState, Intent, Understanding
from understanding.listener import Listener

if TYPE_CHECKING:
    from understanding.evaluator import AnswerEvaluation

log = logging.getLogger("phonescreen.ivr")

GOODBYE = "Thank you for your time, and goodbye."
BEGIN = "Thank you, let's begin."  # leads into the first question once consent is given
NEXT = "Thank you."  # leads into each next question
REPHRASE = "Let me put it another way."
REPEAT = "Sure."  # before a question said again
FOLLOW_UP_BELOW = 50  # evaluator score (0-100, calibrated on rated answers): below it, short of adequate
REPROMPTS = ("Take your time.", "No rush. Take a moment to think it over.", "Whenever you're ready.",
             "I'm still here. Take your time.")
_HYPOTHETICAL = re.compile(r"\b(?:imagine|would you|you would|what do you do)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


class InterviewState(Enum):
    GREETING = "greeting"  # nothing said yet
    CONSENT = "consent"  # the recording and AI disclosure was read; waiting for a clear yes
    QUESTIONS = "questions"
    CALLBACK_CONFIRM = "callback_confirm"  # a callback time was said back: waiting for "yes, that's right"
    CALLBACK_WHEN = "callback_when"  # the candidate wants a callback: waiting for when
    DONE = "done"  # the last reply ended the call (closing, goodbye or timeout)


@dataclass(frozen=True)
class Reply:
    say: tuple[str, ...]  # sentences to speak, in order; empty: say nothing and keep listening
    end_call: bool = False
    kind: str = "none"  # greeting consent question follow_up repeat reprompt closing goodbye none
    factor: str | None = None
    source: str = "template"  # template | llm (a guarded LLM follow-up) | fallback (the LLM gave nothing usable)


@dataclass(frozen=True)
class ResumePoint:
    """What the earlier legs of a dropped interview got through: the consent, and the factors answered."""
    consented: bool
    answered: frozenset[str]  # factor names with at least one answer
    handover: bool = False  # a recruiter handed their live call to the AI (not a dropped line)

    @classmethod
    def from_evaluations(cls, evaluations: Iterable[TurnEvaluation]) -> "ResumePoint":
        """From the stored understanding of each turn: a question was asked only after consent."""
        evaluations = list(evaluations)
        answered = frozenset(e.factor for e in evaluations if e.role == "candidate" and e.kind == "answer" and e.factor)
        asked = any(e.role in ("agent", "recruiter") and e.kind in ("question", "follow_up") for e in evaluations)
        return cls(consented=asked or bool(answered), answered=answered)


@dataclass(frozen=True)
class AskedQuestion:
    factor: str
    question: str
    kind: str  # main | follow_up
    answers: tuple[str, ...] = ()  # the candidate turns that answered it


@dataclass(frozen=True)
class HeardTurn:
    """One candidate turn as the interviewer understood it: for transcripts, rehearsals and scoring."""
    text: str
    understanding: Understanding | None  # None for what needs no model (an empty turn)
    factor: str | None = None  # the factor being asked about when it was said
    question: str | None = None  # the question it answers, when it is an answer
    evaluation: dict | None = None  # the answer's evaluation (score, flags, reasoning)

    @property
    def kind(self) -> str:
        """What is stored as the turn's kind: its intent."""
        return self.understanding.intent.value if self.understanding else "unclassified"


_ECHO_RUN = 5  # words in a row, as we said them
MAX_TIME_OFFERS = 3  # callback times said back without a yes: then a recruiter finds the time
MAX_ECHOES = 3  # turns in a row that are only our own voice coming back: the call ends
_WORDS = re.compile(r"[a-z0-9']+")


def is_echo(heard: str, said: str) -> bool:
    """True when a candidate turn is our own words coming back: nearly all of its words are ours and at
    least _ECHO_RUN of them in a row, as we said them. "Yes, I agree to continue" after "Do you agree to
    continue?" shares three words in a row: not an echo."""
    heard_words, said_words = _WORDS.findall(heard.lower()), _WORDS.findall(said.lower())
    if len(heard_words) < _ECHO_RUN or not said_words:
        return False
    ours = set(said_words)
    if sum(word in ours for word in heard_words) < 0.8 * len(heard_words):
        return False
    joined = " " + " ".join(said_words) + " "
    return any(" " + " ".join(heard_words[i:i + _ECHO_RUN]) + " " in joined
               for i in range(len(heard_words) - _ECHO_RUN + 1))


def spoken_time(moment: datetime, now: datetime) -> str:
    """ "tomorrow, Wednesday, at 10 a.m." — the way a person confirms a time on the phone."""
    local_now = now.astimezone(moment.tzinfo)
    days = (moment.date() - local_now.date()).days
    weekday = moment.strftime("%A")
    day = ("today" if days == 0 else f"tomorrow, {weekday}," if days == 1 else
           f"{weekday}" if days < 7 else f"{weekday}, {moment.strftime('%B')} {moment.day},")
    hour = moment.hour % 12 or 12
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    noon = "noon" if (moment.hour, moment.minute) == (12, 0) else None
    clock = noon or f"{hour}{minutes} {'a.m.' if moment.hour < 12 else 'p.m.'}"
    return f"{day} at {clock}"


def sentences(text: str) -> tuple[str, ...]:
    """Split at sentence ends, so speech synthesis can start on the first sentence."""
    return tuple(part for part in _SENTENCE_END.split(" ".join(text.split())) if part)


def scripted_lines(template: InterviewTemplate) -> frozenset[str]:
    """Sentences every candidate of `template` hears word for word (consent, the first question of each
    factor, the template's follow-up probes, the closing): synthesized once per process, ahead of need."""
    questions = (line for factor in template.factors for line in sentences(factor.questions[0]))
    probes = (line for factor in template.factors for attempt in (1, 2)
              for line in sentences(example_probe(factor, factor.questions[0], attempt)))
    return frozenset({*sentences(template.consent), BEGIN, NEXT, REPHRASE, REPEAT, *questions, *probes,
                      *sentences(template.closing), GOODBYE})


def first_name(full_name: str) -> str:
    """How the interviewer addresses a candidate."""
    return full_name.split()[0] if full_name.split() else full_name


def opening_sentences(template: InterviewTemplate, candidate_name: str) -> tuple[str, ...]:
    """The greeting with the candidate's name, then the consent question: what the call opens with, so it
    can be synthesized while the phone rings. The clause with the name is a piece of its own ("Hi Ana,"):
    it is all that must be made for this candidate (quick, being short), the rest is the same for every
    candidate of the template and is made once per process."""
    pieces: list[str] = []
    for sentence in sentences(f"{template.render_greeting(candidate_name)} {template.consent}"):
        named = sentence.find(candidate_name) if candidate_name and not pieces else -1
        comma = sentence.find(",", named + len(candidate_name)) if named >= 0 else -1
        if comma >= 0 and sentence[comma + 1:].strip():
            pieces += [sentence[:comma + 1], sentence[comma + 1:].strip()]
        else:
            pieces.append(sentence)
    return tuple(pieces)


def shortened(question: str) -> str:
    """The question from its last sentence with a question mark (else its last sentence), for a
    re-prompt: "Do you agree to continue? Say yes or press 1." rather than the whole disclosure."""
    parts = sentences(question)
    asking = [i for i, part in enumerate(parts) if part.endswith("?")]
    return " ".join(parts[asking[-1]:] if asking else parts[-1:])


def example_probe(factor: EvaluationFactor, question: str, attempt: int) -> str:
    """The template's own follow-up asking for a concrete example (used without an LLM, and whenever the
    LLM's wording is late or rejected). Worded to pass ivr.guard.guard_question like any LLM text."""
    if attempt > 1:
        return ("Could you describe one real situation from work, school or volunteering, "
                "including what you did and the outcome?")
    if _HYPOTHETICAL.search(question):
        return "Could you walk me through it step by step, with the exact words you would use?"
    return (f"Could you tell me about one specific time that showed your {factor.name.lower()}, "
            "including what you did and the outcome?")


class Interviewer:
    """GREETING -> CONSENT -> QUESTIONS -> DONE.

    Consent: the opening reads the greeting and the AI/recording disclosure. Only a clear yes (or keypad
    1) starts the questions; a no or a stop request ends the call politely; anything else gets the
    consent question once more, and a second unclear turn ends the call (consent must be explicit).

    Questions, factor by factor in template order:
    - One main question per factor: the factor's first question.
    - After each answer, analyze_answer decides. A vague or short answer gets a follow-up asking for a
      concrete example, while the factor has follow-ups left (max_follow_ups); otherwise, or after a
      concrete answer, the interview moves to the next factor, and after the last one to the closing.
    - The factor's other questions are alternates: when the candidate asks to repeat the main question
      a second time, it is put another way with the next alternate (a repeat does not count as an
      answer); the first request, and any when no alternate is left, repeats the question verbatim.
    - A turn that is only a listening noise or a yes ("mm-hmm", "okay", "sure") is not an answer: the
      interviewer says nothing and keeps listening.

    Silence: the first silence after a prompt gets a short re-prompt, the second in a row ends the call.
    A stop request ends the call in any state.
    """

    def __init__(self, template: InterviewTemplate, candidate_name: str,
                 phraser: FollowUpPhraser | None = None, listener: Listener | None = None,
                 resume: ResumePoint | None = None, can_transfer: Callable[[], bool] | None = None) -> None:
        """`resume`: this call goes on with a dropped interview (its earlier legs' consent and answers).
        `can_transfer`: whether a recruiter can take the call now (the position's hand-off policy, the
        recruiters' hours, a transfer target for this channel); None: never, a recruiter calls back."""
        self._template = template
        self._can_transfer = can_transfer
        self._resume = resume if resume is not None and resume.consented else None
        self._candidate_name = candidate_name
        self._phraser = phraser
        self._listener = listener or Listener()
        self.heard: list[HeardTurn] = []  # every candidate turn, as understood
        self.callback_at: datetime | None = None  # a callback the candidate asked for and confirmed
        self.human_requested = False  # the candidate asked for a person: a recruiter follows up
        self._resume_state = InterviewState.CONSENT  # where a callback exchange that is called off goes back
        self._consent_heard = False  # the consent question was played in full since it was last asked
        self._last_said = ""  # the interviewer's last words, to tell an echo of them from the candidate
        self._echoes = 0  # echoes of our own words in a row
        self._unclear_times = 0  # callback answers with no time in them
        self._time_offers = 0  # callback times offered back that were not confirmed
        self._state = InterviewState.GREETING
        self._asked: list[AskedQuestion] = []
        self._factor_index = 0
        self._follow_ups = 0  # asked for the current factor
        self._next_alternate = 1  # index of the current factor's next unused question
        self._prompt = ""  # the last consent text or question, for repeats and re-prompts
        self._repeats = 0  # repeat requests since the prompt was last asked
        self._silences = 0  # in a row, with no candidate turn between
        self._unclear_consents = 0
        self._end_reason: str | None = None

    # -- what callers read --------------------------------------------------------------------------
    @property
    def state(self) -> InterviewState:
        return self._state

    @property
    def current_factor(self) -> str | None:
        return self._factor.name if self._state is InterviewState.QUESTIONS else None

    @property
    def asked(self) -> list[AskedQuestion]:
        """Every question asked, in order, with the candidate turns that answered it (a copy)."""
        return list(self._asked)

    @property
    def finished(self) -> bool:
        return self._state is InterviewState.DONE

    @property
    def end_reason(self) -> str | None:
        """Why the call ended: completed, declined, no_consent, stopped, no_response, callback_scheduled,
        human_requested, or the timeout reason (max_duration, inactivity); None while it goes on."""
        return self._end_reason

    # -- events -------------------------------------------------------------------------------------
    def opening(self) -> Reply:
        """The greeting with the candidate's name, then the consent question; on a resumed call, a word about
        the drop and the first question not answered yet (consent was given on the earlier leg)."""
        if self._resume is not None:
            return self._noting(self._resumed_opening(self._resume))
        self._state = InterviewState.CONSENT
        self._set_prompt(self._template.consent)
        self._consent_heard = True  # unless the session reports it cut short (prompt_cut_short)
        return self._noting(Reply(opening_sentences(self._template, self._candidate_name), kind="greeting"))

    async def on_candidate_turn(self, text: str) -> Reply:
        if self._state is not InterviewState.DONE and is_echo(text, self._last_said):
            # The line sent our own voice back ("Do you agree to continue? Say yes..."): not the candidate.
            self._echoes += 1
            log.info("turn ignored as an echo of the interviewer (%d in a row)", self._echoes)
            if self._echoes >= MAX_ECHOES:  # nothing but our own voice comes back: the line is broken
                return self._end("bad_line", "I'm sorry, the line seems to have a problem, so I'll end the call "
                                             "here.", GOODBYE)
            return Reply((), factor=self.current_factor)
        self._echoes = 0
        return self._noting(self._noting_consent_asked(await self._on_candidate_turn(text)))

    def _noting(self, reply: Reply) -> Reply:
        """Remember what is about to be said, to recognise it if the line echoes it back."""
        if reply.say:
            self._last_said = " ".join(reply.say)
        return reply

    def _noting_consent_asked(self, reply: Reply) -> Reply:
        """A reply that asks the consent question again (a repeat, a re-prompt) counts as heard until the
        session says otherwise (prompt_cut_short)."""
        if self._state is InterviewState.CONSENT and reply.kind in ("consent", "repeat", "reprompt"):
            self._consent_heard = True
        return reply

    async def _on_candidate_turn(self, text: str) -> Reply:
        if self._state is InterviewState.DONE:
            return _ended()
        if not text.strip():  # speech-to-text heard nothing: keep listening
            return Reply(())
        if self._state is InterviewState.GREETING:  # "Hello?" as the call connects
            self.heard.append(HeardTurn(text, None))
            return self.opening()
        self._silences = 0
        if self._state is InterviewState.CALLBACK_WHEN:
            return self._on_callback_when(text)
        dialog = DialogState.QUESTION if self._state is InterviewState.QUESTIONS else DialogState.CONSENT
        heard = self._listener.read(text, dialog)
        log.info("turn understood as %s: %s", heard.intent.value, heard.reason)
        factor = self._factor.name if self._state is InterviewState.QUESTIONS else None
        self.heard.append(HeardTurn(text, heard, factor))
        if self._state is InterviewState.CALLBACK_CONFIRM:
            return self._on_callback_confirm(text, heard)
        intent = heard.intent
        if intent is Intent.STOP:
            return self._end("stopped", "Of course, we'll stop here.", GOODBYE)
        if intent is Intent.REPEAT:
            return self._repeat()
        if intent is Intent.CALLBACK:
            return self._callback(heard.callback_at)
        if intent is Intent.HUMAN:
            return self._human()
        if intent is Intent.QUESTION:
            return self._answer_question(text)
        if self._state is InterviewState.CONSENT:
            return self._on_consent(intent)
        if intent in (Intent.BACKCHANNEL, Intent.UNCLEAR):
            return Reply((), factor=self._factor.name)
        return await self._on_answer(text)

    def prompt_cut_short(self, reply: Reply) -> None:
        """The session could not play `reply` in full: the candidate talked over it or the line broke.
        A consent question nobody heard to the end cannot be answered: it is asked again before any yes
        counts (a "yes, go ahead" said into a pause of the greeting is not consent)."""
        if self._state is InterviewState.CONSENT and reply.kind in ("greeting", "consent", "repeat", "reprompt"):
            self._consent_heard = False

    def on_dtmf(self, digit: str) -> Reply:
        return self._noting(self._on_dtmf(digit))

    def _on_dtmf(self, digit: str) -> Reply:
        """Keypad: 1 agrees during consent, 9 repeats the last question; other keys are ignored."""
        if self._state is InterviewState.DONE:
            return _ended()
        if self._state is InterviewState.CONSENT and digit == "1":
            self._silences = 0
            return self._start_questions()
        if digit == "9" and self._state is not InterviewState.GREETING:
            self._silences = 0
            return self._repeat(verbatim=True)
        return Reply((), factor=self.current_factor)

    def on_silence(self) -> Reply:
        return self._noting(self._on_silence())

    def _on_silence(self) -> Reply:
        """The candidate said nothing for the template's re-prompt time after a prompt. Thinking in silence
        is allowed: the call stays open, re-prompted kindly with varied words, until the session's
        inactivity timeout (the template's inactivity_timeout_s) ends it."""
        if self._state is InterviewState.DONE:
            return _ended()
        if self._state is InterviewState.GREETING:
            return self.opening()
        self._silences += 1
        if self._state is not InterviewState.QUESTIONS:
            return self._noting_consent_asked(Reply(("Are you still there?", *sentences(shortened(self._prompt))),
                                                    kind="reprompt", factor=self.current_factor))
        lead = REPROMPTS[(self._silences - 1) % len(REPROMPTS)]
        # The question again on the first re-prompt and every third after it; between them, only a kind word.
        question = sentences(shortened(self._prompt)) if self._silences % 3 == 1 else ()
        return Reply((lead, *question), kind="reprompt", factor=self.current_factor)

    def on_timeout(self, reason: str) -> Reply:
        """The call must end now: reason "max_duration" (the template's limit) or "inactivity"."""
        if self._state is InterviewState.DONE:
            return _ended()
        lines = {
            "max_duration": "We've reached the time limit for this interview, so I'll stop here.",
            "inactivity": "I haven't heard from you in a while, so I'll end the call here.",
        }
        # Total silence for the inactivity timeout is the candidate not responding.
        return self._end("no_response" if reason == "inactivity" else reason,
                         lines.get(reason, "I need to end the call here."), GOODBYE)

    # -- what the candidate asks for ----------------------------------------------------------------
    def _back_to_prompt(self, lead: str) -> Reply:
        """Say `lead`, then ask the pending question (or the consent question) again, shortened."""
        return Reply((*sentences(lead), *sentences(shortened(self._prompt))), kind="repeat",
                     factor=self.current_factor)

    def _answer_question(self, question: str) -> Reply:
        fact = self._listener.job_fact(question, self._template.job_facts)
        lead = fact or "That's a good question. The recruiter will follow up with you on that."
        return self._back_to_prompt(f"{lead} Now, back to my question.")

    def _human(self) -> Reply:
        if self._can_transfer is not None and self._can_transfer():
            # The session puts the call through (SIP REFER, Twilio <Dial>); transfer_failed() if it cannot.
            return self._end("transferred", "Of course. I'll put you through to a recruiter now.", "Please hold.",
                             kind="transfer")
        if self.human_requested:  # asked twice: the candidate would rather not go on with an AI
            return self._end("human_requested", "Understood. A recruiter from our team will call you back.",
                             GOODBYE)
        self.human_requested = True
        return self._back_to_prompt("I'm an automated interviewer, and I've noted that you'd like to talk to a "
                                    "person: a recruiter will call you back. If you're happy to, let's carry on "
                                    "for now.")

    def transfer_failed(self) -> Reply:
        """The transfer to a recruiter did not go through (refused, unanswered): a recruiter calls back."""
        self.human_requested = True
        return self._end("human_requested", "I'm sorry, I couldn't reach a recruiter just now.",
                         "One of them will call you back soon.", GOODBYE)

    def _callback(self, when: datetime | None) -> Reply:
        if self._state in (InterviewState.CONSENT, InterviewState.QUESTIONS):
            self._resume_state = self._state
        if when is None:
            self._state = InterviewState.CALLBACK_WHEN
            return Reply(("Of course.", "When would be a good time to call you back?"), kind="callback")
        self._time_offers += 1
        if self._time_offers > MAX_TIME_OFFERS:  # the exchange goes round in circles: a person settles it
            self.callback_at = None
            return self._end("callback_scheduled", "Alright, a recruiter will call you back to find a good time.",
                             GOODBYE)
        self.callback_at = when
        self._state = InterviewState.CALLBACK_CONFIRM
        said = spoken_time(when, self._listener.clock())
        return Reply((f"No problem. I'll call you back {said} your time.", "Is that right?"), kind="callback")

    def _on_callback_when(self, text: str) -> Reply:
        heard = self._listener.read(text, DialogState.CONSENT)
        self.heard.append(HeardTurn(text, heard))
        when = heard.callback_at or self._listener.read(f"call me back {text}", DialogState.CONSENT).callback_at
        if when is not None:
            return self._callback(when)
        self._unclear_times += 1
        if self._unclear_times < 2:
            return Reply(("Sorry, I didn't catch a time.", "What day and time suit you, for example tomorrow at ten?"),
                         kind="callback")
        return self._end("callback_scheduled", "Alright, a recruiter will call you back to find a good time.",
                         GOODBYE)

    def _on_callback_confirm(self, text: str, heard: Understanding) -> Reply:
        # "No, Tuesday at three" corrects the time; the same time said again is a yes.
        named = heard.callback_at or (None if heard.intent is Intent.CONSENT_YES else
                                      self._listener.read(f"call me back {text}", DialogState.CONSENT).callback_at)
        if heard.intent is Intent.CONSENT_YES or (named is not None and named == self.callback_at):
            return self._end("callback_scheduled", "Great, talk to you then.", GOODBYE)
        if named is not None:
            return self._callback(named)
        self.callback_at = None
        self._state = InterviewState.CALLBACK_WHEN
        return Reply(("Sorry about that.", "When would be a better time to call you back?"), kind="callback")

    # -- consent ------------------------------------------------------------------------------------
    def _on_consent(self, intent: Intent) -> Reply:
        if intent is Intent.CONSENT_YES and not self._consent_heard:
            self._consent_heard = True
            self._set_prompt(self._template.consent)
            return Reply(("Before we go on, I need to ask you this.", *sentences(self._template.consent)),
                         kind="consent")
        if intent is Intent.CONSENT_YES:
            return self._start_questions()
        if intent is Intent.CONSENT_NO:
            return self._end("declined", "No problem, we won't continue.", GOODBYE)
        self._unclear_consents += 1
        if self._unclear_consents >= 2:
            return self._end("no_consent", "I can only continue with your clear agreement, so I'll end the call "
                                           "here.", GOODBYE)
        return Reply(("Sorry, I need a clear yes or no.", *sentences(shortened(self._template.consent))),
                     kind="consent")

    def _resumed_opening(self, resume: ResumePoint) -> Reply:
        company = f" from {self._template.company}" if self._template.company else ""
        lead = (f"Hi {self._candidate_name}, it's the interviewer{company} again. We got cut off, so let's pick up "
                "where we left off. As before, this call is recorded.")
        if resume.handover:
            lead = (f"Hi {self._candidate_name}, I'm the AI interviewer{company}. The recruiter asked me to finish "
                    "the interview with you. As before, this call is recorded.")
        remaining = [i for i, factor in enumerate(self._template.factors) if factor.name not in resume.answered]
        if not remaining:  # cut off during the closing: only the closing is left
            return self._end("completed", *sentences(lead), *sentences(self._template.closing), kind="closing")
        self._state = InterviewState.QUESTIONS
        self._factor_index = remaining[0]
        question = self._factor.questions[0]
        self._record(question, "main")
        return Reply((*sentences(lead), *sentences(question)), kind="question", factor=self._factor.name)

    def _start_questions(self) -> Reply:
        self._state = InterviewState.QUESTIONS
        return self._ask_main(self._factor.questions[0], lead=BEGIN)

    # -- questions ----------------------------------------------------------------------------------
    @property
    def _factor(self) -> EvaluationFactor:
        return self._template.factors[self._factor_index]

    async def _on_answer(self, text: str) -> Reply:
        factor = self._factor
        self._asked[-1] = replace(self._asked[-1], answers=(*self._asked[-1].answers, text))
        evaluation = self._listener.evaluate(text, self._asked[-1].question, factor, self._template.factors)
        self.heard[-1] = replace(self.heard[-1], question=self._asked[-1].question, evaluation=evaluation.to_dict())
        follow_up = self._wants_follow_up(evaluation)
        log.info("answer on %s: %s -> %s", factor.name, evaluation.reasoning, "follow-up" if follow_up else "next")
        if follow_up:
            return await self._follow_up(factor, text)
        return self._next_factor()

    def _wants_follow_up(self, evaluation: AnswerEvaluation) -> bool:
        # A follow-up asks for what is missing: the question actually asked (off topic, too short), or a real
        # example from a weak, vague answer. An adequate answer moves on: follow-ups draw out evidence, they
        # are not a second try for every answer short of perfect.
        wants_example = evaluation.score is None or evaluation.relevance == "off_topic" or \
            (evaluation.specificity == "vague" and evaluation.score < FOLLOW_UP_BELOW)
        return wants_example and self._follow_ups < self._factor.max_follow_ups

    def anticipate(self, words_so_far: str) -> None:
        """The candidate's words at a pause in their answer: if the answer as it stands would earn a follow-up,
        the phraser starts wording it now (a small model takes ~0.3-0.6 s), so that when the turn ends on
        these words the reply does not wait for the model. Nothing is decided or recorded here."""
        if self._phraser is None or self._state is not InterviewState.QUESTIONS or not words_so_far.strip() \
                or self._follow_ups >= self._factor.max_follow_ups or self._phraser.resting:
            return
        factor = self._factor
        evaluation = self._listener.evaluate(words_so_far, self._asked[-1].question, factor, self._template.factors)
        if self._wants_follow_up(evaluation):
            self._phraser.prefetch(factor, self._prompt, words_so_far,
                                   [*self._conversation(), ("candidate", words_so_far)])

    async def _follow_up(self, factor: EvaluationFactor, answer: str) -> Reply:
        main_question = next(q.question for q in reversed(self._asked) if q.kind == "main")
        probe = example_probe(factor, main_question, self._follow_ups + 1)
        question, source = probe, "template"
        if self._phraser is not None:
            phrased = await self._phraser.follow_up(factor, self._prompt, answer, self._conversation())
            question, source = (phrased, "llm") if phrased else (probe, "fallback")
        self._follow_ups += 1
        self._record(question, "follow_up")
        return Reply(sentences(question), kind="follow_up", factor=factor.name, source=source)

    def _conversation(self) -> list[tuple[str, str]]:
        """The interview so far as (role, text): each question asked and the answers it got."""
        pairs: list[tuple[str, str]] = []
        for asked in self._asked:
            pairs.append(("agent", asked.question))
            pairs.extend(("candidate", answer) for answer in asked.answers)
        return pairs

    def _next_factor(self) -> Reply:
        if self._factor_index + 1 >= len(self._template.factors):
            return self._end("completed", *sentences(self._template.closing), kind="closing")
        self._factor_index += 1
        self._follow_ups = 0
        self._next_alternate = 1
        return self._ask_main(self._factor.questions[0], lead=NEXT)

    def _ask_main(self, question: str, *, lead: str) -> Reply:
        self._record(question, "main")
        return Reply((lead, *sentences(question)), kind="question", factor=self._factor.name)

    def _repeat(self, *, verbatim: bool = False) -> Reply:
        self._repeats += 1
        factor = self._factor if self._state is InterviewState.QUESTIONS else None
        if (not verbatim and factor is not None and self._repeats >= 2 and self._asked[-1].kind == "main"
                and self._next_alternate < len(factor.questions)):
            alternate = factor.questions[self._next_alternate]
            self._next_alternate += 1
            return self._ask_main(alternate, lead=REPHRASE)
        return Reply((REPEAT, *sentences(self._prompt)), kind="repeat",
                     factor=factor.name if factor else None)

    def _record(self, question: str, kind: str) -> None:
        self._asked.append(AskedQuestion(self._factor.name, question, kind))
        self._set_prompt(question)

    def _set_prompt(self, text: str) -> None:
        self._prompt = text
        self._repeats = 0

    # -- the end ------------------------------------------------------------------------------------
    def _end(self, reason: str, *say: str, kind: str = "goodbye") -> Reply:
        self._state = InterviewState.DONE
        self._end_reason = reason
        return Reply(tuple(say), end_call=True, kind=kind)


def _ended() -> Reply:
    """Anything after the call ended: nothing more to say; the call should already be over."""
    return Reply((), end_call=True)
