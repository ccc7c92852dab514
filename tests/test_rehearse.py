"""`phonescreen rehearse`: the interview of a call in text, with the same interviewer, understanding and
scoring; here it shows natural consents reaching the first question and callbacks confirmed in the
candidate's own time."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.templates import load_template_file, sample_template_path
from server.cli import main

TEMPLATE = sample_template_path()
FIRST_QUESTION = load_template_file(TEMPLATE).factors[0].questions[0]
CONSENTS = [
    "Yes, I consent to the recording.", "Yes, that's no problem.", "Sure, I'm happy to continue.",
    "That works for me.", "yeah go ahead", "uh yeah sure that's fine", "Okay, let's do it.",
    "of course, no worries", "mm-hmm yes", "yep I agree to continue",
]


def rehearse(tmp_path: Path, capsys: pytest.CaptureFixture[str], answers: list[str], *extra: str) -> list[dict]:
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers))
    # The embedded LLM is not needed to rehearse decisions: template wording keeps the test fast.
    code = main(["rehearse", str(TEMPLATE), "--answers", str(path), "--json", *extra])
    assert code == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.fixture(autouse=True)
def no_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONESCREEN_LLM_BACKEND", "none")


@pytest.mark.parametrize("consent", CONSENTS)
def test_a_natural_consent_reaches_the_first_question(tmp_path, capsys, consent: str) -> None:
    lines = rehearse(tmp_path, capsys, [consent])
    candidate = next(line for line in lines if line.get("role") == "candidate")
    assert candidate["evaluation"]["intent"] == "consent_yes"
    agent_turns = [line for line in lines if line.get("role") == "agent"]
    assert agent_turns[-1]["kind"] == "question" and agent_turns[-1]["text"].endswith(FIRST_QUESTION)


def test_a_callback_request_is_confirmed_in_the_candidates_local_time(tmp_path, capsys) -> None:
    lines = rehearse(tmp_path, capsys, ["yes", "Can you call me back tomorrow at ten? I'm driving.", "yes, that's right"],
                     "--timezone", "America/Chicago", "--now", "2026-12-01T20:00:00+00:00")  # 14:00 in Chicago
    request = [line for line in lines if line.get("role") == "candidate"][1]
    assert request["evaluation"]["intent"] == "callback"
    assert request["evaluation"]["callback_at"] == "2026-12-02T10:00:00-06:00"
    confirmation = [line for line in lines if line.get("role") == "agent"][2]
    assert confirmation["text"] == "No problem. I'll call you back tomorrow, Wednesday, at 10 a.m. your time. Is that right?"
    end = lines[-1]["end"]
    assert end["status"] == "callback_scheduled" and end["callback_at"] == "2026-12-02T10:00:00-06:00"


def test_a_wrong_callback_time_is_corrected(tmp_path, capsys) -> None:
    lines = rehearse(tmp_path, capsys, ["can you call me later, I'm at work", "Monday morning", "no", "after 5 today",
                                        "yes"], "--timezone", "Europe/London", "--now", "2026-12-01T14:00:00+00:00")
    said = [line["text"] for line in lines if line.get("role") == "agent"]
    assert said[1] == "Of course. When would be a good time to call you back?"
    assert "Monday at 9 a.m. your time" in said[2]
    assert said[3] == "Sorry about that. When would be a better time to call you back?"
    assert "today at 5 p.m. your time" in said[4]
    assert lines[-1]["end"]["callback_at"] == "2026-12-01T17:00:00+00:00"


def test_every_line_has_the_documented_shape(tmp_path, capsys) -> None:
    lines = rehearse(tmp_path, capsys, ["yes", "I'd explain it.", "", "I really don't know."])
    for line in lines[:-1]:
        assert line["role"] in ("agent", "candidate") and isinstance(line["turn"], int) and line["text"]
        if line["role"] == "candidate":
            assert {"intent", "factor", "score"} <= set(line["evaluation"])
    end = lines[-1]["end"]
    assert {"status", "reason", "callback_at", "scorecard"} <= set(end)
    assert {"status", "overall", "factors"} <= set(end["scorecard"])
    assert all({"name", "score", "reasoning", "citations"} <= set(f) for f in end["scorecard"]["factors"])
    assert any(line.get("kind") == "reprompt" for line in lines)  # "" is a silence


def test_bad_input_gets_a_clear_error(tmp_path, capsys) -> None:
    bad = tmp_path / "answers.json"
    bad.write_text('{"not": "a list"}')
    assert main(["rehearse", str(TEMPLATE), "--answers", str(bad)]) == 2
    assert "expected a JSON list of strings" in capsys.readouterr().err
    assert main(["rehearse", str(TEMPLATE), "--answers", str(bad), "--timezone", "Mars/Olympus"]) == 2
