"""/api/v1/interviews: schedule, list, inspect, reschedule and cancel interviews.
Status changes made by calls and scorers go through the store's lifecycle (models.lifecycle); through
the API a client can only create, reschedule (while scheduled) and cancel."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from models.lifecycle import ENDED, Status
from models.records import CHANNELS, TURN_ROLES, Event, Interview, Invitation, Scorecard, Turn
from models.store import default_expiry
from models.validation import RuleViolation, ValidationError, check_text
from scoring.job import rescore_with_own_store
from scoring.schema import SCORECARD_DATA_SCHEMA
from scoring.scorecard import SCORABLE
from server.http import (ApiError, Route, json_response, page_response, paging, read_json, reject_unknown, settings_of,
                         store_of)
from server.api.schemas import (COMPONENTS, ERROR_REF, PAGE_PARAMETERS, VISIBLE, json_body, json_ok, page_of, path_id,
                            ref)

BASE = "/api/v1/interviews"
MAX_ID_CHARS = 100
MAX_EXPIRY = timedelta(days=365)
STATUSES = [s.value for s in Status]


# -- records to API JSON (json_response camelizes) -------------------------------------------------
def interview_json(interview: Interview) -> dict[str, Any]:
    """An interview as the API shows it: never with its join token's hash."""
    fields = dataclasses.asdict(interview)
    del fields["join_token_hash"]
    return fields


def _invitation_json(invitation: Invitation | None) -> dict[str, Any] | None:
    """The newest invitation's delivery state, as the interview shows it (all of them: /invitations)."""
    if invitation is None:
        return None
    return {"id": invitation.id, "channel": invitation.channel, "status": invitation.status,
            "reason": invitation.reason, "attempts": invitation.attempts, "sent_at": invitation.sent_at,
            "updated_at": invitation.updated_at}


def turn_json(turn: Turn) -> dict[str, Any]:
    return {"turn_number": turn.turn_number, "role": turn.role, "text": turn.text, "start_ms": turn.start_ms,
            "end_ms": turn.end_ms, "stt_confidence": turn.stt_confidence, "interrupted": turn.interrupted}


def event_json(event: Event) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "created_at": event.created_at, "data": event.data}


def scorecard_json(scorecard: Scorecard) -> dict[str, Any]:
    return dataclasses.asdict(scorecard)


# -- input checks ----------------------------------------------------------------------------------
def check_id(value: object, field: str, *, required: bool = True) -> str | None:
    return check_text(value, field, required=required, max_len=MAX_ID_CHARS)


def check_channel(value: object, field: str = "channel", channels: tuple[str, ...] = CHANNELS) -> str:
    if not isinstance(value, str) or value not in channels:
        raise ValidationError(f"must be one of {', '.join(channels)}", field)
    return value


def check_expiry(value: object, now: datetime, field: str = "expiresAt") -> datetime:
    """An ISO 8601 time with a UTC offset, in the future and at most MAX_EXPIRY ahead."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValidationError("must be an ISO 8601 date-time with an offset, e.g. 2030-01-31T17:00:00+01:00", field)
    try:
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # RFC 3339 allows "t" and "z"
    except ValueError:
        raise ValidationError("must be an ISO 8601 date-time such as 2030-01-31T17:00:00+01:00", field) from None
    if moment.tzinfo is None:
        raise ValidationError("must include a UTC offset (Z or +HH:MM)", field)
    try:
        utc = moment.astimezone(timezone.utc)
    except OverflowError:  # years 1 and 9999 pushed out of range by their offset: far from now either way
        utc = None
    # Well-formed, but no schema can say "relative to now": 422.
    if utc is None or not now < utc <= now + MAX_EXPIRY:
        raise RuleViolation(f"must be in the future and at most {MAX_EXPIRY.days} days ahead", field)
    return utc


def _status_filter(request: web.Request) -> str | None:
    value = request.query.get("status")
    if value is not None and value not in STATUSES:
        raise ApiError(400, "invalid_parameter", f"status must be one of {', '.join(STATUSES)}", "status")
    return value


def _channel_filter(request: web.Request) -> str | None:
    value = request.query.get("channel")
    if value is not None and value not in CHANNELS:
        raise ApiError(400, "invalid_parameter", f"channel must be one of {', '.join(CHANNELS)}", "channel")
    return value


# -- handlers --------------------------------------------------------------------------------------
async def list_interviews(request: web.Request) -> web.Response:
    page, page_size = paging(request)
    store = store_of(request)
    items, total = store.list_interviews(
        page=page, page_size=page_size, status=_status_filter(request), channel=_channel_filter(request),
        position_id=request.query.get("positionId"), campaign_id=request.query.get("campaignId"),
        candidate_id=request.query.get("candidateId"))
    invitations = store.latest_invitations([i.id for i in items])
    return page_response([{**interview_json(i), "invitation": _invitation_json(invitations.get(i.id))}
                          for i in items], total, page, page_size)


async def create_interview(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"candidate_id", "position_id", "channel", "expires_at", "rerun_of"})
    store, settings = store_of(request), settings_of(request)
    candidate_id = check_id(body.get("candidate_id"), "candidateId")
    position_id = check_id(body.get("position_id"), "positionId")
    channel = check_channel(body.get("channel"))
    rerun_of = check_id(body.get("rerun_of"), "rerunOf", required=False)
    if body.get("expires_at") is None:
        expires_at = default_expiry(store.clock, settings.interviews.invite_expiry_days)
    else:
        expires_at = check_expiry(body["expires_at"], store.clock())
    # Unknown candidate, position or rerunOf: NotFound -> 404 naming which one.
    interview, token = store.create_interview(candidate_id=candidate_id, position_id=position_id, channel=channel,
                                              expires_at=expires_at, rerun_of=rerun_of)
    return json_response({**interview_json(interview), "join_token": token,
                          "join_url": f"{settings.public_url}/join#{token}"}, status=201)


async def get_interview(request: web.Request) -> web.Response:
    store = store_of(request)
    interview = store.get_interview(request.match_info["id"])
    scorecards = store.scorecards(interview.id)
    return json_response({
        **interview_json(interview),
        "turns": [turn_json(t) for t in store.turns(interview.id)],
        "scorecard": scorecard_json(scorecards[-1]) if scorecards else None,
        "scorecard_versions": len(scorecards),
        "events": [event_json(e) for e in store.events(interview_id=interview.id)],
        "invitation": _invitation_json(store.latest_invitations([interview.id]).get(interview.id)),
    })


async def update_interview(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"expires_at"})
    store = store_of(request)
    if "expires_at" not in body:
        raise ValidationError("is required", "expiresAt")
    expires_at = check_expiry(body["expires_at"], store.clock())
    interview = store.get_interview(request.match_info["id"])
    if interview.status in ENDED:
        raise ApiError(409, "immutable", f"the interview is {interview.status}; an ended interview is immutable")
    # Not scheduled (a call under way): Conflict -> 409.
    return json_response(interview_json(store.reschedule_interview(interview.id, expires_at)))


async def cancel_interview(request: web.Request) -> web.Response:
    interview = store_of(request).transition(request.match_info["id"], Status.CANCELLED,
                                             reason="cancelled through the API")
    return json_response(interview_json(interview))


async def rescore_interview(request: web.Request) -> web.Response:
    """A new scorecard version from the stored transcript (no new call). Graded on a worker thread with
    its own store, so the event loop keeps serving while it runs."""
    store, settings = store_of(request), settings_of(request)
    interview = store.get_interview(request.match_info["id"])
    if interview.status not in SCORABLE:
        raise ApiError(409, "not_finished", f"only a finished interview can be scored; this one is {interview.status}")
    scorecard = await asyncio.to_thread(rescore_with_own_store, settings, store.path, interview.id)
    return json_response(scorecard_json(scorecard), status=201)


async def get_transcript(request: web.Request) -> web.Response:
    store = store_of(request)
    interview = store.get_interview(request.match_info["id"])
    return json_response({"interview_id": interview.id, "turns": [turn_json(t) for t in store.turns(interview.id)]})


# -- OpenAPI ---------------------------------------------------------------------------------------
_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}
_ID_INPUT = {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "pattern": VISIBLE}
_EXPIRES_INPUT = {"type": "string", "format": "date-time", "maxLength": 64,
                  "description": "ISO 8601 with a UTC offset; in the future, at most 365 days ahead."}
_INTERVIEW_PROPERTIES = {
    "id": _STRING, "candidateId": _STRING, "positionId": _STRING, "positionVersion": {"type": "integer"},
    "campaignId": _NULLABLE_STRING, "channel": {"type": "string", "enum": list(CHANNELS)},
    "status": {"type": "string", "enum": STATUSES}, "attemptCount": {"type": "integer"},
    "outcomeCode": _NULLABLE_STRING, "recordingPath": _NULLABLE_STRING, "expiresAt": _TIME, "createdAt": _TIME,
    "updatedAt": _TIME, "startedAt": _NULLABLE_TIME, "endedAt": _NULLABLE_TIME, "rerunOf": _NULLABLE_STRING,
    "endReason": {**_NULLABLE_STRING, "description": "Why an answered call ended: completed, max_duration, declined "
                  "(said no to consent), no_consent, stopped (withdrew), no_response, callback_scheduled, "
                  "human_requested, hung_up, shutdown."},
    "callbackAt": {**_NULLABLE_STRING, "description": "When the candidate asked to be called back (ISO 8601 with "
                   "their UTC offset)."},
    "scheduledFor": {**_NULLABLE_STRING, "description": "Not dialed before this moment (a callback)."},
}
_TURN_PROPERTIES = {
    "turnNumber": {"type": "integer", "minimum": 1}, "role": {"type": "string", "enum": list(TURN_ROLES)},
    "text": _STRING, "startMs": {"type": "integer"}, "endMs": {"type": "integer"},
    "sttConfidence": {"type": "number", "nullable": True}, "interrupted": {"type": "boolean"},
}
_SCORECARD_PROPERTIES = {
    "id": _STRING, "interviewId": _STRING, "version": {"type": "integer"},
    "status": {"type": "string", "enum": ["scored", "partial", "low_confidence"]},
    "overall": {"type": "number", "nullable": True,
                "description": "Weighted mean of the graded factors; null when the status is low_confidence."},
    "rubricVersion": _STRING, "data": ref("ScorecardData"), "createdAt": _TIME,
}


def _object(properties: dict[str, Any], nullable: bool = False) -> dict[str, Any]:
    schema = {"type": "object", "required": list(properties), "properties": properties}
    return {**schema, "nullable": True} if nullable else schema


_INVITATION_STATE = _object({
    "id": _STRING, "channel": {"type": "string", "enum": ["email", "sms"]},
    "status": {"type": "string", "enum": ["queued", "sending", "sent", "delivered", "failed", "bounced"]},
    "reason": _NULLABLE_STRING, "attempts": {"type": "integer", "minimum": 0}, "sentAt": _NULLABLE_TIME,
    "updatedAt": _TIME}, nullable=True)
_INVITATION_STATE["description"] = "The newest invitation sent with the join link and its delivery state, or null."

COMPONENTS["schemas"].update({
    "Interview": _object(_INTERVIEW_PROPERTIES),
    "InterviewListed": _object({**_INTERVIEW_PROPERTIES, "invitation": _INVITATION_STATE}),
    "InterviewCreated": _object({**_INTERVIEW_PROPERTIES, "joinToken": _STRING,
                                 "joinUrl": {**_STRING, "description": "Send this to the candidate; shown once."}}),
    "InterviewDetail": _object({
        **_INTERVIEW_PROPERTIES,
        "turns": {"type": "array", "items": ref("Turn")},
        "scorecard": _object(_SCORECARD_PROPERTIES, nullable=True),
        "scorecardVersions": {"type": "integer", "minimum": 0},
        "events": {"type": "array", "items": ref("InterviewEvent")},
        "invitation": _INVITATION_STATE,
    }),
    "Turn": _object(_TURN_PROPERTIES),
    "Scorecard": _object(_SCORECARD_PROPERTIES),
    "ScorecardData": SCORECARD_DATA_SCHEMA,
    "InterviewEvent": _object({"id": {"type": "integer"}, "type": _STRING, "createdAt": _TIME,
                               "data": {"type": "object"}}),
    "Transcript": _object({"interviewId": _STRING, "turns": {"type": "array", "items": ref("Turn")}}),
    "InterviewCreate": {
        "type": "object", "additionalProperties": False, "required": ["candidateId", "positionId", "channel"],
        "properties": {
            "candidateId": _ID_INPUT, "positionId": _ID_INPUT, "channel": {"type": "string", "enum": list(CHANNELS)},
            "expiresAt": {**_EXPIRES_INPUT, "nullable": True, "description": "Default: now + the "
                          "interviews.invite_expiry_days setting. " + _EXPIRES_INPUT["description"]},
            "rerunOf": {**_ID_INPUT, "nullable": True,
                        "description": "An earlier interview of the same candidate; it is kept unchanged."},
        }},
    "InterviewUpdate": {"type": "object", "additionalProperties": False, "required": ["expiresAt"],
                        "properties": {"expiresAt": _EXPIRES_INPUT}},
})

_FILTERS = [
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": STATUSES}},
    {"name": "positionId", "in": "query", "schema": _STRING},
    {"name": "campaignId", "in": "query", "schema": _STRING},
    {"name": "candidateId", "in": "query", "schema": _STRING},
    {"name": "channel", "in": "query", "schema": {"type": "string", "enum": list(CHANNELS)}},
]

ROUTES: list[Route] = [
    Route("GET", BASE, list_interviews, "interviews:read", {
        "summary": "List interviews (without transcripts), newest first", "operationId": "listInterviews",
        "parameters": [*PAGE_PARAMETERS, *_FILTERS],
        "responses": {"200": json_ok(page_of("InterviewListed"))}}),
    Route("POST", BASE, create_interview, "interviews:write", {
        "summary": "Schedule an interview; the response holds the candidate's join link, shown only once",
        "operationId": "createInterview",
        "requestBody": json_body(ref("InterviewCreate")),
        "description": "404: the candidate, position or rerunOf interview does not exist (the message names "
                       "which). 409: the position is archived, the candidate has no phone for a sip/twilio "
                       "interview, or rerunOf is another candidate's interview. 422: expiresAt is not in the future or more than "
                       "365 days ahead.",
        "responses": {"201": json_ok(ref("InterviewCreated"), "Created"), "404": ERROR_REF, "409": ERROR_REF,
                      "422": ERROR_REF}}),
    Route("GET", f"{BASE}/{{id}}", get_interview, "interviews:read", {
        "summary": "An interview with its turns, latest scorecard and status history",
        "operationId": "getInterview", "parameters": [path_id()],
        "responses": {"200": json_ok(ref("InterviewDetail")), "404": ERROR_REF}}),
    Route("PATCH", f"{BASE}/{{id}}", update_interview, "interviews:write", {
        "summary": "Reschedule: change expiresAt while the interview is scheduled",
        "operationId": "updateInterview", "parameters": [path_id()],
        "requestBody": json_body(ref("InterviewUpdate")),
        "description": "409 when the interview is no longer scheduled; an ended interview is immutable. 422: "
                       "expiresAt is not in the future or more than 365 days ahead.",
        "responses": {"200": json_ok(ref("Interview")), "404": ERROR_REF, "409": ERROR_REF, "422": ERROR_REF}}),
    Route("POST", f"{BASE}/{{id}}/cancel", cancel_interview, "interviews:write", {
        "summary": "Cancel an interview that has not started talking yet", "operationId": "cancelInterview",
        "parameters": [path_id()],
        "description": "409 once the call has been answered or the interview has ended.",
        "responses": {"200": json_ok(ref("Interview")), "404": ERROR_REF, "409": ERROR_REF}}),
    Route("POST", f"{BASE}/{{id}}/rescore", rescore_interview, "interviews:write", {
        "summary": "Score the stored transcript again; every scorecard version is kept",
        "operationId": "rescoreInterview", "parameters": [path_id()],
        "description": "Grades with the scoring.grader setting and returns the new version. 409 unless the "
                       "interview is completed, report_ready or partial.",
        "responses": {"201": json_ok(ref("Scorecard"), "Created"), "404": ERROR_REF, "409": ERROR_REF}}),
    Route("GET", f"{BASE}/{{id}}/transcript", get_transcript, "interviews:read", {
        "summary": "The interview's turns in order", "operationId": "getInterviewTranscript",
        "parameters": [path_id()],
        "responses": {"200": json_ok(ref("Transcript")), "404": ERROR_REF}}),
]
