"""/api/v1/campaigns: create and edit outbound calling campaigns, and start, pause, resume or cancel them
(the campaign scheduler, dialer/campaign/, does the dialing). A campaign is editable, and deletable, only
while it is a draft."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from dialer.channels import campaign_blocked_reason
from models.campaign_dialing import CAMPAIGN_STATUSES, PROGRESS_KEYS
from models.campaign_settings import (ATTEMPTS_PER_SECOND, DEFAULT_VOICEMAIL, DEFAULT_WINDOW, HHMM,
                                      INVITE_EXPIRY_DAYS, MAX_CONCURRENT_CALLS, MAX_VOICEMAIL_MESSAGE_CHARS,
                                      RESUME_MAX_AGE_S, RESUME_MAX_RESUMES, RETRY_DEFAULT_DELAY_S, RETRY_DELAY_S,
                                      RETRY_MAX_ATTEMPTS, RETRY_OUTCOMES, VOICEMAIL_ACTIONS, WEEKDAYS, clean_campaign_settings)
from models.records import Campaign
from models.store import SessionStore
from models.validation import ValidationError, check_text
from scoring.export import campaign_results_csv
from server.api.interviews import MAX_ID_CHARS, STATUSES, check_channel, check_id
from server.http import Route, camel, camel_path, camelize, paging, read_json, reject_unknown, settings_of, store_of
from server.api.schemas import (COMPONENTS, ERROR_REF, PAGE_PARAMETERS, VISIBLE, json_body, json_ok, page_of, path_id,
                            ref)

BASE = "/api/v1/campaigns"
CAMPAIGN_CHANNELS = ("sip", "twilio")  # a campaign dials out; web interviews are sent as links instead
MAX_NAME_CHARS = 200
MAX_CAMPAIGN_CANDIDATES = 10_000


# -- records to API JSON ---------------------------------------------------------------------------
def interview_counts(store: SessionStore, campaign_id: str) -> dict[str, int]:
    """The campaign's interviews per status (every status present, zeros included)."""
    counts = dict.fromkeys(STATUSES, 0)
    for row in store.db.query("SELECT status, COUNT(*) AS n FROM interviews WHERE campaign_id = ? GROUP BY status",
                              [campaign_id]):
        counts[row["status"]] = row["n"]
    return counts


def campaign_json(request: web.Request, campaign: Campaign) -> dict[str, Any]:
    """Already camelCase, because byStatus is keyed by status values (in_progress), which the API's
    camelizing would rewrite; respond with web.json_response, not json_response."""
    store = store_of(request)
    by_status = interview_counts(store, campaign.id)
    return {**camelize(campaign), "counts": {"candidates": len(campaign.candidate_ids),
                                             "interviews": sum(by_status.values()), "byStatus": by_status},
            "progress": camelize(store.campaign_progress(campaign.id)),
            "blockedReason": campaign_blocked_reason(settings_of(request), campaign.channel, campaign.status)}


# -- input checks ----------------------------------------------------------------------------------
def check_settings(value: object) -> dict[str, Any]:
    """clean_campaign_settings, with the error's field path as the client wrote it (settings.retry.noAnswer)."""
    if value is None:  # None would mean "all defaults" to the validator; in a body it is a mistake
        raise ValidationError("must be an object", "settings")
    try:
        return clean_campaign_settings(value)  # type: ignore[arg-type]  # non-objects are rejected inside
    except ValidationError as exc:
        path = ["settings", *(exc.field.split(".") if exc.field else [])]
        raise type(exc)(exc.message, camel_path(".".join(path))) from None  # a RuleViolation stays one


def merged(current: dict[str, Any], changes: object) -> object:
    """PATCH semantics for settings: nested objects are merged, everything else replaced."""
    if not isinstance(changes, dict):
        return changes
    out = dict(current)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(out.get(key), dict) else value
    return out


def check_candidate_ids(value: object) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_CAMPAIGN_CANDIDATES:
        raise ValidationError(f"must be a list of at most {MAX_CAMPAIGN_CANDIDATES} candidate ids", "candidateIds")
    return [check_id(v, f"candidateIds[{i}]") for i, v in enumerate(value)]


def check_name(value: object) -> str:
    return check_text(value, "name", max_len=MAX_NAME_CHARS)


# -- handlers --------------------------------------------------------------------------------------
async def list_campaigns(request: web.Request) -> web.Response:
    page, page_size = paging(request)
    store = store_of(request)
    items, total = store.list_campaigns(page=page, page_size=page_size, position_id=request.query.get("positionId"))
    return web.json_response({"items": [campaign_json(request, c) for c in items], "total": total, "page": page,
                              "pageSize": page_size})


async def create_campaign(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"name", "position_id", "channel", "settings", "candidate_ids"})
    store = store_of(request)
    name = check_name(body.get("name"))
    position_id = check_id(body.get("position_id"), "positionId")
    channel = check_channel(body.get("channel"), channels=CAMPAIGN_CHANNELS)
    settings = check_settings(body.get("settings", {}))
    candidate_ids = check_candidate_ids(body.get("candidate_ids", []))
    # Unknown position or candidate: NotFound -> 404 naming it; archived position -> Conflict -> 409.
    campaign = store.create_campaign(name=name, position_id=position_id, channel=channel, settings=settings,
                                     candidate_ids=candidate_ids)
    return web.json_response(campaign_json(request, campaign), status=201)


async def get_campaign(request: web.Request) -> web.Response:
    store = store_of(request)
    return web.json_response(campaign_json(request, store.get_campaign(request.match_info["id"])))


async def update_campaign(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"name", "settings", "candidate_ids"})
    store = store_of(request)
    campaign = store.get_campaign(request.match_info["id"])
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = check_name(body["name"])
    if "settings" in body:
        changes["settings"] = check_settings(merged(campaign.settings, body["settings"]))
    if "candidate_ids" in body:
        changes["candidate_ids"] = check_candidate_ids(body["candidate_ids"])
    # Not a draft any more: Conflict -> 409.
    return web.json_response(campaign_json(request, store.update_campaign(campaign.id, **changes)))


async def delete_campaign(request: web.Request) -> web.Response:
    store_of(request).delete_campaign(request.match_info["id"])
    return web.Response(status=204)


def _action(action: str):
    async def handler(request: web.Request) -> web.Response:
        store = store_of(request)
        # Not allowed from the campaign's status: Conflict -> 409 naming it.
        return web.json_response(campaign_json(request, store.campaign_action(request.match_info["id"], action)))
    handler.__name__ = f"{action}_campaign"
    return handler


async def campaign_results(request: web.Request) -> web.Response:
    """The campaign's results as CSV for an ATS (scoring.export); unknown campaign: 404 as JSON."""
    campaign_id = request.match_info["id"]
    text = campaign_results_csv(store_of(request), campaign_id)
    return web.Response(text=text, content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="campaign-{campaign_id}-results.csv"'})


# -- OpenAPI ---------------------------------------------------------------------------------------
def _integer(low: int, high: int, default: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high, "default": default}


def _settings_schema(filled: bool) -> dict[str, Any]:
    """Campaign settings: as a client sends them (every key optional, defaults apply) or as the API
    returns them (`filled`: every key present)."""
    def obj(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
        schema = {"type": "object", "additionalProperties": False, "properties": properties, **extra}
        return {**schema, "required": list(properties)} if filled else schema

    time_of_day = {"type": "string", "pattern": f"^{HHMM.pattern}$"}
    window = obj({
        "start": {**time_of_day, "default": DEFAULT_WINDOW["start"]},
        "end": {**time_of_day, "default": DEFAULT_WINDOW["end"], "description": "Later than start."},
        "weekdays": {"type": "array", "minItems": 1, "maxItems": len(WEEKDAYS), "uniqueItems": True,
                     "items": {"type": "string", "enum": list(WEEKDAYS)},
                     "default": list(DEFAULT_WINDOW["weekdays"])},
    })
    retry = obj({camel(outcome): obj({
        "delayS": _integer(*RETRY_DELAY_S, RETRY_DEFAULT_DELAY_S[outcome]),
        "maxAttempts": _integer(*RETRY_MAX_ATTEMPTS),
    }) for outcome in RETRY_OUTCOMES})
    low, high, usual = ATTEMPTS_PER_SECOND
    return obj({
        "window": window,
        "maxConcurrentCalls": _integer(*MAX_CONCURRENT_CALLS),
        "attemptsPerSecond": {"type": "number", "minimum": low, "maximum": high, "default": usual},
        "retry": retry,
        "inviteExpiryDays": _integer(*INVITE_EXPIRY_DAYS),
        "voicemail": obj({
            "detect": {"type": "boolean", "default": DEFAULT_VOICEMAIL["detect"],
                       "description": "Detect answering machines (SIP: greeting length and beep; Twilio: its AMD)."},
            "action": {"type": "string", "enum": list(VOICEMAIL_ACTIONS), "default": DEFAULT_VOICEMAIL["action"]},
            "message": {"type": "string", "maxLength": MAX_VOICEMAIL_MESSAGE_CHARS, "default": "",
                        "description": "Spoken after the beep when action is leave_message (required then, "
                                       "and not only whitespace)."},
        }, anyOf=[  # leave_message needs a message to leave
            {"properties": {"action": {"enum": ["hang_up"]}}},
            {"required": ["action", "message"], "properties": {"message": {"pattern": VISIBLE}}}]),
        "resume": obj({
            "maxResumes": {**_integer(*RESUME_MAX_RESUMES), "description": "How many times a dropped interview "
                           "(retry.partial) is called again to go on where it stopped; 0: never."},
            "maxAgeS": {**_integer(*RESUME_MAX_AGE_S), "description": "Resume only interviews created at most "
                        "this many seconds ago."},
        }),
    })


_STRING = {"type": "string"}
_PROGRESS_DOC = ("The dialer's progress per candidate, from its latest call attempt: notStarted, inProgress (a "
                 "call is being placed or talked), retryPending (a retry is due later), completed, partial (reached, "
                 "the call was cut short), declined (refused consent on the call), withdrawn (asked to stop), "
                 "noResponse (silent until the inactivity timeout), callbackScheduled (asked to be called back: "
                 "the callback is the next attempt), transferred (handed to a person), failed (no retry left: "
                 "no answer, busy, voicemail, failed, or the call rejected with SIP 603), "
                 "skippedDnc (on the do-not-call list), cancelled, expired; `dialed` counts every call placed, "
                 "retries included. The same counts `phonescreen campaign status` shows.")
_BLOCKED_DOC = ("Why this server cannot place the campaign's calls (its channel is not enabled or not "
                "configured; the message names the setting), or null when it can or the campaign is over. A "
                "blocked campaign waits: no attempt is used up, and it dials once the channel is set up.")
_TIME = {"type": "string", "format": "date-time"}
_ID_INPUT = {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "pattern": VISIBLE}
_NAME_INPUT = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS, "pattern": VISIBLE}
_CANDIDATE_IDS_INPUT = {"type": "array", "maxItems": MAX_CAMPAIGN_CANDIDATES, "items": _ID_INPUT}

COMPONENTS["schemas"].update({
    "CampaignSettings": _settings_schema(filled=True),
    "CampaignSettingsInput": _settings_schema(filled=False),
    "Campaign": {"type": "object", "required": ["id", "name", "positionId", "channel", "status", "settings",
                                                "candidateIds", "createdAt", "updatedAt", "counts", "progress",
                                                "blockedReason"],
                 "properties": {
                     "id": _STRING, "name": _STRING, "positionId": _STRING,
                     "channel": {"type": "string", "enum": list(CAMPAIGN_CHANNELS)},
                     "status": {"type": "string", "enum": list(CAMPAIGN_STATUSES)},
                     "settings": ref("CampaignSettings"), "candidateIds": {"type": "array", "items": _STRING},
                     "createdAt": _TIME, "updatedAt": _TIME,
                     "counts": {"type": "object", "required": ["candidates", "interviews", "byStatus"],
                                "properties": {
                                    "candidates": {"type": "integer", "minimum": 0},
                                    "interviews": {"type": "integer", "minimum": 0},
                                    "byStatus": {"type": "object", "required": STATUSES,
                                                 "properties": {s: {"type": "integer", "minimum": 0}
                                                                for s in STATUSES},
                                                 "description": "Interviews per status; keys are status values."},
                                }},
                     "progress": {"type": "object", "required": [camel(k) for k in PROGRESS_KEYS],
                                  "properties": {camel(k): {"type": "integer", "minimum": 0} for k in PROGRESS_KEYS},
                                  "description": _PROGRESS_DOC},
                     "blockedReason": {"type": "string", "nullable": True, "description": _BLOCKED_DOC},
                 }},
    "CampaignCreate": {"type": "object", "additionalProperties": False,
                       "required": ["name", "positionId", "channel"],
                       "properties": {"name": _NAME_INPUT, "positionId": _ID_INPUT,
                                      "channel": {"type": "string", "enum": list(CAMPAIGN_CHANNELS)},
                                      "settings": ref("CampaignSettingsInput"),
                                      "candidateIds": _CANDIDATE_IDS_INPUT}},
    "CampaignUpdate": {"type": "object", "additionalProperties": False,
                       "description": "Only while the campaign is a draft. Settings are merged into the current ones.",
                       "properties": {"name": _NAME_INPUT, "settings": ref("CampaignSettingsInput"),
                                      "candidateIds": _CANDIDATE_IDS_INPUT}},
})

_WINDOW_RULE = "422: settings.window.end is not later than window.start."

ROUTES: list[Route] = [
    Route("GET", BASE, list_campaigns, "campaigns:read", {
        "summary": "List campaigns, newest first", "operationId": "listCampaigns",
        "parameters": [*PAGE_PARAMETERS, {"name": "positionId", "in": "query", "schema": _STRING}],
        "responses": {"200": json_ok(page_of("Campaign"))}}),
    Route("POST", BASE, create_campaign, "campaigns:write", {
        "summary": "Create a draft campaign", "operationId": "createCampaign",
        "description": "404: the position or a candidate does not exist (the message names it). "
                       "409: the position is archived. " + _WINDOW_RULE,
        "requestBody": json_body(ref("CampaignCreate")),
        "responses": {"201": json_ok(ref("Campaign"), "Created"), "404": ERROR_REF, "409": ERROR_REF,
                      "422": ERROR_REF}}),
    Route("GET", f"{BASE}/{{id}}", get_campaign, "campaigns:read", {
        "summary": "A campaign with its settings, candidates and interview counts", "operationId": "getCampaign",
        "parameters": [path_id()], "responses": {"200": json_ok(ref("Campaign")), "404": ERROR_REF}}),
    Route("PATCH", f"{BASE}/{{id}}", update_campaign, "campaigns:write", {
        "summary": "Edit a draft campaign's name, settings or candidates", "operationId": "updateCampaign",
        "description": "409 when the campaign is not a draft; 404 for an unknown campaign or candidate. "
                       + _WINDOW_RULE,
        "parameters": [path_id()], "requestBody": json_body(ref("CampaignUpdate")),
        "responses": {"200": json_ok(ref("Campaign")), "404": ERROR_REF, "409": ERROR_REF, "422": ERROR_REF}}),
    Route("GET", f"{BASE}/{{id}}/results.csv", campaign_results, "interviews:read", {
        "summary": "The campaign's results as CSV for ATS import", "operationId": "getCampaignResultsCsv",
        "parameters": [path_id()],
        "description": "One row per interview of the campaign (its latest scorecard) and one per campaign "
                       "candidate not interviewed yet (interview_status not_scheduled), in candidate order. "
                       "Columns: candidate and interview ids, status, overall, rubric version, grader, "
                       "score_<factor key> per factor of the position, CEFR estimate and speaking rate.",
        "responses": {"200": {"description": "CSV, with a header row",
                              "content": {"text/csv": {"schema": {"type": "string"}}}},
                      "404": ERROR_REF}}),
    *(Route("POST", f"{BASE}/{{id}}/{action}", _action(action), "campaigns:write", {
        "summary": summary, "operationId": f"{action}Campaign", "parameters": [path_id()],
        "description": "409 when the campaign's status does not allow it (the message says which it is).",
        "responses": {"200": json_ok(ref("Campaign")), "404": ERROR_REF, "409": ERROR_REF}})
      for action, summary in (
          ("start", "Start a draft campaign: every candidate's first call becomes due (within their window)"),
          ("pause", "Pause a running campaign: no new calls; calls in progress finish"),
          ("resume", "Resume a paused campaign"),
          ("cancel", "Cancel a campaign: calls not placed yet are dropped; calls in progress are hung up"))),
    Route("DELETE", f"{BASE}/{{id}}", delete_campaign, "campaigns:write", {
        "summary": "Delete a draft campaign that has no interviews", "operationId": "deleteCampaign",
        "parameters": [path_id()],
        "responses": {"204": {"description": "Deleted"}, "404": ERROR_REF, "409": ERROR_REF}}),
]
