"""The integrator's path: a team with its own voice agent posts the turns of an interview and gets the same
per-turn understanding and scorecard as phonescreen's own calls.

    POST  /api/v1/interviews/{id}/turns        one turn (agent or candidate), understood as it is stored
    PATCH /api/v1/interviews/{id}/turns/{n}    correct a turn's content; it (and what follows) is understood again
    GET   /api/v1/interviews/{id}/history      every turn with what was understood of it
    POST  /api/v1/interviews/{id}/finalize     end the interview (completed) and score it now

Who owns the interview. The integrator schedules it with `POST /interviews` and channel `web` (phonescreen
places no call; the join link is simply not sent). Its first posted turn (turnNumber 1) moves it
scheduled -> in_progress, with the reason STARTED_BY_TURNS in its audit event: that event is what makes
the interview the integrator's, so turns are never posted into a call phonescreen itself is running.

What is understood, the way ivr.session stores it for our own calls (store.set_turn_evaluation):
- an agent turn with isPendingQuestion is the question the next candidate turns answer: its factor comes
  from matching the template's questions (scoring.transcript.spoken_question; a lead-in before the
  question is fine) -> kind "question"; a pending question that matches none, once a factor is under way,
  is a follow-up on that factor -> "follow_up"; before any factor it is refused (422). An agent turn that
  reads the template's closing is "closing"; any other agent turn is a "statement".
- a candidate turn is classified (understanding.intents) in the consent state until a question has been
  asked, then in the question state; an answer is evaluated (understanding.evaluator) against the question
  pending and its factor. Stored: kind = the intent, factor, question, evaluation.
Model work runs on an executor thread, never on the event loop; turns of one interview are handled one at
a time (a per-interview lock), so turn numbers stay the integrator's.
"""
from __future__ import annotations

import asyncio
import functools
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from config.templates import InterviewTemplate
from models.db import parse_time
from models.lifecycle import Status
from models.records import ROLES, Interview, Turn, TurnEvaluation
from models.store import SessionStore
from models.validation import RuleViolation, ValidationError, check_text
from scoring.job import rescore_with_own_store
from scoring.transcript import spoken_question, words_of
from server.api.interviews import scorecard_json
from server.http import ApiError, Route, json_response, read_json, reject_unknown, settings_of, store_of
from server.api.schemas import COMPONENTS, ERROR_REF, VISIBLE, json_body, json_ok, path_id, ref

BASE = "/api/v1/interviews/{id}"
MAX_CONTENT_CHARS = 10_000
MAX_URL_CHARS = 2048
MAX_TURN_NUMBER = 10_000
STARTED_BY_TURNS = "started by the integrator's first posted turn"
FINALIZED = "finalized by the integrator"
QUESTION_KINDS = ("question", "follow_up")  # an agent turn the next candidate turns answer

_locks: "weakref.WeakValueDictionary[str, asyncio.Lock]" = weakref.WeakValueDictionary()


def _lock(interview_id: str) -> asyncio.Lock:
    """One request at a time per interview (kept while any request holds or waits for it)."""
    lock = _locks.get(interview_id)
    if lock is None:
        lock = _locks[interview_id] = asyncio.Lock()
    return lock


# -- what was understood of a turn -----------------------------------------------------------------
@dataclass(frozen=True)
class Understood:
    kind: str  # agent: question | follow_up | closing | statement; candidate: the intent
    factor: str | None = None
    question: str | None = None
    evaluation: dict | None = None


@dataclass(frozen=True)
class Asked:
    """What the candidate is answering at a point of the interview."""
    any: bool = False  # a question (or the closing) has been asked: the consent exchange is over
    factor: str | None = None
    question: str | None = None


@dataclass(frozen=True)
class Said:
    number: int
    role: str
    text: str
    pending: bool  # an agent turn posted as the pending question


def asked_before(number: int, known: dict[int, TurnEvaluation]) -> Asked:
    """The question pending just before turn `number`, from the stored agent turns' understanding."""
    for n in sorted((n for n in known if n < number), reverse=True):
        item = known[n]
        if item.role == "agent" and item.kind in (*QUESTION_KINDS, "closing"):
            return Asked(True, item.factor, item.question)
    return Asked()


def _agent(said: Said, asked: Asked, template: InterviewTemplate) -> tuple[Understood, Asked]:
    factor, question, matched = spoken_question(words_of(said.text), template)
    if matched and factor is None:  # the template's closing: nothing after it answers a factor
        return Understood("closing"), Asked(True)
    if not said.pending:
        return Understood("statement"), asked
    if matched:
        return Understood("question", factor, question), Asked(True, factor, question)
    if asked.factor is not None:  # an unscripted probe: it stays on the factor under way, like our follow-ups
        return Understood("follow_up", asked.factor, said.text), Asked(True, asked.factor, said.text)
    raise RuleViolation(f"turn {said.number} is a pending question that asks none of the position's questions; "
                        "start each factor with one of its questions (its first six words as written; a lead-in "
                        "before them is fine), or post the turn with isPendingQuestion false", "content")


def _candidate(said: Said, asked: Asked, template: InterviewTemplate, tz: str, now: datetime) -> Understood:
    from understanding.intents import DialogState, Intent, load_intent_classifier
    state = DialogState.QUESTION if asked.any else DialogState.CONSENT
    heard = load_intent_classifier().classify(said.text, state, timezone=tz, now=now)
    if heard.intent is not Intent.ANSWER or asked.factor is None:
        return Understood(heard.intent.value, asked.factor)
    from understanding.evaluator import load_evaluator
    factor = next(f for f in template.factors if f.name == asked.factor)
    evaluation = load_evaluator().evaluate(said.text, asked.question or factor.questions[0], factor,
                                           siblings=template.factors)
    return Understood(heard.intent.value, factor.name, asked.question, evaluation.to_dict())


def understand(turns: list[Said], asked: Asked, template: InterviewTemplate, tz: str,
               now: datetime) -> list[Understood]:
    """What each turn is, in order, starting from what was pending before the first. Blocking model work
    (classification ~5 ms, evaluation ~10-30 ms a turn; the models load on first use): run it off the loop."""
    out = []
    for said in turns:
        if said.role == "agent":
            understood, asked = _agent(said, asked, template)
        else:
            understood = _candidate(said, asked, template, tz, now)
        out.append(understood)
    return out


async def _understand_off_loop(*args: Any) -> list[Understood]:
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(understand, *args))


def _store_understood(store: SessionStore, interview_id: str, said: Said, understood: Understood) -> None:
    store.set_turn_evaluation(interview_id, said.number, role=said.role, kind=understood.kind,
                              factor=understood.factor, question=understood.question,
                              evaluation=understood.evaluation)


# -- records to API JSON ---------------------------------------------------------------------------
def turn_record(turn: Turn, known: TurnEvaluation | None) -> dict[str, Any]:
    candidate = turn.role == "candidate"
    return {"turn_number": turn.turn_number, "role": turn.role, "content": turn.text, "start_ms": turn.start_ms,
            "end_ms": turn.end_ms, "created_at": turn.created_at,
            "is_pending_question": bool(known and not candidate and known.kind in QUESTION_KINDS),
            "kind": known.kind if known else None,
            "intent": known.kind if known and candidate else None,
            "factor": known.factor if known else None,
            "question": known.question if known else None,
            "evaluation": known.evaluation if known else None}


# -- input checks ----------------------------------------------------------------------------------
def _check_turn_number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("must be an integer", "turnNumber")
    if not 1 <= value <= MAX_TURN_NUMBER:
        raise ValidationError(f"must be between 1 and {MAX_TURN_NUMBER}", "turnNumber")
    return value


def _check_role(value: object) -> str:
    if not isinstance(value, str) or value not in ROLES:
        raise ValidationError(f"must be one of {', '.join(ROLES)}", "role")
    return value


def _check_content(value: object) -> str:
    return check_text(value, "content", max_len=MAX_CONTENT_CHARS)


def _check_flag(value: object, field: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValidationError("must be true or false", field)
    return value


def _check_audio_url(value: object) -> str | None:
    url = check_text(value, "audioUrl", required=False, max_len=MAX_URL_CHARS)
    if url is not None and (not url.lower().startswith(("http://", "https://")) or len(url.split("//", 1)[1]) < 1
                            or any(c.isspace() for c in url)):
        raise ValidationError("must be an http or https URL", "audioUrl")
    return url


def _turn_in_path(request: web.Request) -> int:
    raw = request.match_info["n"]
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_TURN_NUMBER:
        raise ApiError(404, "not_found", f"turn {raw!r} not found")
    return int(raw)


# -- the interview's state -------------------------------------------------------------------------
def _integrators(store: SessionStore, interview: Interview) -> bool:
    """Started by a posted turn: the integrator's interview, not a call phonescreen runs."""
    return any(e.type == "interview.status_changed" and e.data.get("to") == Status.IN_PROGRESS.value
               and e.data.get("reason") == STARTED_BY_TURNS for e in store.events(interview_id=interview.id))


def _check_open(store: SessionStore, interview: Interview) -> None:
    """409 unless turn `number` may be posted: the integrator's interview in progress, or a scheduled web
    interview that this first turn starts."""
    if interview.status == Status.SCHEDULED:
        if interview.channel != "web":
            raise ApiError(409, "not_integrator", f"phonescreen places this interview's {interview.channel} call "
                           "itself; schedule an interview with channel web to post its turns")
        if parse_time(interview.expires_at) <= store.clock():
            raise ApiError(409, "expired", "the interview's invitation has expired")
        return  # turn 1 (the next number checked before) starts it
    _check_in_progress(store, interview, "posted", "phonescreen is running this interview's call itself; only an "
                       "interview started by a posted turn takes posted turns")


def _check_in_progress(store: SessionStore, interview: Interview, done: str, not_ours: str) -> None:
    """409 unless the interview is in progress and was started by a posted turn."""
    if interview.status != Status.IN_PROGRESS:
        raise ApiError(409, "not_in_progress", f"turns can only be {done} while the interview is in progress; "
                       f"it is {interview.status}")
    if not _integrators(store, interview):
        raise ApiError(409, "not_integrator", not_ours)


def _template_of(store: SessionStore, interview: Interview) -> InterviewTemplate:
    return store.get_position(interview.position_id, version=interview.position_version).template


def _candidate_zone(store: SessionStore, interview: Interview, request: web.Request) -> str:
    return store.get_candidate(interview.candidate_id).timezone or settings_of(request).interviews.default_timezone


def _elapsed_ms(store: SessionStore, interview: Interview, turns: list[Turn]) -> int:
    """When the turn arrived, in ms since the interview started (never before the previous turn). Posted
    turns carry no audio timing: start = end, so no speaking rate is guessed from them."""
    started = parse_time(interview.started_at) if interview.started_at else store.clock()
    elapsed = max(0, int((store.clock() - started).total_seconds() * 1000))
    return max([elapsed, *(t.end_ms for t in turns)])


# -- handlers --------------------------------------------------------------------------------------
async def post_turn(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"turn_number", "role", "content", "audio_url", "is_pending_question"})
    number = _check_turn_number(body.get("turn_number"))
    role = _check_role(body.get("role"))
    content = _check_content(body.get("content"))
    _check_audio_url(body.get("audio_url"))  # checked, not stored: posted turns keep no audio (yet)
    pending = bool(_check_flag(body.get("is_pending_question"), "isPendingQuestion"))
    if pending and role != "agent":
        raise RuleViolation("only an agent turn can be a pending question", "isPendingQuestion")
    store, iid = store_of(request), request.match_info["id"]
    async with _lock(iid):
        interview = store.get_interview(iid)
        turns = store.turns(iid)
        said = Said(number, role, content, pending)
        if number <= len(turns):
            return await _replay(request, store, interview, turns, said)
        if number != len(turns) + 1:
            raise ApiError(409, "turn_number", f"turnNumber must be {len(turns) + 1}, the next turn of this "
                           "interview", "turnNumber")
        _check_open(store, interview)
        known = store.turn_evaluations(iid)
        understood, = await _understand_off_loop([said], asked_before(number, known), _template_of(store, interview),
                                                 _candidate_zone(store, interview, request), store.clock())
        if interview.status == Status.SCHEDULED:
            interview = store.transition(iid, Status.IN_PROGRESS, reason=STARTED_BY_TURNS)
        at = _elapsed_ms(store, interview, turns)
        turn = store.add_turn(iid, role=role, text=content, start_ms=at, end_ms=at)
        _store_understood(store, iid, said, understood)
        return json_response(turn_record(turn, store.turn_evaluations(iid).get(turn.turn_number)), status=201)


async def _replay(request: web.Request, store: SessionStore, interview: Interview, turns: list[Turn],
                  said: Said) -> web.Response:
    """A turn posted again (a retry): the stored one if it is the same turn, else 409."""
    turn = turns[said.number - 1]
    known = store.turn_evaluations(interview.id).get(said.number)
    same_pending = said.role != "agent" or known is None or known.kind == "closing" \
        or (known.kind in QUESTION_KINDS) == said.pending
    if turn.role != said.role or turn.text != said.text or not same_pending:
        raise ApiError(409, "turn_exists", f"turn {said.number} already exists with other content; correct it with "
                       f"PATCH {request.path}/{said.number}, or post turnNumber {len(turns) + 1}", "turnNumber")
    if known is None and interview.status == Status.IN_PROGRESS:  # stored, then the request died: finish it
        understood, = await _understand_off_loop(
            [said], asked_before(said.number, store.turn_evaluations(interview.id)), _template_of(store, interview),
            _candidate_zone(store, interview, request), store.clock())
        _store_understood(store, interview.id, said, understood)
        known = store.turn_evaluations(interview.id).get(said.number)
    return json_response(turn_record(turn, known), status=200)


async def correct_turn(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"content", "is_pending_question"})
    content = _check_content(body.get("content"))
    pending = _check_flag(body.get("is_pending_question"), "isPendingQuestion")
    store, iid = store_of(request), request.match_info["id"]
    number = _turn_in_path(request)
    async with _lock(iid):
        interview = store.get_interview(iid)
        turns = store.turns(iid)
        if number > len(turns):
            raise ApiError(404, "not_found", f"turn {number} not found")
        _check_in_progress(store, interview, "corrected", "only the turns of an interview started by a posted "
                           "turn can be corrected")
        if pending and turns[number - 1].role != "agent":
            raise RuleViolation("only an agent turn can be a pending question", "isPendingQuestion")
        known = store.turn_evaluations(iid)

        def said_of(turn: Turn) -> Said:
            if turn.turn_number == number:
                was = known.get(number)
                return Said(number, turn.role, content,
                            pending if pending is not None else bool(was and was.kind in QUESTION_KINDS))
            was = known.get(turn.turn_number)
            return Said(turn.turn_number, turn.role, turn.text, bool(was and was.kind in QUESTION_KINDS))

        # The corrected turn and every later one: a changed question changes what the answers after it answer.
        again = [said_of(t) for t in turns[number - 1:]]
        understood = await _understand_off_loop(again, asked_before(number, known), _template_of(store, interview),
                                                _candidate_zone(store, interview, request), store.clock())
        turn = store.correct_turn(iid, number, content)
        for said, item in zip(again, understood):
            _store_understood(store, iid, said, item)
        return json_response(turn_record(turn, store.turn_evaluations(iid).get(number)))


async def get_history(request: web.Request) -> web.Response:
    store = store_of(request)
    interview = store.get_interview(request.match_info["id"])
    known = store.turn_evaluations(interview.id)
    return json_response({"interview_id": interview.id, "status": interview.status,
                          "turns": [turn_record(t, known.get(t.turn_number)) for t in store.turns(interview.id)]})


async def finalize(request: web.Request) -> web.Response:
    """completed, then scored on a worker thread with its own store (the loop keeps serving). Finalizing a
    finalized interview returns its latest scorecard (200), or scores it if it has none yet."""
    store, settings = store_of(request), settings_of(request)
    iid = request.match_info["id"]
    async with _lock(iid):
        interview = store.get_interview(iid)
        if interview.status not in (Status.IN_PROGRESS, Status.COMPLETED, Status.REPORT_READY):
            raise ApiError(409, "not_in_progress", f"only an interview in progress can be finalized; it is "
                           f"{interview.status}")
        if not _integrators(store, interview):
            raise ApiError(409, "not_integrator", "only an interview started by a posted turn can be finalized "
                           "through this endpoint")
        if interview.status == Status.IN_PROGRESS:
            store.transition(iid, Status.COMPLETED, reason=FINALIZED)
        elif scorecards := store.scorecards(iid):
            return json_response(scorecard_json(scorecards[-1]), status=200)
        scorecard = await asyncio.to_thread(rescore_with_own_store, settings, store.path, iid)
        return json_response(scorecard_json(scorecard), status=201)


# -- OpenAPI ---------------------------------------------------------------------------------------
_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_CONTENT = {"type": "string", "minLength": 1, "maxLength": MAX_CONTENT_CHARS, "pattern": VISIBLE,
            "description": "What was said (the agent's words, or the candidate's transcript)."}
_PENDING = {"type": "boolean", "nullable": True, "default": False,
            "description": "An agent turn that asks the question the next candidate turns answer. It must ask "
                           "one of the position's questions (its first six words as written; a lead-in is fine), "
                           "except a probe once a factor is under way, which stays on that factor (follow_up)."}
_EVALUATION = {
    "type": "object", "nullable": True,
    "description": "The answer's evaluation against its factor (candidate answers only).",
    "required": ["factor", "score", "relevance", "specificity", "flags", "reasoning"],
    "properties": {
        "factor": _STRING, "score": {"type": "integer", "nullable": True, "minimum": 0, "maximum": 100},
        "relevance": {"type": "string", "enum": ["relevant", "off_topic"]},
        "specificity": {"type": "string", "enum": ["concrete", "vague"]},
        "flags": {"type": "array", "items": _STRING}, "reasoning": _STRING,
    }}
_RECORD_PROPERTIES = {
    "turnNumber": {"type": "integer", "minimum": 1}, "role": {"type": "string", "enum": list(ROLES)},
    "content": _STRING, "startMs": {"type": "integer"}, "endMs": {"type": "integer"},
    "createdAt": {"type": "string", "format": "date-time"},
    "isPendingQuestion": {"type": "boolean"},
    "kind": {**_NULLABLE_STRING, "description": "agent: question, follow_up, closing or statement; candidate: its "
             "intent. Null for a turn nothing was understood of (e.g. from an older call)."},
    "intent": {**_NULLABLE_STRING, "description": "A candidate turn's intent: answer, consent_yes, consent_no, "
               "unclear, repeat, stop, callback, human, question or backchannel."},
    "factor": {**_NULLABLE_STRING, "description": "The factor asked about (agent) or being answered (candidate)."},
    "question": {**_NULLABLE_STRING, "description": "The question an answer answers, or a pending question's own."},
    "evaluation": _EVALUATION,
}
COMPONENTS["schemas"].update({
    "TurnPost": {
        "type": "object", "additionalProperties": False, "required": ["turnNumber", "role", "content"],
        "properties": {
            "turnNumber": {"type": "integer", "minimum": 1, "maximum": MAX_TURN_NUMBER,
                           "description": "The next number (1 for the first turn, which starts a scheduled "
                                          "interview). Posting an existing turn again with the same content "
                                          "returns it (200): retries are safe."},
            "role": {"type": "string", "enum": list(ROLES)},
            "content": _CONTENT,
            "audioUrl": {"type": "string", "nullable": True, "maxLength": MAX_URL_CHARS,
                         "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x1c-\x1f\x85]+$",
                         "description": "Where the turn's audio is (http or https). Checked, not stored yet."},
            "isPendingQuestion": _PENDING,
        }},
    "TurnCorrection": {
        "type": "object", "additionalProperties": False, "required": ["content"],
        "properties": {"content": _CONTENT,
                       "isPendingQuestion": {**_PENDING, "description": "Change whether an agent turn is the pending "
                                             "question (default: unchanged)."}}},
    "TurnRecord": {"type": "object", "required": list(_RECORD_PROPERTIES), "properties": _RECORD_PROPERTIES},
    "TurnHistory": {"type": "object", "required": ["interviewId", "status", "turns"],
                    "properties": {"interviewId": _STRING, "status": _STRING,
                                   "turns": {"type": "array", "items": ref("TurnRecord")}}},
})

_TURN_PATH = {"name": "n", "in": "path", "required": True,
              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TURN_NUMBER}}

ROUTES: list[Route] = [
    Route("POST", f"{BASE}/turns", post_turn, "turns:write", {
        "summary": "Post one turn of an interview run by your own voice agent; it is understood as it is stored",
        "operationId": "postInterviewTurn", "parameters": [path_id()],
        "requestBody": json_body(ref("TurnPost")),
        "description": "Schedule the interview with channel web; turnNumber 1 starts it (scheduled -> in_progress). "
                       "A candidate turn is classified (consent until a question is pending, then the question "
                       "state) and an answer is evaluated against the pending question and its factor. 200: the "
                       "same turn posted again (a retry). 404: no such interview. 409: turnNumber is not the next "
                       "one, a different turn already has that number, the interview is not in progress (or is "
                       "phonescreen's own call). 422: a pending question that asks none of the position's "
                       "questions before any factor is under way, or isPendingQuestion on a candidate turn.",
        "responses": {"201": json_ok(ref("TurnRecord"), "Created"), "200": json_ok(ref("TurnRecord"), "Already stored"),
                      "404": ERROR_REF, "409": ERROR_REF, "422": ERROR_REF}}),
    Route("PATCH", f"{BASE}/turns/{{n}}", correct_turn, "turns:write", {
        "summary": "Correct a posted turn's content; it and the turns after it are understood again",
        "operationId": "correctInterviewTurn", "parameters": [path_id(), _TURN_PATH],
        "requestBody": json_body(ref("TurnCorrection")),
        "description": "Only while the interview is in progress (409 otherwise). 404: no such interview or turn. "
                       "422: the corrected pending question asks none of the position's questions, or "
                       "isPendingQuestion on a candidate turn.",
        "responses": {"200": json_ok(ref("TurnRecord")), "404": ERROR_REF, "409": ERROR_REF, "422": ERROR_REF}}),
    Route("GET", f"{BASE}/history", get_history, "interviews:read", {
        "summary": "Every turn with what was understood of it: intent, factor, question, evaluation",
        "operationId": "getInterviewHistory", "parameters": [path_id()],
        "responses": {"200": json_ok(ref("TurnHistory")), "404": ERROR_REF}}),
    Route("POST", f"{BASE}/finalize", finalize, "turns:write", {
        "summary": "End the interview (completed) and score it now; returns the scorecard",
        "operationId": "finalizeInterview", "parameters": [path_id()],
        "description": "201: the new scorecard. 200: the interview was already finalized; its latest scorecard. "
                       "409: the interview is not in progress, or was not started by a posted turn.",
        "responses": {"201": json_ok(ref("Scorecard"), "Created"), "200": json_ok(ref("Scorecard")),
                      "404": ERROR_REF, "409": ERROR_REF}}),
]
