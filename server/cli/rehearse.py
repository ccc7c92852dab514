"""`phonescreen rehearse TEMPLATE.toml`: the interview of a call, in text. The same interviewer,
understanding and scoring as a call, with no audio and no lasting store: template authors try a template,
and tests drive conversations through it. Candidate turns come from --answers (a JSON list of strings;
"" is a silence long enough for a re-prompt) or are typed; --json prints one object per line."""
from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime, timezone as dt_timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.settings import Settings
from config.templates import InterviewTemplate, load_template_file
from ivr.interviewer import HeardTurn, Interviewer, Reply
from ivr.phrasing import FollowUpPhraser
from models.records import Turn, TurnEvaluation
from server.cli.output import CliError
from understanding.listener import Listener

TURN_MS = 5000  # each turn's notional length: the scorecard's timestamps only need an order
MAX_TURNS = 200  # a typed rehearsal that never ends still stops


def _now(text: str | None, zone: str) -> datetime:
    if not text:
        return datetime.now(dt_timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--now {text!r} is not an ISO-8601 date-time (e.g. 2026-12-01T14:00-06:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))


def _answers(path: str | None) -> Iterator[str] | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"--answers {path}: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise CliError(f"--answers {path}: expected a JSON list of strings")
    return iter(data)


def _typed() -> Iterator[str]:
    while True:
        try:
            yield input("candidate> ")
        except EOFError:
            return


def _evaluation(heard: HeardTurn) -> dict[str, Any]:
    evaluation: dict[str, Any] = {"intent": heard.understanding.intent.value if heard.understanding else None,
                                  "factor": heard.factor, "score": None}
    if heard.understanding is not None:
        evaluation.update(heard.understanding.slots())
        evaluation["confidence"] = round(heard.understanding.confidence, 3)
        evaluation["reason"] = heard.understanding.reason
    if heard.evaluation is not None:
        evaluation.update({key: value for key, value in heard.evaluation.items() if key != "factor"})
    return evaluation


class Rehearsal:
    def __init__(self, template: InterviewTemplate, interviewer: Interviewer, emit: Callable[[dict], None]) -> None:
        self.template, self.interviewer, self.emit = template, interviewer, emit
        self.turns: list[Turn] = []
        self.understood: dict[int, TurnEvaluation] = {}  # as a call's session stores it

    def _add(self, role: str, text: str) -> int:
        number = len(self.turns) + 1
        start = (number - 1) * TURN_MS
        self.turns.append(Turn("rehearsal", number, role, text, start, start + TURN_MS - 200, None, False, ""))
        return number

    def say(self, reply: Reply) -> None:
        text = " ".join(reply.say)
        if text:
            self.emit({"role": "agent", "turn": self._add("agent", text), "text": text, "kind": reply.kind})

    async def hear(self, text: str) -> Reply:
        if not text.strip():
            return self.interviewer.on_silence()
        number = self._add("candidate", text)
        heard_before = len(self.interviewer.heard)
        reply = await self.interviewer.on_candidate_turn(text)
        heard = self.interviewer.heard[heard_before:]
        if heard:
            self.understood[number] = _as_stored(number, heard[-1])
        self.emit({"role": "candidate", "turn": number, "text": text,
                   "evaluation": _evaluation(heard[-1]) if heard else {"intent": None, "factor": None, "score": None}})
        return reply


def _as_stored(number: int, heard: HeardTurn) -> TurnEvaluation:
    return TurnEvaluation("rehearsal", number, "candidate", heard.factor, heard.question, heard.kind,
                          heard.evaluation)


def _scorecard(template: InterviewTemplate, rehearsal: "Rehearsal", settings: Settings,
               dropped: bool) -> dict[str, Any]:
    from scoring.scorecard import grade_transcript, make_grader
    grader, notes = make_grader(settings)
    result = grade_transcript(template, rehearsal.turns, dropped=dropped, grader=grader, settings=settings,
                              notes=notes, understood=rehearsal.understood)
    return {"status": result.status, "overall": result.overall,
            "factors": [{"name": f["name"], "score": f["score"], "reasoning": f["reasoning"],
                         "citations": f["citations"]} for f in result.data["factors"]]}


async def _run(args: argparse.Namespace, settings: Settings, emit: Callable[[dict], None]) -> dict[str, Any]:
    template = load_template_file(args.template)
    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(f"--timezone {args.timezone!r} is not a known time zone (e.g. America/Chicago)") from None
    now = _now(args.now, args.timezone)
    phraser = None
    if settings.llm.backend != "none":
        from ivr.llm import make_chat_model
        model = make_chat_model(settings.llm)
        phraser = FollowUpPhraser(model, deadline_s=settings.llm.follow_up_deadline_s) if model else None
    interviewer = Interviewer(template, args.name, phraser, Listener(timezone=args.timezone, clock=lambda: now))
    rehearsal = Rehearsal(template, interviewer, emit)
    turns = _answers(args.answers) or _typed()
    rehearsal.say(interviewer.opening())
    for _ in range(MAX_TURNS):
        if interviewer.finished:
            break
        text = next(turns, None)
        if text is None:
            break
        rehearsal.say(await rehearsal.hear(text))
    dropped = not interviewer.finished  # the answers ran out mid-interview: like a dropped call
    return {"status": "completed" if interviewer.end_reason == "completed" else
            ("partial" if dropped else interviewer.end_reason),
            "reason": interviewer.end_reason or "answers ran out",
            "callback_at": interviewer.callback_at.isoformat() if interviewer.callback_at else None,
            "human_requested": interviewer.human_requested,
            "scorecard": _scorecard(template, rehearsal, settings, dropped)}


def rehearse(args: argparse.Namespace, settings: Settings) -> int:
    def emit(item: dict) -> None:
        if args.json:
            print(json.dumps(item, ensure_ascii=False), flush=True)
        elif item["role"] == "agent":
            print(f"interviewer: {item['text']}", flush=True)
        elif args.answers:  # typed turns are on the screen already
            evaluation = item["evaluation"]
            score = f", score {evaluation['score']}" if evaluation.get("score") is not None else ""
            print(f"candidate:   {item['text']}\n             [{evaluation['intent']}{score}]", flush=True)

    end = asyncio.run(_run(args, settings, emit))  # bad input: CliError, reported by server.cli.main
    if args.json:
        print(json.dumps({"end": end}, ensure_ascii=False), flush=True)
    else:
        card = end["scorecard"]
        print(f"\nended: {end['status']} ({end['reason']})"
              + (f", callback at {end['callback_at']}" if end["callback_at"] else ""))
        print(f"scorecard: {card['status']}, overall {card['overall']}")
        for factor in card["factors"]:
            print(f"  {factor['name']}: {factor['score']} — {factor['reasoning']}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("rehearse", help="an interview in text: the same interviewer, understanding and "
                                 "scoring as a call, no audio, nothing stored")
    parser.add_argument("template", metavar="TEMPLATE.toml", help="the interview template")
    parser.add_argument("--answers", metavar="FILE.json", help='the candidate\'s turns as a JSON list of strings '
                        '("" is a silence); default: type them')
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--name", default="Alex", help="the candidate's first name (default: %(default)s)")
    parser.add_argument("--timezone", default="UTC", help="the candidate's time zone (default: %(default)s)")
    parser.add_argument("--now", metavar="ISO-8601", help="the moment the call takes place (default: now)")
