"""Invitations in the API: send a candidate their join link by e-mail or SMS (for one interview, a selection
of interviews, or every candidate of a campaign), read each invitation's delivery state, and open or close a
campaign's shared link. Sending happens off the request (server/invitations.py): these endpoints queue."""
from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from models.invitations import INVITATION_CHANNELS
from models.records import Invitation
from models.store import Conflict, NotFound, SessionStore, default_expiry
from models.validation import ValidationError
from server.api.interviews import MAX_ID_CHARS, check_id
from server.http import ApiError, Route, json_response, read_json, reject_unknown, settings_of, store_of
from server.invitations import channel_problem
from server.api.schemas import COMPONENTS, ERROR_REF, VISIBLE, json_body, json_ok, path_id, ref

MAX_SELECTION = 100
INVITATION_STATES = ["queued", "sending", "sent", "delivered", "failed", "bounced"]
APPLY_PATH = "/apply"


def invitation_json(invitation: Invitation) -> dict[str, Any]:
    return dataclasses.asdict(invitation)


def _channel(body: dict[str, Any], request: web.Request) -> str:
    channel = body.get("channel")
    if not isinstance(channel, str) or channel not in INVITATION_CHANNELS:
        raise ValidationError(f"must be one of {', '.join(INVITATION_CHANNELS)}", "channel")
    if (problem := channel_problem(settings_of(request), channel)) is not None:
        raise ApiError(409, "not_configured", problem, "channel")
    return channel


def _queue_all(store: SessionStore, interview_ids: list[str], channel: str) -> dict[str, Any]:
    """Queue one invitation per interview; what cannot be sent is listed with why, the rest still goes."""
    queued, refused = [], []
    for interview_id in dict.fromkeys(interview_ids):
        try:
            queued.append(invitation_json(store.queue_invitation(interview_id, channel)))
        except (NotFound, Conflict) as exc:
            refused.append({"interview_id": interview_id, "candidate_id": None, "message": str(exc)})
    return {"queued": queued, "refused": refused}


# -- handlers --------------------------------------------------------------------------------------
async def invite_interview(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"channel"})
    channel = _channel(body, request)
    invitation = store_of(request).queue_invitation(request.match_info["id"], channel)  # 404, 409
    return json_response(invitation_json(invitation), status=202)


async def list_interview_invitations(request: web.Request) -> web.Response:
    store = store_of(request)
    interview = store.get_interview(request.match_info["id"])
    return json_response({"items": [invitation_json(i) for i in store.invitations_of(interview.id)]})


async def invite_selection(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"channel", "interview_ids"})
    ids = body.get("interview_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_SELECTION:
        raise ValidationError(f"must be a list of 1 to {MAX_SELECTION} interview ids", "interviewIds")
    checked = [check_id(value, f"interviewIds[{n}]") for n, value in enumerate(ids)]
    channel = _channel(body, request)
    return json_response(_queue_all(store_of(request), [i for i in checked if i], channel), status=202)


async def invite_campaign(request: web.Request) -> web.Response:
    """Every candidate of the campaign: their scheduled web interview in the campaign, or a new one."""
    body = await read_json(request)
    reject_unknown(body, {"channel"})
    channel = _channel(body, request)
    store, settings = store_of(request), settings_of(request)
    queued, refused = store.queue_campaign_invitations(  # 404, 409 (cancelled or completed)
        request.match_info["id"], channel, default_expiry(store.clock, settings.interviews.invite_expiry_days))
    return json_response({"queued": [invitation_json(i) for i in queued],
                          "refused": [{"interview_id": None, "candidate_id": candidate_id, "message": message}
                                      for candidate_id, message in refused]}, status=202)


async def open_link(request: web.Request) -> web.Response:
    store = store_of(request)
    campaign = store.get_campaign(request.match_info["id"])
    if campaign.status in ("cancelled", "completed"):
        raise ApiError(409, "conflict", f"the campaign is {campaign.status}")
    token = store.open_campaign_link(campaign.id)
    return json_response({"campaign_id": campaign.id,
                          "apply_url": f"{settings_of(request).public_url}{APPLY_PATH}#{token}",
                          "opened_at": store.campaign_link_opened_at(campaign.id)}, status=201)


async def close_link(request: web.Request) -> web.Response:
    store_of(request).close_campaign_link(request.match_info["id"])
    return web.Response(status=204)


# -- OpenAPI ---------------------------------------------------------------------------------------
_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}
_TIME = {"type": "string", "format": "date-time"}
_CHANNEL_INPUT = {"type": "string", "enum": list(INVITATION_CHANNELS)}
INVITATION_PROPERTIES = {
    "id": _STRING, "interviewId": _STRING, "candidateId": _STRING, "channel": _CHANNEL_INPUT,
    "status": {"type": "string", "enum": INVITATION_STATES,
               "description": "queued (waiting, or waiting to be tried again), sending, sent (the mail server or "
                              "Twilio took it), delivered (Twilio's report), failed, bounced (the address or "
                              "number was refused)."},
    "reason": {**_NULLABLE_STRING, "description": "Why it failed, bounced or waits for another attempt."},
    "attempts": {"type": "integer", "minimum": 0}, "nextAttemptAt": _NULLABLE_TIME,
    "providerId": {**_NULLABLE_STRING, "description": "The e-mail's Message-ID, or Twilio's message SID."},
    "createdAt": _TIME, "updatedAt": _TIME, "sentAt": _NULLABLE_TIME,
}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


COMPONENTS["schemas"].update({
    "Invitation": _object(INVITATION_PROPERTIES),
    "InvitationCreate": {"type": "object", "additionalProperties": False, "required": ["channel"],
                         "properties": {"channel": _CHANNEL_INPUT}},
    "InvitationSelection": {
        "type": "object", "additionalProperties": False, "required": ["channel", "interviewIds"],
        "properties": {"channel": _CHANNEL_INPUT,
                       "interviewIds": {"type": "array", "minItems": 1, "maxItems": MAX_SELECTION,
                                        "items": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS,
                                                  "pattern": VISIBLE}}}},
    "InvitationBatch": _object({
        "queued": {"type": "array", "items": ref("Invitation")},
        "refused": {"type": "array", "items": _object({"interviewId": _NULLABLE_STRING,
                                                       "candidateId": _NULLABLE_STRING, "message": _STRING})}}),
    "InvitationList": _object({"items": {"type": "array", "items": ref("Invitation")}}),
    "CampaignLink": _object({"campaignId": _STRING,
                             "applyUrl": {**_STRING, "description": "Share this; shown once."},
                             "openedAt": _TIME}),
})

_SEND_NOTE = ("Queued and sent in the background; the invitation's status follows delivery. 409 "
              "`not_configured`: the channel is not set up on this server (email.host and email.sender; SMS: "
              "the Twilio channel).")
ROUTES: list[Route] = [
    Route("POST", "/api/v1/interviews/{id}/invitations", invite_interview, "invitations:write", {
        "summary": "Send the candidate their join link by e-mail or SMS", "operationId": "inviteInterview",
        "parameters": [path_id()], "requestBody": json_body(ref("InvitationCreate")),
        "description": _SEND_NOTE + " 409: the interview is not a scheduled web interview, or the candidate has "
                       "no e-mail address / phone number. An invitation still waiting on that channel is returned "
                       "instead of a second one.",
        "responses": {"202": json_ok(ref("Invitation"), "Queued"), "404": ERROR_REF, "409": ERROR_REF}}),
    Route("GET", "/api/v1/interviews/{id}/invitations", list_interview_invitations, "interviews:read", {
        "summary": "The interview's invitations with their delivery state, oldest first",
        "operationId": "listInterviewInvitations", "parameters": [path_id()],
        "responses": {"200": json_ok(ref("InvitationList")), "404": ERROR_REF}}),
    Route("POST", "/api/v1/invitations", invite_selection, "invitations:write", {
        "summary": "Send join links to a selection of interviews", "operationId": "inviteSelection",
        "requestBody": json_body(ref("InvitationSelection")),
        "description": _SEND_NOTE + " Interviews that cannot be invited (unknown, not a scheduled web interview, "
                       "no address) are listed under `refused` with the reason; the others are queued.",
        "responses": {"202": json_ok(ref("InvitationBatch"), "Queued"), "409": ERROR_REF}}),
    Route("POST", "/api/v1/campaigns/{id}/invitations", invite_campaign, "invitations:write", {
        "summary": "Send every candidate of a campaign a web interview link", "operationId": "inviteCampaign",
        "parameters": [path_id()], "requestBody": json_body(ref("InvitationCreate")),
        "description": _SEND_NOTE + " Each candidate's scheduled web interview in the campaign is used, or one is "
                       "made (the campaign's position, the default expiry). Candidates without an address are "
                       "listed under `refused`. 409: the campaign is cancelled or completed.",
        "responses": {"202": json_ok(ref("InvitationBatch"), "Queued"), "404": ERROR_REF, "409": ERROR_REF}}),
    Route("POST", "/api/v1/campaigns/{id}/link", open_link, "campaigns:write", {
        "summary": "Open the campaign's shared link (a new one: any earlier link stops working)",
        "operationId": "openCampaignLink", "parameters": [path_id()],
        "description": "Visitors of the link give their name and phone; each gets a candidate record and a web "
                       "interview in the campaign, then the interview starts in the browser. A phone that already "
                       "has an interview in the campaign is refused. 409: the campaign is cancelled or completed.",
        "responses": {"201": json_ok(ref("CampaignLink"), "Opened"), "404": ERROR_REF, "409": ERROR_REF}}),
    Route("DELETE", "/api/v1/campaigns/{id}/link", close_link, "campaigns:write", {
        "summary": "Close the campaign's shared link", "operationId": "closeCampaignLink",
        "parameters": [path_id()],
        "responses": {"204": {"description": "Closed"}, "404": ERROR_REF}}),
]
