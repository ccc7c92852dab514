"""The LLM's only job in an interview: word a follow-up question asking for a concrete example.

Whatever the model says must pass ivr.guard.guard_question (safe to speak) and a plain check that it
does the job (asks for an example, on the factor's topic, to the candidate) before anyone may speak it.
Anything late, rejected or failed gives None, and the interviewer uses the template's own wording.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
import weakref
from dataclasses import dataclass
from typing import Awaitable, Sequence

from config.settings import LlmSettings
from config.templates import EvaluationFactor, RubricAnchors
from ivr.answers import content_stems, topic_stems
from ivr.guard import guard_question
from ivr.llm.base import ChatMessage, ChatModel, LlmUnavailable

log = logging.getLogger("phonescreen.ivr")

MAX_TOKENS = 40
MAX_ANSWER_WORDS = 60  # of the candidate's answer put in the prompt: enough context, bounded latency
MAX_QUESTION_WORDS = 30
# Identical on every call, and first, so the model's KV cache reuses it across turns and interviews.
# Wording measured on SmolLM2-135M: a "Can you" start keeps it asking rather than answering, and the
# instruction repeated at the end of the user message matters more to it than the system message.
SYSTEM_PROMPT = (
    "You are a job interviewer on a phone call. When the candidate's answer is vague, you ask the "
    "candidate for one specific example. You write only one short question that starts with \"Can you\"."
)
USER_PROMPT = '{context}Topic: {topic}. A strong answer: {strong}\nQuestion asked: "{question}"\n' \
              'The candidate answered: "{answer}"\nWrite your next question to the candidate. Start with "Can you".'
_ASKS_FOR_EXAMPLE = re.compile(r"\b(?:a time|example|specific|situation|step by step|exactly|instance)\b",
                               re.IGNORECASE)


def does_the_job(question: str, factor: EvaluationFactor, asked: str) -> bool:
    """A usable follow-up asks for an example and shares a topic word with the factor or the question
    it follows (a small model happily asks about blockchain instead). The guard has already refused
    echoes of the prompt that name the roles."""
    on_topic = content_stems(question) & (topic_stems(factor) | content_stems(asked))
    return bool(_ASKS_FOR_EXAMPLE.search(question)) and bool(on_topic)


class FollowUpPhraser:
    def __init__(self, model: ChatModel, *, deadline_s: float = LlmSettings.follow_up_deadline_s) -> None:
        """`deadline_s`: how long the reply waits for a wording once the candidate's turn has ended."""
        self._model = model
        self._deadline_s = deadline_s
        self._record = _records.setdefault(model, _Record())
        self._early: _Early | None = None  # a wording begun at a pause in the answer (prefetch)

    @property
    def resting(self) -> bool:
        """The model gave nothing usable in time for each of its last MISSES_TO_REST follow-ups (late, refused by
        the guard or off task: a small model on a loaded machine), or it was slower than the deadline at
        warm-up (ask_in_time): the template's wording is spoken at once, with no wait. Every RETRY_EVERY-th
        follow-up still asks it, unheard, to notice when it keeps up again."""
        record = self._record
        return record.misses >= MISSES_TO_REST and record.skipped % RETRY_EVERY != RETRY_EVERY - 1

    def messages(self, factor: EvaluationFactor, question: str, answer: str,
                 conversation: Sequence[tuple[str, str]] = ()) -> list[ChatMessage]:
        """The prompt for one follow-up: the fixed system message (first, so its KV cache is reused), then
        the conversation so far (as much as the model's prompt budget allows: a 135M model reads ~150
        tokens a second on one core, so it gets the last exchange only), the factor with its strong
        anchor, the question asked and the answer."""
        budget = getattr(self._model, "prompt_budget_words", 400)
        clipped = " ".join(answer.split()[:MAX_ANSWER_WORDS])
        context, words = [], len(clipped.split()) + len(question.split()) + 40
        for role, text in reversed(conversation):
            line = f"{'Interviewer' if role == 'agent' else 'Candidate'}: {text}"
            if words + len(line.split()) > budget:
                break
            context.insert(0, line)
            words += len(line.split())
        prefix = "The interview so far:\n" + "\n".join(context) + "\n" if context else ""
        strong = " ".join(factor.anchors.strong.split()[:max(12, budget // 10)])
        return [
            ChatMessage("system", SYSTEM_PROMPT),
            ChatMessage("user", USER_PROMPT.format(context=prefix, topic=factor.name.lower(), strong=strong,
                                                   question=question, answer=clipped)),
        ]

    def prefetch(self, factor: EvaluationFactor, question: str, answer: str,
                 conversation: Sequence[tuple[str, str]] = ()) -> None:
        """Begin wording the follow-up to `answer` now, while the candidate pauses: follow_up() with the same
        words takes it over, with what is left of its deadline. Other words drop it."""
        if self.resting:
            return
        messages = self.messages(factor, question, answer, conversation)
        if self._early is not None and self._early.messages == messages:
            return
        self._drop_early()
        self._early = _Early(messages, self._start(messages))

    def _drop_early(self) -> None:
        if self._early is not None:
            _abandon(self._early.reply)
            self._early = None

    def _start(self, messages: list[ChatMessage]) -> asyncio.Future:
        return asyncio.ensure_future(_word(self._model, messages))

    async def follow_up(self, factor: EvaluationFactor, question: str, answer: str,
                        conversation: Sequence[tuple[str, str]] = ()) -> str | None:
        """One follow-up to `answer` (given to `question`) that may be spoken, or None: nothing usable
        within the deadline. Never raises for model problems. conversation: (role, text) pairs so far."""
        if self.resting:
            self._record.skipped += 1
            return None
        self._record.skipped = 0
        due = time.monotonic() + self._deadline_s  # the reply waits no longer (a wording begun early had more)
        reply = self._request(self.messages(factor, question, answer, conversation))
        if self._record.misses >= MISSES_TO_REST:
            # Resting, and this follow-up tries the model again, in the background: the template's wording
            # is spoken at once. In time and usable, the next follow-ups wait for the model again.
            self._try_quietly(reply, due, factor, question)
            return None
        worded = await self._in_time(reply, due, factor, question)
        self._record.misses = 0 if worded is not None else self._record.misses + 1
        if self.resting:
            log.info("follow-up phrasing by %s: nothing usable in time %d times running; the template's "
                     "wording for the next ones", self._model.name, self._record.misses)
        return worded

    def _request(self, messages: list[ChatMessage]) -> asyncio.Future:
        """The wording of `messages`: the one begun at the pause if it is for the same words, or a new one."""
        early, self._early = self._early, None
        if early is not None and early.messages == messages:
            return early.reply
        if early is not None:
            _abandon(early.reply)
        return self._start(messages)

    async def _in_time(self, reply: asyncio.Future, due: float, factor: EvaluationFactor,
                       question: str) -> str | None:
        try:
            # Not asyncio.wait_for: it waits for the cancelled call to wind down, and llama.cpp cannot
            # stop before its first token (measured: 0.5-2.6 s past a 0.05 s deadline on 2 loaded cores).
            done, _ = await asyncio.wait({reply}, timeout=max(0.0, due - time.monotonic()))
        finally:
            if not reply.done():
                _abandon(reply)
        if not done:
            log.info("follow-up phrasing by %s missed its %.1f s deadline", self._model.name, self._deadline_s)
            return None
        return self._usable(reply, factor, question)

    def _try_quietly(self, reply: asyncio.Future, due: float, factor: EvaluationFactor, question: str) -> None:
        """Let a resting model word this follow-up unheard, and stop resting it if it was in time."""
        late = asyncio.get_running_loop().call_later(max(0.0, due - time.monotonic()), _abandon, reply)

        def judge(task: asyncio.Future) -> None:
            late.cancel()
            if task.cancelled() or time.monotonic() > due:
                _discard_outcome(task)
                return
            if self._usable(task, factor, question) is not None:
                self._record.misses = 0
                log.info("follow-up phrasing by %s was in time again: its wordings are waited for",
                         self._model.name)
        reply.add_done_callback(judge)

    def _usable(self, reply: asyncio.Future, factor: EvaluationFactor, question: str) -> str | None:
        """The finished wording if it may be spoken: it came, it passes the guard and it does the job."""
        try:
            text = reply.result()
        except LlmUnavailable as exc:
            log.warning("follow-up phrasing unavailable: %s", exc)
            return None
        except Exception:  # a backend bug must not end the interview: the template wording will do
            log.exception("follow-up phrasing by %s failed", self._model.name)
            return None
        guarded = guard_question(text, max_words=MAX_QUESTION_WORDS)
        if guarded is None or not does_the_job(guarded, factor, question):
            log.info("follow-up from %s not used (%s): %r", self._model.name,
                     "guard" if guarded is None else "off task", text)
            return None
        return guarded


# A warm-up follow-up (ask_in_time): the first fills the model's cache of the fixed system prompt, the
# second, to other words, is timed like a call's.
WARM_UP_FACTOR = EvaluationFactor(
    name="Customer empathy", weight=1.0, description="Calms upset customers.",
    anchors=RubricAnchors(
        weak="Blames the customer or gives no example.", adequate="A general example.",
        strong="Names the customer's problem, what they said and did to calm them, and how it ended."),
    questions=("Tell me about a time you calmed down an upset customer. What did you do?",))
WARM_UP_CONVERSATION = (("agent", "How would you explain a bill to a confused customer?"),
                        ("candidate", "I'd go through it line by line with them."))
WARM_UP_ANSWERS = ("I guess I'm pretty good at talking.", "It depends on the person really.")
# A wording begun at a pause (the session asks 100 ms into it) has had this long when a finished thought's
# turn ends (450 ms): a model slower than that plus the deadline is never in time.
HEAD_START_S = 0.35
WARM_UP_LIMIT_S = 30.0  # a model that has not answered by then is not going to keep up


def _word(model: ChatModel, messages: Sequence[ChatMessage]) -> Awaitable[str]:
    """One follow-up's wording, as every call asks for it."""
    return model.complete(messages, max_tokens=MAX_TOKENS, temperature=0.0, seed=0, stop=["\n"])


async def ask_in_time(model: ChatModel, deadline_s: float) -> float | None:
    """Word two warm-up follow-ups before any call and time the second: a model slower than the deadline
    (begun at the pause, with its head start) starts out resting, so no candidate waits for a wording that
    cannot come; every RETRY_EVERY-th follow-up still asks it, unheard. Returns the timed wording's seconds,
    or None when the model is unavailable (it rests too)."""
    phraser = FollowUpPhraser(model, deadline_s=deadline_s)  # the prompt a call's follow-up has
    seconds: float | None = None
    try:
        for answer in WARM_UP_ANSWERS:
            messages = phraser.messages(WARM_UP_FACTOR, WARM_UP_FACTOR.questions[0], answer, WARM_UP_CONVERSATION)
            started = time.monotonic()
            await asyncio.wait_for(_word(model, messages), WARM_UP_LIMIT_S)
            seconds = time.monotonic() - started
    except Exception as exc:  # LlmUnavailable (no Ollama), a hang, a bug: the template words every follow-up
        log.warning("follow-up wording by %s unavailable at warm-up: %s", model.name, exc)
        seconds = None
    if seconds is None or seconds > deadline_s + HEAD_START_S:
        phraser._record.misses, phraser._record.skipped = MISSES_TO_REST, 0
        log.info("follow-up wording by %s %s at warm-up: the template's wording, trying the model every %d",
                 model.name, "failed" if seconds is None else f"took {seconds * 1000:.0f} ms (deadline "
                 f"{deadline_s * 1000:.0f} ms)", RETRY_EVERY)
    return seconds


MISSES_TO_REST = 3  # follow-ups in a row with nothing usable in time (late, refused, off task) before a rest
RETRY_EVERY = 4  # while resting, every 4th follow-up still asks it


@dataclass
class _Record:
    """How one model's follow-up wordings went lately, shared by every call in the process."""
    misses: int = 0  # follow-ups in a row it gave nothing usable for in time
    skipped: int = 0  # follow-ups worded by the template at once since the model was last asked


_records: "weakref.WeakKeyDictionary[ChatModel, _Record]" = weakref.WeakKeyDictionary()  # one model per process


@dataclass
class _Early:
    messages: list[ChatMessage]
    reply: asyncio.Future


def _abandon(reply: asyncio.Future) -> None:
    """Stop waiting for a wording: the backend stops in the background; its outcome is of no interest."""
    if not reply.done():
        reply.cancel()
    reply.add_done_callback(_discard_outcome)


def _discard_outcome(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()  # marks it retrieved: no "exception was never retrieved" at exit
