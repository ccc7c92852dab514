"""The LLM grader against the Ollama protocol double on 127.0.0.1: strict JSON replies, one re-ask, the
fallback to the per-answer evaluator, the evaluator's findings in the prompt, quote checking, determinism
options, and that no masked span is ever in a prompt."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import socket
from typing import Any, Callable

import pytest
from aiohttp import web

from config.settings import LlmSettings, ScoringSettings, Settings
from ivr.llm.ollama_llm import OllamaChat
from models.store import SessionStore
from ollama_double import OllamaDouble
from scoring import make_grader, score_interview
from scoring.evaluator_grader import EvaluatorGrader
from scoring.feature_grader import FeatureGrader
from scoring.llm_grader import BadReply, LlmGrader, parse_reply
from test_scoring import assert_citations_are_real, store_transcript

MODEL = "llama3.2:3b"
Reply = Callable[[dict[str, Any], int], str]  # (request body, index of the request) -> the model's text


class ScriptedOllama(OllamaDouble):
    """The double, answering each chat with text computed from the request (the base double answers
    every request with the same pieces)."""

    def __init__(self, reply: Reply):
        super().__init__(models=(MODEL,))
        self.reply = reply

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.pieces = [self.reply(body, len(self.requests))]
        return await super()._chat(_Replayed(request, body))


class _Replayed:
    """The request with its body already read (the double reads it again)."""

    def __init__(self, request: web.Request, body: dict[str, Any]):
        self._request, self._body = request, body

    async def json(self) -> dict[str, Any]:
        return self._body

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def factor_of(body: dict[str, Any]) -> str:
    return re.search(r"^Factor: (.+)$", body["messages"][1]["content"], re.MULTILINE).group(1)


def answers_of(body: dict[str, Any]) -> dict[int, str]:
    return {int(n): json.loads(text) for n, text in
            re.findall(r"^Turn (\d+): (\".*\")$", body["messages"][1]["content"], re.MULTILINE)}


def valid_reply(body: dict[str, Any], _index: int = 0) -> str:
    """A well-formed grade quoting the first eight words of the factor's first answer (case changed, as
    models do)."""
    turn, text = next(iter(answers_of(body).items()))
    quote = " ".join(text.split()[:8]).upper()
    return json.dumps({"score": 50 + len(factor_of(body)), "reasoning": f"Graded {factor_of(body)} on the answers.",
                       "citations": [{"turn": turn, "quote": quote}]})


def settings_for(settings: Settings, double: OllamaDouble | None, *, host: str = "", grader: str = "auto",
                 timeout_s: float = 10.0) -> Settings:
    return dataclasses.replace(
        settings, llm=LlmSettings(backend="ollama", ollama_host=double.url if double else host, ollama_model=MODEL,
                                  timeout_s=timeout_s),
        scoring=ScoringSettings(grader=grader))


@pytest.fixture
async def served():
    doubles: list[OllamaDouble] = []

    async def serve(reply: Reply) -> ScriptedOllama:
        double = await ScriptedOllama(reply).start()
        doubles.append(double)
        return double
    yield serve
    for double in doubles:
        await double.close()


async def score(store: SessionStore, iid: str, settings: Settings):
    """score_interview blocks (its own event loop): run it on a thread while the double serves here."""
    return await asyncio.to_thread(score_interview, store, iid, settings)


async def test_valid_json_grades_every_answered_factor(served, store, sample_template, settings) -> None:
    double = await served(valid_reply)
    iid = store_transcript(store, sample_template, "strong")
    card = await score(store, iid, settings_for(settings, double))
    assert card.data["grader"]["name"] == "llm" and card.data["grader"]["model"] == f"ollama:{MODEL}"
    assert len(double.requests) == 4  # one chat per factor, no re-ask
    for factor in card.data["factors"]:
        assert factor["source"] == "llm" and factor["score"] == 50 + len(factor["name"])
        # The model's reasoning, then how it compares with the per-answer evaluator (shown, not hidden).
        assert factor["reasoning"].startswith(f"Graded {factor['name']} on the answers. The per-answer evaluator "
                                              "scored it ")
        [citation] = factor["citations"]
        assert citation["quote"] != citation["quote"].upper()  # the stored text's own casing, not the model's
    assert_citations_are_real(store, iid, card.data)
    weights = {f["name"]: f["weight"] for f in card.data["factors"]}
    assert card.overall == pytest.approx(sum(weights[n] * (50 + len(n)) for n in weights), abs=0.06)


async def test_requests_are_deterministic_and_the_same_input_gives_the_same_scorecard(
        served, store, sample_template, settings) -> None:
    double = await served(valid_reply)
    iid = store_transcript(store, sample_template, "weak")
    first = await score(store, iid, settings_for(settings, double))
    second = await score(store, iid, settings_for(settings, double))
    assert (first.status, first.overall, first.data) == (second.status, second.overall, second.data)
    for body in double.requests:
        assert body["options"]["temperature"] == 0.0 and body["options"]["seed"] == 42
    assert double.requests[:4] == double.requests[4:]  # the same prompts, byte for byte


async def test_a_masked_span_never_reaches_the_model(served, store, sample_template, settings) -> None:
    double = await served(valid_reply)
    iid = store_transcript(store, sample_template, "strong")
    card = await score(store, iid, settings_for(settings, double))
    prompts = json.dumps([body["messages"] for body in double.requests])
    assert "[masked]" in prompts and card.data["masked_spans"] == 2
    for said in ("single mother", "mother", "childcare", "Ana Ruiz"):  # nor the candidate's name
        assert said not in prompts


async def test_invalid_json_is_asked_again_once_then_falls_back(served, store, sample_template, settings) -> None:
    double = await served(lambda body, i: "Sure! I would give this candidate an 80 out of 100.")
    iid = store_transcript(store, sample_template, "weak")
    card = await score(store, iid, settings_for(settings, double))
    assert len(double.requests) == 8  # two per factor
    retry = double.requests[1]["messages"]
    assert [m["role"] for m in retry] == ["system", "user", "assistant", "user"]
    assert "not valid JSON" in retry[3]["content"]
    assert card.data["grader"]["name"] == "evaluator" and card.data["grader"]["model"].startswith("answer-evaluator")
    assert all(f["source"] == "evaluator" for f in card.data["factors"])
    assert sum("invalid twice" in note for note in card.data["notes"]) == 4
    # The fallback is the evaluator grader's own result.
    own = score_interview(store, iid, dataclasses.replace(settings, scoring=ScoringSettings(grader="evaluator")))
    assert [f["score"] for f in card.data["factors"]] == [f["score"] for f in own.data["factors"]]


async def test_the_prompt_carries_the_evaluator_findings_and_disagreement_is_shown(
        served, store, sample_template, settings) -> None:
    double = await served(lambda body, i: json.dumps({"score": 5, "reasoning": "The model thinks it is very weak.",
                                                      "citations": []}))
    iid = store_transcript(store, sample_template, "strong")
    card = await score(store, iid, settings_for(settings, double))
    prompt = double.requests[0]["messages"][1]["content"]
    assert "per-answer evaluator found" in prompt and re.search(r"- turn \d+ \(answering .+\): score \d+", prompt)
    for factor in card.data["factors"]:
        assert factor["score"] == 5 and "worth a human look" in factor["reasoning"]


async def test_an_invalid_reply_then_a_valid_one_is_used(served, store, sample_template, settings) -> None:
    def reply(body: dict[str, Any], index: int) -> str:
        if index == 0:
            return '{"score": 140, "reasoning": "Far too generous.", "citations": []}'  # out of range
        return valid_reply(body)

    double = await served(reply)
    iid = store_transcript(store, sample_template, "strong")
    card = await score(store, iid, settings_for(settings, double))
    assert len(double.requests) == 5
    assert "$.score must be between 0 and 100" in double.requests[1]["messages"][3]["content"]
    assert all(f["source"] == "llm" for f in card.data["factors"])


async def test_quotes_not_in_the_cited_turn_are_dropped(served, store, sample_template, settings) -> None:
    def reply(body: dict[str, Any], index: int) -> str:
        turn = next(iter(answers_of(body)))
        return json.dumps({"score": 70, "reasoning": "The candidate described a refund they gave.",
                           "citations": [{"turn": turn, "quote": "I gave the customer a full refund right away"},
                                         {"turn": 999, "quote": "no such turn at all"}]})

    double = await served(reply)
    iid = store_transcript(store, sample_template, "strong")
    card = await score(store, iid, settings_for(settings, double))
    for factor in card.data["factors"]:
        assert factor["source"] == "llm" and factor["citations"]  # replaced by the features' evidence
        assert "refund right away" not in json.dumps(factor["citations"])
        assert "citations chosen by features" in factor["reasoning"]
    assert_citations_are_real(store, iid, card.data)


async def test_an_unreachable_model_falls_back_to_the_evaluator(store, sample_template, settings) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    iid = store_transcript(store, sample_template, "strong")
    card = await score(store, iid, settings_for(settings, None, host=f"http://127.0.0.1:{port}", timeout_s=2))
    assert card.status == "scored" and card.data["grader"]["name"] == "evaluator"
    assert all(f["source"] == "evaluator" and f["score"] is not None for f in card.data["factors"])
    assert any("unavailable" in note and f"127.0.0.1:{port}" in note for note in card.data["notes"])


def test_auto_takes_the_llm_grader_only_with_ollama(settings) -> None:
    assert isinstance(make_grader(settings)[0], EvaluatorGrader)  # embedded backend: not a capable grader
    ollama = settings_for(settings, None, host="http://127.0.0.1:9")
    grader, notes = make_grader(ollama)
    assert isinstance(grader, LlmGrader) and isinstance(grader.chat, OllamaChat) and notes == []
    forced = dataclasses.replace(ollama, scoring=ScoringSettings(grader="feature"))
    assert isinstance(make_grader(forced)[0], FeatureGrader)  # the keyword grader stays selectable
    forced = dataclasses.replace(ollama, scoring=ScoringSettings(grader="evaluator"))
    assert isinstance(make_grader(forced)[0], EvaluatorGrader)


@pytest.mark.parametrize(("text", "error"), [
    ("", "not valid JSON"),
    ("{'score': 50}", "not valid JSON"),
    ('{"score": 50, "reasoning": "A reasonable answer overall."}', "$.citations is missing"),
    ('{"score": "80", "reasoning": "A reasonable answer overall.", "citations": []}', "$.score must be an integer"),
    ('{"score": true, "reasoning": "A reasonable answer overall.", "citations": []}', "$.score must be an integer"),
    ('{"score": 50, "reasoning": "ok", "citations": []}', "$.reasoning must be 20 to 1500 characters"),
    ('{"score": 50, "reasoning": "A reasonable answer overall.", "citations": [{"turn": 3}]}',
     "$.citations[0].quote is missing"),
    ('{"score": 50, "reasoning": "A reasonable answer overall.", "citations": [], "mood": "happy"}',
     "$.mood is not allowed"),
    ('Here you go: {"score": 50, "reasoning": "A reasonable answer overall.", "citations": []}', "not valid JSON"),
])
def test_replies_are_validated_against_the_schema(text: str, error: str) -> None:
    with pytest.raises(BadReply, match=re.escape(error)):
        parse_reply(text)


def test_a_fenced_reply_is_accepted() -> None:
    reply = '```json\n{"score": 61, "reasoning": "Clear steps, one example given.", "citations": []}\n```'
    assert parse_reply(reply)["score"] == 61
