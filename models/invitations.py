"""The store's half of invitations and shared campaign links. A mixin of SessionStore (the only writer of
records), like campaign_dialing.py.

An invitation is a job: `queued` (due at `next_attempt_at`) -> `sending` (claimed by one sender until
`claimed_until`) -> `sent`, then `delivered` when the provider says so; or `failed` / `bounced` with the
reason. A transient failure goes back to `queued` for a later attempt, a bounded number of times.

The join link an invitation carries has its own token, made when the job is claimed; only its hash is
stored (`token_hash`), so no link sits in the store in clear. Each attempt makes a new one (the earlier
attempt's message never left). A sender that dies mid-send leaves its claim to expire; the next claim
marks it `failed` ("interrupted") rather than sending again, since it may have gone: never twice, and
never silently lost (it shows as failed, and a new invitation can be sent).
"""
from __future__ import annotations

import dataclasses
import secrets
from datetime import datetime, timedelta
from typing import Any

from models.db import fmt_time, immediate, new_id, token_hash
from models.errors import Conflict, NotFound
from models.lifecycle import Status
from models.records import Candidate, Interview, Invitation

INVITATION_CHANNELS = ("email", "sms")
OPEN_STATES = ("queued", "sending")
FINAL_STATES = ("delivered", "failed", "bounced")
INTERRUPTED = "interrupted while sending; not sent again in case it already left (send a new invitation)"
# What a provider's delivery report may move an invitation to, from where (never backwards).
_REPORT_FROM = {"sent": ("sending",), "delivered": ("sending", "sent"), "failed": ("sending", "sent"),
                "bounced": ("sending", "sent")}


@dataclasses.dataclass(frozen=True)
class ClaimedInvitation:
    """An invitation a sender now owns, with what it needs to write the message."""
    invitation: Invitation
    token: str  # the join link's token, in clear only here, in the sender's memory
    interview: Interview
    candidate: Candidate


@dataclasses.dataclass(frozen=True)
class Applicant:
    """A visitor of a campaign's shared link, made a candidate with a web interview."""
    candidate_id: str
    interview_id: str
    token: str  # the interview's join token (the page goes on to /join#token)


class Invitations:
    # -- queueing ------------------------------------------------------------------------------
    def queue_invitation(self, interview_id: str, channel: str) -> Invitation:
        """Queue a message with the interview's join link. The interview must be a scheduled web interview
        and the candidate must have an address for the channel (Conflict otherwise). An invitation
        already waiting to be sent on that channel is returned instead of a second one."""
        if channel not in INVITATION_CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(INVITATION_CHANNELS)}")
        with immediate(self.db):
            interview = self.get_interview(interview_id)
            if interview.channel != "web":
                raise Conflict(f"only a web interview is joined from a link; this one is {interview.channel}")
            if interview.status != Status.SCHEDULED or interview.expires_at <= self.now():
                raise Conflict(f"the interview is {interview.status}"
                               + (" and past its expiry" if interview.status == Status.SCHEDULED else "")
                               + "; only a scheduled interview can be sent")
            candidate = self.get_candidate(interview.candidate_id)
            if channel == "email" and not candidate.email:
                raise Conflict(f"candidate {candidate.id!r} has no e-mail address")
            if channel == "sms" and not candidate.phone:
                raise Conflict(f"candidate {candidate.id!r} has no phone number")
            waiting = self._one("SELECT * FROM invitations WHERE interview_id = ? AND channel = ? AND status IN "
                                "('queued', 'sending')", [interview_id, channel])
            if waiting:
                return _invitation(waiting)
            now, vid = self.now(), new_id("inv")
            self.db["invitations"].insert({"id": vid, "interview_id": interview_id, "candidate_id": candidate.id,
                                           "channel": channel, "status": "queued", "attempts": 0,
                                           "next_attempt_at": now, "created_at": now, "updated_at": now})
            self._emit("invitation.queued", interview_id, {"invitationId": vid, "channel": channel})
        return self.get_invitation(vid)

    def queue_campaign_invitations(self, campaign_id: str, channel: str,
                                   expires_at: datetime) -> tuple[list[Invitation], list[tuple[str, str]]]:
        """An invitation for every candidate of the campaign, for their scheduled web interview in it (one
        is made, expiring at `expires_at`, for those without). Returns the queued invitations and, for
        candidates who cannot be invited (no address, say), (candidate id, why)."""
        campaign = self.get_campaign(campaign_id)
        if campaign.status in ("cancelled", "completed"):
            raise Conflict(f"the campaign is {campaign.status}")
        queued, refused = [], []
        for candidate_id in campaign.candidate_ids:
            try:
                with immediate(self.db):
                    row = self._one("SELECT id FROM interviews WHERE campaign_id = ? AND candidate_id = ? AND "
                                    "channel = 'web' AND status = 'scheduled' AND expires_at > ? "
                                    "ORDER BY created_at DESC LIMIT 1", [campaign_id, candidate_id, self.now()])
                    if row is None:
                        candidate = self.get_candidate(candidate_id)
                        if not (candidate.email if channel == "email" else candidate.phone):
                            raise Conflict(f"candidate {candidate_id!r} has no "
                                           + ("e-mail address" if channel == "email" else "phone number"))
                        interview, _ = self.create_interview(candidate_id=candidate_id,
                                                             position_id=campaign.position_id, channel="web",
                                                             expires_at=expires_at, campaign_id=campaign_id)
                        interview_id = interview.id
                    else:
                        interview_id = row["id"]
                    queued.append(self.queue_invitation(interview_id, channel))
            except (NotFound, Conflict) as exc:
                refused.append((candidate_id, str(exc)))
        return queued, refused

    def get_invitation(self, vid: str) -> Invitation:
        row = self._one("SELECT * FROM invitations WHERE id = ?", [vid])
        if row is None:
            raise NotFound("invitation", vid)
        return _invitation(row)

    def invitations_of(self, interview_id: str) -> list[Invitation]:
        return [_invitation(r) for r in self.db.query(
            "SELECT * FROM invitations WHERE interview_id = ? ORDER BY created_at, id", [interview_id])]

    def latest_invitations(self, interview_ids: list[str]) -> dict[str, Invitation]:
        """Interview id -> its newest invitation (for lists and exports)."""
        latest: dict[str, Invitation] = {}
        for chunk in (interview_ids[i:i + 500] for i in range(0, len(interview_ids), 500)):
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(f"SELECT * FROM invitations WHERE interview_id IN ({marks}) "
                                     "ORDER BY created_at, id", chunk):
                latest[row["interview_id"]] = _invitation(row)
        return latest

    # -- the sender's side ---------------------------------------------------------------------
    def claim_invitations(self, limit: int, lease_s: float) -> list[ClaimedInvitation]:
        """Take up to `limit` due invitations for sending, each with a fresh join token. Expired claims
        (a sender that died) are marked failed first; an interview no longer open fails its invitation."""
        claimed: list[ClaimedInvitation] = []
        with immediate(self.db):
            now = self.now()
            self.db.execute("UPDATE invitations SET status = 'failed', reason = ?, claimed_until = NULL, "
                            "updated_at = ? WHERE status = 'sending' AND claimed_until <= ?", [INTERRUPTED, now, now])
            rows = list(self.db.query("SELECT * FROM invitations WHERE status = 'queued' AND next_attempt_at <= ? "
                                      "ORDER BY next_attempt_at, id LIMIT ?", [now, limit]))
            until = fmt_time(self.clock() + timedelta(seconds=lease_s))
            for row in rows:
                interview = self.get_interview(row["interview_id"])
                if interview.status != Status.SCHEDULED or interview.expires_at <= now:
                    self.db["invitations"].update(row["id"], {
                        "status": "failed", "updated_at": now, "next_attempt_at": None,
                        "reason": f"the interview is {interview.status}"
                                  + (" (expired)" if interview.status == Status.SCHEDULED else "")})
                    continue
                token = secrets.token_urlsafe(32)
                self.db["invitations"].update(row["id"], {
                    "status": "sending", "attempts": row["attempts"] + 1, "claimed_until": until,
                    "token_hash": token_hash(token), "next_attempt_at": None, "updated_at": now})
                claimed.append(ClaimedInvitation(self.get_invitation(row["id"]), token, interview,
                                                 self.get_candidate(row["candidate_id"])))
        return claimed

    def finish_invitation_attempt(self, vid: str, *, ok: bool, provider_id: str | None = None,
                                  reason: str | None = None, retry_at: datetime | None = None,
                                  bounced: bool = False) -> Invitation:
        """The outcome of one send. ok: `sent`. Otherwise queued again at `retry_at`, or, with none,
        `bounced` (the address was refused) or `failed`. Ignored unless this sender still holds the claim
        (a delivery report that came first has already moved it on; its provider id is still recorded)."""
        with immediate(self.db):
            current = self.get_invitation(vid)
            now = self.now()
            changes: dict[str, Any] = {"updated_at": now, "claimed_until": None}
            if provider_id and not current.provider_id:
                changes["provider_id"] = provider_id
            if current.status == "sending":
                if ok:
                    changes.update(status="sent", sent_at=now, reason=None)
                elif retry_at is not None:
                    changes.update(status="queued", next_attempt_at=fmt_time(retry_at), reason=reason)
                else:
                    changes.update(status="bounced" if bounced else "failed", reason=reason)
            self.db["invitations"].update(vid, changes)
            if current.status == "sending":
                self._emit("invitation." + changes["status"], current.interview_id,
                           {"invitationId": vid, "channel": current.channel,
                            **({"reason": reason} if reason and not ok else {})})
        return self.get_invitation(vid)

    def report_invitation_delivery(self, vid: str, provider_id: str, status: str,
                                   reason: str | None = None) -> Invitation | None:
        """A provider's delivery report (Twilio's message status callback): moves the invitation forward
        only (sent -> delivered | failed | bounced). None if it is unknown or the provider id is another's."""
        if status not in _REPORT_FROM:
            raise ValueError(f"unknown delivery status {status!r}")
        with immediate(self.db):
            row = self._one("SELECT * FROM invitations WHERE id = ?", [vid])
            if row is None or (row["provider_id"] and row["provider_id"] != provider_id):
                return None
            if row["status"] in _REPORT_FROM[status]:
                now = self.now()
                changes: dict[str, Any] = {"status": status, "provider_id": provider_id, "updated_at": now}
                if status in ("failed", "bounced"):
                    changes["reason"] = reason
                if row["sent_at"] is None and status in ("sent", "delivered"):
                    changes["sent_at"] = now
                if row["status"] == "sending" and status == "sent":
                    changes["claimed_until"] = None
                self.db["invitations"].update(vid, changes)
                self._emit("invitation." + status, row["interview_id"],
                           {"invitationId": vid, "channel": row["channel"], **({"reason": reason} if reason else {})})
        return self.get_invitation(vid)

    def interview_by_invitation_token(self, token: str) -> Interview | None:
        row = self._one("SELECT interview_id FROM invitations WHERE token_hash = ?", [token_hash(token)])
        return self.get_interview(row["interview_id"]) if row else None

    # -- a campaign's shared link --------------------------------------------------------------
    def open_campaign_link(self, campaign_id: str) -> str:
        """A new shared link token for the campaign (any earlier one stops working); only its hash is kept."""
        token = secrets.token_urlsafe(32)
        with immediate(self.db):
            self.get_campaign(campaign_id)
            self.db["campaign_links"].upsert({"campaign_id": campaign_id, "token_hash": token_hash(token),
                                              "created_at": self.now()}, pk="campaign_id")
        return token

    def close_campaign_link(self, campaign_id: str) -> None:
        with immediate(self.db):
            self.get_campaign(campaign_id)
            self.db.execute("DELETE FROM campaign_links WHERE campaign_id = ?", [campaign_id])

    def campaign_link_opened_at(self, campaign_id: str) -> str | None:
        row = self._one("SELECT created_at FROM campaign_links WHERE campaign_id = ?", [campaign_id])
        return row["created_at"] if row else None

    def campaign_by_link(self, token: str) -> str | None:
        """The campaign id a shared link token opens, if it is open and usable (the campaign neither cancelled
        nor completed, its position not archived)."""
        row = self._one("SELECT l.campaign_id, c.status, p.archived_at FROM campaign_links l JOIN campaigns c ON "
                        "c.id = l.campaign_id JOIN positions p ON p.id = c.position_id WHERE l.token_hash = ?",
                        [token_hash(token)])
        if row is None or row["status"] in ("cancelled", "completed") or row["archived_at"]:
            return None
        return row["campaign_id"]

    def apply_through_link(self, campaign_id: str, *, name: str, phone: str, expires_at: datetime) -> Applicant:
        """A visitor of the shared link: the candidate with that phone (a new one if none) and a new web
        interview for the campaign's position, in the campaign. Conflict if that phone already has an
        interview in this campaign (one interview per person and campaign)."""
        with immediate(self.db):
            campaign = self.get_campaign(campaign_id)
            if self._one("SELECT 1 FROM interviews i JOIN candidates c ON c.id = i.candidate_id "
                         "WHERE i.campaign_id = ? AND c.phone = ?", [campaign_id, phone]):
                raise Conflict("this phone number has already applied to this campaign")
            row = self._one("SELECT id FROM candidates WHERE phone = ? ORDER BY created_at LIMIT 1", [phone])
            candidate_id = row["id"] if row else self.create_candidate({"name": name, "phone": phone}).id
            interview, token = self.create_interview(candidate_id=candidate_id, position_id=campaign.position_id,
                                                     channel="web", expires_at=expires_at, campaign_id=campaign_id)
            self._emit("interview.applied", interview.id, {"via": "campaign_link"})
        return Applicant(candidate_id, interview.id, token)


def _invitation(row: dict) -> Invitation:
    return Invitation(row["id"], row["interview_id"], row["candidate_id"], row["channel"], row["status"],
                      row["reason"], row["attempts"], row["next_attempt_at"], row["provider_id"], row["created_at"],
                      row["updated_at"], row["sent_at"])
