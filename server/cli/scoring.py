"""`phonescreen rescore ID` (a new scorecard version from the stored transcript) and `phonescreen report ID`
(the scorecard as a readable report, or --json as the REST API shows it)."""
from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from config.settings import Settings
from models.records import Scorecard
from models.store import SessionStore
from scoring.scorecard import SCORABLE, score_interview
from server.cli.output import CliError, open_store, when

WIDTH = 100


def rescore(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as store:
        interview = store.get_interview(args.id)  # NotFound -> exit 2 naming it
        if interview.status not in SCORABLE:
            raise CliError(f"interview {interview.id} is {interview.status}; only a finished interview can be scored")
        scorecard = score_interview(store, interview.id, settings)
    overall = "no overall score" if scorecard.overall is None else f"overall {scorecard.overall:g}"
    print(f"scored interview {scorecard.interview_id}: version {scorecard.version}, {scorecard.status}, {overall} "
          f"(grader {scorecard.data['grader']['name']})")
    return 0


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent) or [indent.rstrip()]


def _language_line(language: dict[str, Any]) -> str:
    parts = []
    if language.get("speaking_rate_wpm") is not None:
        parts.append(f"{language['speaking_rate_wpm']:g} words per minute")
    parts.append(f"{language.get('filler_rate_per_100_words', 0):g} fillers per 100 words")
    parts.append(f"lexical diversity {language.get('lexical_diversity', 0):g}")
    parts.append(f"{language.get('mean_answer_words', 0):g} words per answer")
    if language.get("mean_stt_confidence") is not None:
        parts.append(f"STT confidence {language['mean_stt_confidence']:g}")
    if language.get("cefr"):
        parts.append(f"CEFR {language['cefr']} (confidence {language['cefr_confidence']:g})")
    elif language.get("cefr_note"):
        parts.append(f"no CEFR estimate: {language['cefr_note']}")
    return "; ".join(parts)


def render_report(store: SessionStore, scorecard: Scorecard) -> str:
    interview = store.get_interview(scorecard.interview_id)
    candidate = store.get_candidate(interview.candidate_id)
    data = scorecard.data
    overall = "no overall score (low confidence)" if scorecard.overall is None else f"overall {scorecard.overall:g}/100"
    grader = data.get("grader", {})
    lines = [
        f"{data.get('template', {}).get('title', 'Interview')} - {candidate.name}",
        f"interview {interview.id} ({interview.channel}, {interview.status}, ended {when(interview.ended_at)})",
        f"scorecard version {scorecard.version}: {scorecard.status}, {overall}",
        f"grader {grader.get('name')} ({grader.get('model')}), rubric {scorecard.rubric_version[:12]}, "
        f"scored {when(scorecard.created_at)}",
    ]
    for reason in data.get("low_confidence_reasons", []):
        lines.append(f"low confidence: {reason}")
    lines.append("")
    for factor in data.get("factors", []):
        score = "not graded" if factor["score"] is None else f"{factor['score']}/100"
        lines.append(f"{factor['name']} (weight {factor['weight'] * 100:.0f}%): {score}")
        lines += _wrap(factor["reasoning"], "    ")
        for citation in factor["citations"]:
            lines += _wrap(f"turn {citation['turn']}: \u201c{citation['quote']}\u201d", "    > ")
        lines.append("")
    lines.append("Language")
    lines += _wrap(_language_line(data.get("language", {})), "    ")
    feedback = data.get("ai_feedback", {})
    lines += ["", "What went well"] + _wrap(feedback.get("strengths", ""), "    ")
    lines += ["", "What to probe next"] + _wrap(feedback.get("probe", ""), "    ")
    notes = [*data.get("notes", [])]
    if data.get("masked_spans"):
        notes.append(f"{data['masked_spans']} span(s) on sensitive attributes were masked before grading")
    if notes:
        lines += ["", "Notes"] + [line for note in notes for line in _wrap(note, "    ")]
    return "\n".join(lines)


def report(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as store:
        interview = store.get_interview(args.id)
        scorecards = store.scorecards(interview.id)
        if not scorecards:
            raise CliError(f"interview {interview.id} ({interview.status}) has no scorecard yet; "
                           f"`phonescreen rescore {interview.id}` scores a finished interview")
        if args.version is None:
            scorecard = scorecards[-1]
        else:
            scorecard = next((s for s in scorecards if s.version == args.version), None)
            if scorecard is None:
                raise CliError(f"interview {interview.id} has scorecard versions 1 to {len(scorecards)}, "
                               f"not {args.version}")
        if args.json:
            from server.http import camelize  # loads aiohttp: only when JSON is asked for
            print(json.dumps(camelize(scorecard), indent=2, ensure_ascii=False))
        else:
            print(render_report(store, scorecard))
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("rescore", help="score a finished interview again (a new scorecard version)").add_argument(
        "id", metavar="ID")
    report_parser = commands.add_parser("report", help="print an interview's scorecard as a readable report")
    report_parser.add_argument("id", metavar="ID")
    report_parser.add_argument("--version", type=int, help="a scorecard version (default: the latest)")
    report_parser.add_argument("--json", action="store_true", help="print JSON, as the REST API shows it")
