"""Sending invitations, off the request: the job of `phonescreen serve` that claims due invitations in the
store (models/invitations.py), writes each message with the candidate's own join link, sends it (SMTP, or
SMS through Twilio) and records what happened. A transient failure is tried again after a backoff, up to
`invitations.max_attempts` sends; a refused address is a bounce and is not retried.

Logs name the invitation and interview ids and a masked address; never a full address, number or link."""
from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta, timezone

from config.settings import InvitationSettings, Settings
from dialer.twilio.calls import TwilioCallError
from dialer.twilio.messages import UNREACHABLE_CODES, message_status_url, send_sms
from models.db import parse_time
from models.invitations import ClaimedInvitation
from models.records import Invitation
from models.store import SessionStore
from config.logging_setup import mask_email, mask_phone
from server.mailer import SendResult, send_email

log = logging.getLogger("phonescreen.invitations")

BATCH_SIZE = 20
LEASE_S = 300.0  # longer than any one send may take (SMTP timeout, Twilio's REST timeout)
JITTER = 0.1


def join_link(settings: Settings, token: str) -> str:
    return f"{settings.public_url}/join#{token}"


def message_fields(store: SessionStore, claimed: ClaimedInvitation, link: str) -> dict[str, str]:
    """The placeholders of the invitation templates (config.settings.INVITATION_FIELDS)."""
    interview = claimed.interview
    template = store.get_position(interview.position_id, interview.position_version).template
    expires = parse_time(interview.expires_at).astimezone(timezone.utc)
    return {"candidate_name": claimed.candidate.name.split()[0] if claimed.candidate.name.split() else "",
            "position": template.title, "company": template.company or "our team", "link": link,
            "expires": expires.strftime("%d %B %Y")}


def channel_problem(settings: Settings, channel: str) -> str | None:
    """Why invitations on this channel cannot be sent from this server, or None."""
    if channel == "email" and not (settings.email.host and settings.email.sender):
        return "e-mail is not configured on this server (email.host and email.sender)"
    if channel == "sms" and not (settings.twilio.enabled and settings.twilio.from_number):
        return "SMS needs the Twilio channel (twilio.enabled, account and from_number)"
    return None


def retry_delay(attempts: int, settings: InvitationSettings) -> float:
    """Seconds to wait after the `attempts`-th failed send (before jitter)."""
    return settings.backoff_base_s * 2 ** (attempts - 1)


class InvitationSender:
    def __init__(self, settings: Settings, store: SessionStore) -> None:
        self.settings, self.store = settings, store

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a locked database or a bug must not stop invitations for good
                log.exception("sending invitations failed; retrying")
            await asyncio.sleep(self.settings.invitations.poll_interval_s)

    async def run_once(self) -> int:
        """Send every invitation that is due; returns how many sends were attempted."""
        sent = 0
        while claimed := self.store.claim_invitations(BATCH_SIZE, LEASE_S):
            await asyncio.gather(*(self._send(item) for item in claimed))
            sent += len(claimed)
            if len(claimed) < BATCH_SIZE:  # all that was due; a retry due meanwhile waits for the next run
                break
        return sent

    async def _send(self, claimed: ClaimedInvitation) -> None:
        invitation = claimed.invitation
        fields = message_fields(self.store, claimed, join_link(self.settings, claimed.token))
        problem = channel_problem(self.settings, invitation.channel)
        if problem is not None:
            result = SendResult(False, reason=problem, retry=True)
        elif invitation.channel == "email":
            text = self.settings.invitations
            result = await send_email(self.settings.email, claimed.candidate.email or "",
                                      text.email_subject.format(**fields), text.email_body.format(**fields))
        else:
            result = await self._send_sms(claimed, self.settings.invitations.sms_body.format(**fields))
        self._record(invitation, claimed, result)

    async def _send_sms(self, claimed: ClaimedInvitation, body: str) -> SendResult:
        try:
            sid = await send_sms(self.settings.twilio, to=claimed.candidate.phone or "", body=body,
                                 status_callback=message_status_url(self.settings, claimed.invitation.id))
        except TwilioCallError as exc:
            unreachable = exc.code in UNREACHABLE_CODES
            transient = exc.code == "unreachable" or (exc.http_status or 0) >= 500 or exc.http_status == 429
            return SendResult(False, reason=f"{exc} ({exc.code})", bounced=unreachable,
                              retry=transient and not unreachable)
        return SendResult(True, sid)

    def _record(self, invitation: Invitation, claimed: ClaimedInvitation, result: SendResult) -> None:
        attempts = invitation.attempts
        retry_at: datetime | None = None
        if not result.ok and result.retry and attempts < self.settings.invitations.max_attempts:
            delay = retry_delay(attempts, self.settings.invitations) * random.uniform(1 - JITTER, 1 + JITTER)
            retry_at = self.store.clock() + timedelta(seconds=delay)
        done = self.store.finish_invitation_attempt(invitation.id, ok=result.ok, provider_id=result.provider_id,
                                                    reason=result.reason, retry_at=retry_at, bounced=result.bounced)
        to = (mask_email(claimed.candidate.email) if invitation.channel == "email"
              else mask_phone(claimed.candidate.phone))
        extra = {"interview_id": invitation.interview_id}
        if result.ok:
            log.info("invitation %s sent by %s to %s", invitation.id, invitation.channel, to, extra=extra)
        else:
            log.warning("invitation %s by %s to %s: %s (attempt %d/%d, now %s)", invitation.id, invitation.channel,
                        to, result.reason, attempts, self.settings.invitations.max_attempts, done.status,
                        extra=extra)
