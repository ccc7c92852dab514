"""The interview's dialog policy: what to say next, given what the candidate said or did. Text in, text
out: no audio, no SIP, no clock (InterviewSession turns audio, keypad and timers into these calls).

Every decision comes from transparent features (ivr.answers): the wording of a follow-up may come from
an LLM, behind the guard, but never the decision to ask one.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from enum import Enum

from config.templates import EvaluationFactor, InterviewTemplate
from ivr.answers import Intent, analyze_answer, detect_intent
from ivr.phrasing import FollowUpPhraser

log = logging.getLogger("phonescreen.ivr")

GOODBYE = "Thank you for your time, and goodbye."
_HYPOTHETICAL = re.compile(r"\b(?:imagine|would you|you would|what do you do)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


class InterviewState(Enum):
    GREETING = "greeting"  # nothing said yet
    CONSENT = "consent"  # the recording and AI disclosure was read; waiting for a clear yes
    QUESTIONS = "questions"
    DONE = "done"  # the last reply ended the call (closing, goodbye or timeout)


@dataclass(frozen=True)
class Reply:
    say: tuple[str, ...]  # sentences to speak, in order; empty: say nothing and keep listening
    end_call: bool = False
    kind: str = "none"  # greeting consent question follow_up repeat reprompt closing goodbye none
    factor: str | None = None
    source: str = "template"  # template | llm (a guarded LLM follow-up) | fallback (the LLM gave nothing usable)


@dataclass(frozen=True)
class AskedQuestion:
    factor: str
    question: str
    kind: str  # main | follow_up
    answers: tuple[str, ...] = ()  # the candidate turns that answered it


def sentences(text: str) -> tuple[str, ...]:
    """Split at sentence ends, so speech synthesis can start on the first sentence."""
    return tuple(part for part in _SENTENCE_END.split(" ".join(text.split())) if part)


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
                 phraser: FollowUpPhraser | None = None) -> None:
        self._template = template
        self._candidate_name = candidate_name
        self._phraser = phraser
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
        """Why the call ended: completed, declined, no_consent, stopped, no_response, or the timeout
        reason (max_duration, inactivity); None while it goes on."""
        return self._end_reason

    # -- events -------------------------------------------------------------------------------------
    def opening(self) -> Reply:
        """The greeting with the candidate's name, then the consent question."""
        self._state = InterviewState.CONSENT
        self._set_prompt(self._template.consent)
        text = f"{self._template.render_greeting(self._candidate_name)} {self._template.consent}"
        return Reply(sentences(text), kind="greeting")

    async def on_candidate_turn(self, text: str) -> Reply:
        if self._state is InterviewState.DONE:
            return _ended()
        if not text.strip():  # speech-to-text heard nothing: keep listening
            return Reply(())
        if self._state is InterviewState.GREETING:  # "Hello?" as the call connects
            return self.opening()
        self._silences = 0
        intent = detect_intent(text)
        if intent is Intent.STOP_REQUEST:
            return self._end("stopped", "Of course, we'll stop here.", GOODBYE)
        if intent is Intent.REPEAT_REQUEST:
            return self._repeat()
        if self._state is InterviewState.CONSENT:
            return self._on_consent(intent)
        if intent in (Intent.BACKCHANNEL, Intent.CONSENT_YES):
            return Reply((), factor=self._factor.name)
        return await self._on_answer(text)

    def on_dtmf(self, digit: str) -> Reply:
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
        """The candidate said nothing for the template's re-prompt time after a prompt."""
        if self._state is InterviewState.DONE:
            return _ended()
        if self._state is InterviewState.GREETING:
            return self.opening()
        self._silences += 1
        if self._silences >= 2:
            return self._end("no_response", "I haven't heard anything, so I'll end the call here.", GOODBYE)
        lead = "Are you still there?" if self._state is InterviewState.CONSENT else "Take your time."
        return Reply((lead, *sentences(shortened(self._prompt))), kind="reprompt", factor=self.current_factor)

    def on_timeout(self, reason: str) -> Reply:
        """The call must end now: reason "max_duration" (the template's limit) or "inactivity"."""
        if self._state is InterviewState.DONE:
            return _ended()
        lines = {
            "max_duration": "We've reached the time limit for this interview, so I'll stop here.",
            "inactivity": "I haven't heard from you in a while, so I'll end the call here.",
        }
        return self._end(reason, lines.get(reason, "I need to end the call here."), GOODBYE)

    # -- consent ------------------------------------------------------------------------------------
    def _on_consent(self, intent: Intent) -> Reply:
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

    def _start_questions(self) -> Reply:
        self._state = InterviewState.QUESTIONS
        return self._ask_main(self._factor.questions[0], lead="Thank you, let's begin.")

    # -- questions ----------------------------------------------------------------------------------
    @property
    def _factor(self) -> EvaluationFactor:
        return self._template.factors[self._factor_index]

    async def _on_answer(self, text: str) -> Reply:
        factor = self._factor
        self._asked[-1] = replace(self._asked[-1], answers=(*self._asked[-1].answers, text))
        features = analyze_answer(text, factor)
        wants_example = features.is_vague or features.is_short
        log.info("answer on %s: %s -> %s", factor.name, "; ".join(features.reasons),
                 "follow-up" if wants_example and self._follow_ups < factor.max_follow_ups else "next")
        if wants_example and self._follow_ups < factor.max_follow_ups:
            return await self._follow_up(factor, text)
        return self._next_factor()

    async def _follow_up(self, factor: EvaluationFactor, answer: str) -> Reply:
        main_question = next(q.question for q in reversed(self._asked) if q.kind == "main")
        probe = example_probe(factor, main_question, self._follow_ups + 1)
        question, source = probe, "template"
        if self._phraser is not None:
            phrased = await self._phraser.follow_up(factor, self._prompt, answer)
            question, source = (phrased, "llm") if phrased else (probe, "fallback")
        self._follow_ups += 1
        self._record(question, "follow_up")
        return Reply(sentences(question), kind="follow_up", factor=factor.name, source=source)

    def _next_factor(self) -> Reply:
        if self._factor_index + 1 >= len(self._template.factors):
            return self._end("completed", *sentences(self._template.closing), kind="closing")
        self._factor_index += 1
        self._follow_ups = 0
        self._next_alternate = 1
        return self._ask_main(self._factor.questions[0], lead="Thank you.")

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
            return self._ask_main(alternate, lead="Let me put it another way.")
        return Reply(("Sure.", *sentences(self._prompt)), kind="repeat",
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
