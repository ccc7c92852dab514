"""The LLM grader: one chat per factor (rubric + the candidate's masked answers in, strict JSON out).

The reply must be a JSON object valid against REPLY_SCHEMA; a reply that is not is re-asked once with
the error, and if the second is no better that factor falls back to the per-answer evaluator
(scoring.evaluator_grader). If the model cannot answer at all (server down, timeout) every remaining
factor falls back. The prompt carries the evaluator's findings for each answer (score, flags, reason),
and where the model's score differs from the evaluator's the reasoning says so: disagreement is shown,
not hidden. Quotes are checked
against the cited turn's text: a quote that is not really there is dropped. Temperature 0 and a fixed
seed make the same transcript give the same scorecard with the same model.

Only masked answer text and the template reach the prompt: never the candidate's name or anything
else about them.
"""
from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from config.settings import ScoringSettings
from config.templates import EvaluationFactor, InterviewTemplate
from ivr.llm.base import ChatMessage, ChatModel, LlmUnavailable
from scoring.base import FactorResult, Grading
from scoring.evaluator_grader import NAME as EVALUATOR_NAME
from scoring.evaluator_grader import EvaluatedAnswer, answer_records, grade_factor
from scoring.features import best_citations, verbatim_quote
from scoring.transcript import Answer, GradingInput

MAX_TOKENS = 500
MAX_CITATIONS = 3
REPLY_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["score", "reasoning", "citations"],
    "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
        "reasoning": {"type": "string", "minLength": 20, "maxLength": 1500},
        "citations": {"type": "array", "maxItems": 5, "items": {
            "type": "object", "additionalProperties": False, "required": ["turn", "quote"],
            "properties": {"turn": {"type": "integer", "minimum": 1},
                           "quote": {"type": "string", "minLength": 1, "maxLength": 600}}}},
    },
}
_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)
_QUOTE_WORD_RE = re.compile(r"[\w'’]+")
DISAGREEMENT_POINTS = 15  # a model score this far from the evaluator's is called out in the reasoning


class BadReply(ValueError):
    """The model's reply is not a JSON object valid against REPLY_SCHEMA; the message says why."""


def check_schema(value: Any, schema: dict[str, Any], path: str = "$") -> None:
    """Validate `value` against the subset of JSON Schema REPLY_SCHEMA uses; BadReply names the path."""
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise BadReply(f"{path} must be an object")
        for key in schema.get("required", ()):
            if key not in value:
                raise BadReply(f"{path}.{key} is missing")
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(properties))
            if extra:
                raise BadReply(f"{path}.{extra[0]} is not allowed")
        for key, sub in properties.items():
            if key in value:
                check_schema(value[key], sub, f"{path}.{key}")
    elif kind == "array":
        if not isinstance(value, list):
            raise BadReply(f"{path} must be an array")
        if len(value) > schema.get("maxItems", len(value)):
            raise BadReply(f"{path} has more than {schema['maxItems']} items")
        for i, item in enumerate(value):
            check_schema(item, schema["items"], f"{path}[{i}]")
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadReply(f"{path} must be an integer")
        if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
            raise BadReply(f"{path} must be between {schema.get('minimum')} and {schema.get('maximum')}")
    elif kind == "string":
        if not isinstance(value, str):
            raise BadReply(f"{path} must be a string")
        if not schema.get("minLength", 0) <= len(value.strip()) <= schema.get("maxLength", len(value)):
            raise BadReply(f"{path} must be {schema.get('minLength', 0)} to {schema.get('maxLength')} characters")


def parse_reply(text: str) -> dict[str, Any]:
    """The reply as a dict valid against REPLY_SCHEMA. A code fence around the object is tolerated;
    anything else around it is not."""
    body = _FENCE_RE.sub("", text.strip())
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise BadReply(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    check_schema(value, REPLY_SCHEMA)
    return value


def locate_quote(quote: str, answer: Answer) -> str | None:
    """The quote as it really stands in the answer (case, spacing and punctuation may differ in the
    model's copy), mask-free; None if the answer does not contain it."""
    words = _QUOTE_WORD_RE.findall(quote)
    if len(words) < 3:
        return None
    pattern = r"[^\w'’]+".join(re.escape(w) for w in words)
    match = re.search(pattern, answer.text, re.IGNORECASE)
    return verbatim_quote(match.group(0), answer) if match else None


def _system_prompt(template: InterviewTemplate) -> str:
    return (
        f"You grade one evaluation factor of a phone screening interview for the position \"{template.title}\". "
        "Judge only the job-related evidence in the candidate's answers against the rubric. Text shown as "
        "[masked] was removed on purpose: ignore it and never guess anything personal about the candidate. "
        "Reply with one JSON object and nothing else, valid against this JSON Schema: "
        f"{json.dumps(REPLY_SCHEMA, separators=(',', ':'))}. "
        "score: 0-39 matches the weak anchor, 40-69 the adequate one, 70-100 the strong one. "
        "reasoning: two to four sentences naming the evidence. citations: up to three quotes copied word for "
        "word from the candidate's answers, each with the number of the turn it comes from.")


def _finding(e: EvaluatedAnswer) -> str:
    ev = e.evaluation
    flags = f"; flags: {', '.join(ev.flags)}" if ev.flags else ""
    asked = json.dumps(e.answer.question or "", ensure_ascii=False)
    return (f"- turn {e.answer.turn} (answering {asked}): score {ev.score}, {ev.relevance}, {ev.specificity}"
            f"{flags}. {ev.reasoning}")


def _user_prompt(factor: EvaluationFactor, answers: tuple[Answer, ...],
                 evaluated: list[EvaluatedAnswer] | None = None) -> str:
    questions = "\n".join(f"- {q}" for q in factor.questions)
    said = "\n".join(f"Turn {a.turn}: {json.dumps(a.text, ensure_ascii=False)}" for a in answers)
    findings = ("\n\nAn automatic per-answer evaluator found (check it against the answers; you may disagree):\n"
                + "\n".join(_finding(e) for e in evaluated)) if evaluated else ""
    return (f"Factor: {factor.name}\nWhat it means: {factor.description}\n"
            f"Weak: {factor.anchors.weak}\nAdequate: {factor.anchors.adequate}\nStrong: {factor.anchors.strong}\n"
            f"Questions asked on this factor:\n{questions}\n\nThe candidate's answers:\n{said}{findings}")


class LlmGrader:
    name = "llm"

    def __init__(self, chat: ChatModel, settings: ScoringSettings, evaluator: Any = None):
        from understanding.evaluator import load_evaluator
        self.chat = chat
        self.settings = settings
        self.evaluator = evaluator or load_evaluator()

    def grade(self, material: GradingInput) -> Grading:
        """Blocking: runs its own event loop, so call it from a worker, never on a running loop."""
        return asyncio.run(self._grade(material))

    async def _grade(self, material: GradingInput) -> Grading:
        results: list[FactorResult] = []
        notes: list[str] = []
        evaluations: dict[str, list[EvaluatedAnswer]] = {}
        unavailable: str | None = None
        try:
            siblings = material.template.factors
            for factor in siblings:
                answers = material.for_factor(factor.name)
                fallback, evaluated = grade_factor(self.evaluator, factor, answers, siblings)
                evaluations[factor.name] = evaluated
                if not answers or unavailable:
                    results.append(fallback)
                    continue
                try:
                    results.append(await self._grade_factor(material.template, factor, answers, fallback, evaluated))
                except BadReply as exc:
                    notes.append(f"{factor.name}: the model's reply was invalid twice ({exc}); graded by the "
                                 "answer evaluator")
                    results.append(fallback)
                except (LlmUnavailable, TimeoutError) as exc:
                    unavailable = str(exc) or f"no answer within {self.settings.llm_timeout_s:g} s"
                    notes.append(f"the model is unavailable ({unavailable}); remaining factors graded by the "
                                 "answer evaluator")
                    results.append(fallback)
        finally:
            close = getattr(self.chat, "close", None)
            if close is not None:
                await close()
        records = answer_records(evaluations)
        if any(r.source == "llm" for r in results):
            return Grading("llm", self.chat.name, tuple(results), tuple(notes), records)
        # The model graded nothing.
        return Grading(EVALUATOR_NAME, self.evaluator.version, tuple(results), tuple(notes), records)

    async def _ask(self, messages: list[ChatMessage]) -> str:
        return await asyncio.wait_for(
            self.chat.complete(messages, max_tokens=MAX_TOKENS, temperature=0.0, seed=self.settings.seed),
            self.settings.llm_timeout_s)

    async def _grade_factor(self, template: InterviewTemplate, factor: EvaluationFactor,
                            answers: tuple[Answer, ...], evaluator_result: FactorResult,
                            evaluated: list[EvaluatedAnswer]) -> FactorResult:
        messages = [ChatMessage("system", _system_prompt(template)),
                    ChatMessage("user", _user_prompt(factor, answers, evaluated))]
        reply = await self._ask(messages)
        try:
            parsed = parse_reply(reply)
        except BadReply as first:
            messages += [ChatMessage("assistant", reply),
                         ChatMessage("user", f"That reply is not valid: {first}. Reply again with only the JSON "
                                             "object, valid against the schema.")]
            parsed = parse_reply(await self._ask(messages))
        by_turn = {a.turn: a for a in answers}
        citations: list[dict] = []
        for cited in parsed["citations"]:
            answer = by_turn.get(cited["turn"])
            quote = locate_quote(cited["quote"], answer) if answer else None
            if quote and {"turn": answer.turn, "quote": quote} not in citations:
                citations.append({"turn": answer.turn, "quote": quote})
        reasoning = " ".join(parsed["reasoning"].split())
        if not citations:  # every quote was wrong: show the evidence the features found instead
            citations = best_citations(factor, answers)
            reasoning += " (The model's quotes were not found in the answers; citations chosen by features.)"
        if evaluator_result.score is not None:
            gap = parsed["score"] - evaluator_result.score
            reasoning += f" The per-answer evaluator scored it {evaluator_result.score}"
            reasoning += (f"; the model differs by {gap:+d} points, worth a human look."
                          if abs(gap) >= DISAGREEMENT_POINTS else ", in agreement.")
        return FactorResult(factor.name, parsed["score"], reasoning, tuple(citations[:MAX_CITATIONS]), "llm",
                            tuple(a.turn for a in answers))

