"""A campaign's shared link, `/apply#TOKEN`: a visitor gives their name and phone, becomes a candidate with a
web interview in the campaign, and goes on to that interview's `/join` page. Like the join link, the token
sits in the URL fragment (no server or proxy log sees it); the page sends it in the POST body.

POST /apply {"token", "name", "phone"} -> 201 {"joinToken"} | 404 (link unknown or closed) | 409 (this phone
already has an interview in the campaign) | 400/422 (a bad name or phone), each with a message to show."""
from __future__ import annotations

import logging

from aiohttp import web

from models.store import Conflict, default_expiry
from config.logging_setup import mask_phone
from models.validation import ValidationError, check_text, normalize_phone
from server.http import ApiError, json_response, read_json, reject_unknown, settings_of, store_of
from server.channels.web_channel import MAX_TOKEN_CHARS, static_page

log = logging.getLogger("phonescreen.web")
MAX_NAME_CHARS = 200


async def apply_page(request: web.Request) -> web.StreamResponse:
    return static_page("apply.html")


async def apply(request: web.Request) -> web.Response:
    body = await read_json(request)
    reject_unknown(body, {"token", "name", "phone"})
    token = body.get("token")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise ApiError(404, "invalid_link", "This link is not valid. Check that you opened the whole link.")
    name = check_text(body.get("name"), "name", max_len=MAX_NAME_CHARS)
    try:
        phone = normalize_phone(body.get("phone"))
    except ValidationError:
        raise ValidationError("Enter your phone number with its country code, e.g. +1 415 555 0123.",
                              "phone") from None
    store, settings = store_of(request), settings_of(request)
    campaign_id = store.campaign_by_link(token)
    if campaign_id is None:
        raise ApiError(404, "invalid_link", "This link is not valid or no longer open. Please contact the recruiter.")
    try:
        applicant = store.apply_through_link(campaign_id, name=name or "", phone=phone,
                                             expires_at=default_expiry(store.clock,
                                                                       settings.interviews.invite_expiry_days))
    except Conflict:
        raise ApiError(409, "duplicate", "You have already applied with this phone number. Each person can take "
                                         "this interview once; use the link you got then, or contact the "
                                         "recruiter.", "phone") from None
    log.info("a visitor applied through campaign %s's link (%s)", campaign_id, mask_phone(phone),
             extra={"interview_id": applicant.interview_id})
    return json_response({"join_token": applicant.token}, status=201)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/apply", apply_page)
    app.router.add_post("/apply", apply)
