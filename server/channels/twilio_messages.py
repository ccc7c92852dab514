"""POST /twilio/message-status: Twilio's status callbacks for invitation SMS, signed like the call callbacks
(X-Twilio-Signature). Each moves the invitation's delivery state forward only: sent, delivered,
undelivered (a bounce, with Twilio's error code) or failed; queued, accepted and sending change nothing."""
from __future__ import annotations

import logging

from aiohttp import web

from dialer.twilio.messages import INVITATION_PARAM, MESSAGE_STATUS_PATH
from server.http import STORE, ApiError
from server.channels.twilio_endpoints import require_enabled, signed_form

log = logging.getLogger("phonescreen.twilio")
# Twilio's MessageStatus -> the invitation's delivery state (None: not a change we record).
DELIVERY = {"accepted": None, "queued": None, "sending": None, "scheduled": None, "sent": "sent",
            "delivered": "delivered", "undelivered": "bounced", "failed": "failed", "canceled": "failed",
            "read": "delivered", "receiving": None, "received": None}


async def message_status(request: web.Request) -> web.Response:
    settings = require_enabled(request)
    form = await signed_form(request, settings, "message status callback")
    invitation_id = request.query.get(INVITATION_PARAM, "")
    sid, status = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if not invitation_id or not isinstance(sid, str) or not sid or status not in DELIVERY:
        raise ApiError(400, "bad_request", "a message status callback needs invitationId, MessageSid and a known "
                                           "MessageStatus")
    if form.get("AccountSid") != settings.twilio.account_sid:
        raise ApiError(403, "forbidden", "the callback is for another account")
    state = DELIVERY[str(status)]
    if state is None:
        return web.Response(status=204)
    code = form.get("ErrorCode", "")
    reason = f"Twilio {status}" + (f" (error {code})" if code else "") if state in ("bounced", "failed") else None
    invitation = request.app[STORE].report_invitation_delivery(invitation_id, sid, state, reason)
    if invitation is None:
        log.warning("message status callback for an unknown invitation or another message; ignored")
    else:
        log.info("invitation %s: twilio says %s (now %s)", invitation_id, status, invitation.status,
                 extra={"interview_id": invitation.interview_id})
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post(MESSAGE_STATUS_PATH, message_status)
