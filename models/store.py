"""The session store: the one place records are written. Every process (server, media workers, scorers,
dialers) opens its own SessionStore on the same SQLite file, or the same PostgreSQL database (several
machines)."""
from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import secrets
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

from config.templates import InterviewTemplate, parse_template
from models.campaign_dialing import CampaignDialing
from models.db import (Clock, database_errors, dumps, fmt_time, immediate, integrity_errors, is_postgres, new_id,
                       open_database, savepoint, token_hash, utcnow)
from models.inbound_calls import InboundCalls
from models.invitations import Invitations
from models.recruiter_calls import RecruiterCalls
from models.lifecycle import ACTIVE, ENDED, IllegalTransition, Status, check_transition
from models.records import (TURN_ROLES, ApiKey, Campaign, Candidate, Event, Interview, Position, Scorecard, Turn,
                            TurnEvaluation,
                            WebhookDelivery, WebhookEndpoint)
from models.errors import Conflict, NotFound  # noqa: F401  (raised here; callers import them from the store)
from models.schema import migrate

WEBHOOK_EVENTS = ("interview.status_changed", "interview.completed", "interview.scored")




@dataclasses.dataclass(frozen=True)
class TwilioCall:
    """An interview's Twilio call as the store keeps it (never its stream token, of which only a hash is kept)."""
    interview_id: str
    call_sid: str | None
    stream_sid: str | None
    stream_started_at: str | None  # the one-time stream token was spent: the interview's media began


# Mixins: campaign attempts and do-not-call (models/campaign_dialing.py), inbound calls (models/inbound_calls.py),
# invitations and shared campaign links (models/invitations.py), recruiter-led calls (models/recruiter_calls.py).
class SessionStore(CampaignDialing, InboundCalls, Invitations, RecruiterCalls):
    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000, clock: Clock = utcnow,
                 auto_migrate: bool = True):
        """`path`: the SQLite file, `sqlite:///path` or a `postgresql://` URL (StoreSettings.target)."""
        self.path = str(path)
        self.db = open_database(path, busy_timeout_ms)
        self.clock = clock
        # Called with the interview after each status change this store makes (the server's metrics).
        self.transition_listeners: list[Callable[[Interview], None]] = []
        if auto_migrate:
            migrate(self.db)

    def close(self) -> None:
        self.db.close()

    def now(self) -> str:
        return fmt_time(self.clock())

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict | None:
        return next(self.db.query(sql, list(params)), None)

    def _page(self, table: str, where: list[str], params: list[Any], page: int, page_size: int,
              order: str = "created_at DESC, id DESC") -> tuple[list[dict], int]:
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        total = self.db.execute(f"SELECT COUNT(*) FROM {table} {clause}", params).fetchone()[0]
        rows = list(self.db.query(f"SELECT * FROM {table} {clause} ORDER BY {order} LIMIT ? OFFSET ?",
                                  [*params, page_size, (page - 1) * page_size]))
        return rows, total

    # -- positions -------------------------------------------------------------------------------
    def create_position(self, template: InterviewTemplate) -> Position:
        now, pid = self.now(), new_id("pos")
        with immediate(self.db):
            self.db["positions"].insert({"id": pid, "title": template.title, "language": template.language,
                                         "version": 1, "template": dumps(template.to_dict()),
                                         "rubric_version": template.fingerprint(), "created_at": now,
                                         "updated_at": now})
            self._record_position_version(pid, 1, template, now)
        return self.get_position(pid)

    def _record_position_version(self, pid: str, version: int, template: InterviewTemplate, now: str) -> None:
        self.db["position_versions"].insert({"position_id": pid, "version": version,
                                             "template": dumps(template.to_dict()),
                                             "rubric_version": template.fingerprint(), "created_at": now})

    def update_position(self, pid: str, template: InterviewTemplate) -> Position:
        """A changed template is a new version; interviews keep the version they were created with."""
        with immediate(self.db):
            current = self.get_position(pid)
            if current.archived_at:
                raise Conflict(f"position {pid!r} is archived")
            if template == current.template:
                return current
            now, version = self.now(), current.version + 1
            self.db["positions"].update(pid, {"title": template.title, "language": template.language,
                                              "version": version, "template": dumps(template.to_dict()),
                                              "rubric_version": template.fingerprint(), "updated_at": now})
            self._record_position_version(pid, version, template, now)
        return self.get_position(pid)

    def archive_position(self, pid: str) -> Position:
        with immediate(self.db):
            position = self.get_position(pid)
            if not position.archived_at:
                now = self.now()
                self.db["positions"].update(pid, {"archived_at": now, "updated_at": now})
        return self.get_position(pid)

    def get_position(self, pid: str, version: int | None = None) -> Position:
        row = self._one("SELECT * FROM positions WHERE id = ?", [pid])
        if row is None:
            raise NotFound("position", pid)
        if version is not None and version != row["version"]:
            old = self._one("SELECT * FROM position_versions WHERE position_id = ? AND version = ?", [pid, version])
            if old is None:
                raise NotFound("position version", f"{pid}@{version}")
            row = {**row, **old}
        return _position(row)

    def list_positions(self, *, page: int = 1, page_size: int = 20,
                       include_archived: bool = False) -> tuple[list[Position], int]:
        where = [] if include_archived else ["archived_at IS NULL"]
        rows, total = self._page("positions", where, [], page, page_size)
        return [_position(r) for r in rows], total

    # -- candidates ------------------------------------------------------------------------------
    def upsert_candidate(self, fields: dict[str, Any]) -> tuple[Candidate, bool]:
        """Create a candidate, or update the one with the same external id (else the same phone).
        `fields` are already validated (models.validation.clean_candidate). Returns (candidate, created)."""
        with immediate(self.db):
            existing = None
            if fields.get("external_id"):
                existing = self._one("SELECT id FROM candidates WHERE external_id = ?", [fields["external_id"]])
            elif fields.get("phone"):
                existing = self._one("SELECT id FROM candidates WHERE phone = ? ORDER BY created_at LIMIT 1",
                                     [fields["phone"]])
            if existing:
                return self.update_candidate(existing["id"], fields), False
            return self.create_candidate(fields), True

    def create_candidate(self, fields: dict[str, Any]) -> Candidate:
        """A new candidate, whoever else has the same phone (`phonescreen call`'s callee is always its own)."""
        with immediate(self.db):
            now, cid = self.now(), new_id("cand")
            self.db["candidates"].insert({**_candidate_columns(fields), "id": cid, "created_at": now,
                                          "updated_at": now, "timezone": fields.get("timezone") or "UTC"})
            return self.get_candidate(cid)

    def update_candidate(self, cid: str, fields: dict[str, Any]) -> Candidate:
        with immediate(self.db):
            self.get_candidate(cid)
            if fields.get("external_id"):
                clash = self._one("SELECT id FROM candidates WHERE external_id = ? AND id != ?",
                                  [fields["external_id"], cid])
                if clash:
                    raise Conflict(f"external id {fields['external_id']!r} belongs to another candidate")
            columns = _candidate_columns(fields)
            if columns:
                self.db["candidates"].update(cid, {**columns, "updated_at": self.now()})
        return self.get_candidate(cid)

    def delete_candidate(self, cid: str) -> None:
        with immediate(self.db):
            self.get_candidate(cid)
            if self._one("SELECT 1 FROM interviews WHERE candidate_id = ? LIMIT 1", [cid]):
                raise Conflict("the candidate has interviews; their records are kept")
            self.db.execute("DELETE FROM campaign_candidates WHERE candidate_id = ?", [cid])
            self.db.execute("DELETE FROM candidates WHERE id = ?", [cid])

    def get_candidate(self, cid: str) -> Candidate:
        row = self._one("SELECT * FROM candidates WHERE id = ?", [cid])
        if row is None:
            raise NotFound("candidate", cid)
        return _candidate(row)

    def list_candidates(self, *, page: int = 1, page_size: int = 20, tag: str | None = None,
                        external_id: str | None = None) -> tuple[list[Candidate], int]:
        where, params = [], []
        if tag:
            where.append("EXISTS (SELECT 1 FROM json_each(candidates.tags) WHERE value = ?)")
            params.append(tag)
        if external_id:
            where.append("external_id = ?")
            params.append(external_id)
        rows, total = self._page("candidates", where, params, page, page_size)
        return [_candidate(r) for r in rows], total

    # -- interviews ------------------------------------------------------------------------------
    def create_interview(self, *, candidate_id: str, position_id: str, channel: str, expires_at: datetime,
                         campaign_id: str | None = None, rerun_of: str | None = None,
                         led_by: str | None = None) -> tuple[Interview, str]:
        """Returns the interview and its join token; only the token's hash is stored. `led_by="recruiter"`:
        a recruiter's live call (server/admin/recruiter_call.py), dialed by the recruiter's page, never by a dialer."""
        token = secrets.token_urlsafe(32)
        now, iid = self.now(), new_id("int")
        with immediate(self.db):
            candidate = self.get_candidate(candidate_id)
            position = self.get_position(position_id)
            if position.archived_at:
                raise Conflict(f"position {position_id!r} is archived")
            if channel in ("sip", "twilio") and not candidate.phone:
                raise Conflict(f"candidate {candidate_id!r} has no phone number for a {channel} call")
            if campaign_id:
                self.get_campaign(campaign_id)
            if rerun_of:
                old = self.get_interview(rerun_of)
                if old.candidate_id != candidate_id:
                    raise Conflict("a re-run must be for the same candidate")
            if expires_at <= self.clock():
                raise Conflict("expiresAt must be in the future")
            self.db["interviews"].insert({
                "id": iid, "candidate_id": candidate_id, "position_id": position_id,
                "position_version": position.version, "campaign_id": campaign_id, "channel": channel,
                "status": Status.SCHEDULED.value, "attempt_count": 0, "join_token_hash": token_hash(token),
                "expires_at": fmt_time(expires_at), "created_at": now, "updated_at": now, "rerun_of": rerun_of,
                "led_by": led_by})
            self._emit("interview.created", iid, {"status": Status.SCHEDULED.value})
        return self.get_interview(iid), token

    def get_interview(self, iid: str) -> Interview:
        row = self._one("SELECT * FROM interviews WHERE id = ?", [iid])
        if row is None:
            raise NotFound("interview", iid)
        return _interview(row)

    def find_interview_by_token(self, token: str) -> Interview | None:
        """The interview a join link opens: its own token (given when it was created) or an invitation's."""
        row = self._one("SELECT * FROM interviews WHERE join_token_hash = ?", [token_hash(token)])
        return _interview(row) if row else self.interview_by_invitation_token(token)

    def list_interviews(self, *, page: int = 1, page_size: int = 20, status: str | None = None,
                        position_id: str | None = None, campaign_id: str | None = None,
                        candidate_id: str | None = None, channel: str | None = None) -> tuple[list[Interview], int]:
        where, params = [], []
        for column, value in (("status", status), ("position_id", position_id), ("campaign_id", campaign_id),
                              ("candidate_id", candidate_id), ("channel", channel)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows, total = self._page("interviews", where, params, page, page_size)
        return [_interview(r) for r in rows], total

    def due_calls(self, channel: str, limit: int) -> list[Interview]:
        """Scheduled, unexpired interviews of a phone channel outside any campaign, oldest first: what
        `phonescreen serve` dials as soon as they are created (campaigns have their own scheduler)."""
        now = self.now()
        rows = self.db.query("SELECT * FROM interviews WHERE status = 'scheduled' AND channel = ? AND "
                             "campaign_id IS NULL AND led_by IS NULL AND expires_at > ? AND (scheduled_for IS NULL OR scheduled_for <= ?) "
                             "ORDER BY created_at, id LIMIT ?", [channel, now, now, limit])
        return [_interview(r) for r in rows]

    def reschedule_interview(self, iid: str, expires_at: datetime) -> Interview:
        with immediate(self.db):
            interview = self.get_interview(iid)
            if interview.status != Status.SCHEDULED:
                raise Conflict(f"only a scheduled interview can be changed; this one is {interview.status}")
            if expires_at <= self.clock():
                raise Conflict("expiresAt must be in the future")
            self.db["interviews"].update(iid, {"expires_at": fmt_time(expires_at), "updated_at": self.now()})
        return self.get_interview(iid)

    def transition(self, iid: str, new_status: str, *, outcome_code: str | int | None = None,
                   recording_path: str | None = None, reason: str | None = None) -> Interview:
        """Move an interview along its lifecycle (models.lifecycle), recording an event and queueing
        webhooks in the same transaction, so a status is never changed without its audit trail."""
        with immediate(self.db):
            current = self.get_interview(iid)
            status = check_transition(current.status, new_status)
            now = self.now()
            changes: dict[str, Any] = {"status": status.value, "updated_at": now}
            if status == Status.DIALING:
                changes["attempt_count"] = current.attempt_count + 1
            if status == Status.IN_PROGRESS and current.started_at is None:  # a resumed leg keeps the first start
                changes["started_at"] = now
            if status in ENDED and not current.ended_at:
                changes["ended_at"] = now
            if outcome_code is not None:
                changes["outcome_code"] = str(outcome_code)
            if recording_path is not None:
                changes["recording_path"] = recording_path
            if reason and status in ENDED:
                changes["end_reason"] = reason
            self.db["interviews"].update(iid, changes)
            data = {"from": current.status, "to": status.value}
            if outcome_code is not None:
                data["outcomeCode"] = str(outcome_code)
            if reason:
                data["reason"] = reason
            self._emit("interview.status_changed", iid, data)
            if status == Status.COMPLETED:
                self._emit("interview.completed", iid, {})
        interview = self.get_interview(iid)
        for listener in self.transition_listeners:
            listener(interview)
        return interview

    def reopen_to_resume(self, iid: str, reason: str) -> Interview:
        """A dropped interview (partial) is to be called again and go on where it stopped: the same
        interview, transcript and recording, one leg more, back to `scheduled` for the dialer's claim.
        The one way out of `partial`; the caller decides it may (models.campaign_dialing.resumable)."""
        with immediate(self.db):
            current = self.get_interview(iid)
            if current.status != Status.PARTIAL:
                raise IllegalTransition(current.status, Status.SCHEDULED)
            self.db["interviews"].update(iid, {"status": Status.SCHEDULED.value, "ended_at": None,
                                               "end_reason": None, "outcome_code": None,
                                               "legs": current.legs + 1, "updated_at": self.now()})
            # A Twilio interview's next leg is a new call with its own stream token and call SID.
            self.db.execute("DELETE FROM twilio_calls WHERE interview_id = ?", [iid])
            self._emit("interview.status_changed", iid, {"from": current.status, "to": Status.SCHEDULED.value,
                                                          "reason": reason, "leg": current.legs + 1})
        return self.get_interview(iid)

    def schedule_callback(self, iid: str, at: datetime, *, after: timedelta = timedelta(days=7)) -> Interview | None:
        """The candidate asked to be called back at `at` (aware, their zone): kept on the interview, and
        outside a campaign a new interview (a re-run) is scheduled for that moment, dialed then by
        `phonescreen serve`. A campaign's own scheduler makes the callback attempt (finish_attempt).
        Returns the new interview, if one was made."""
        with immediate(self.db):
            interview = self.get_interview(iid)
            self.db["interviews"].update(iid, {"callback_at": at.isoformat(), "updated_at": self.now()})
            if interview.campaign_id is not None or interview.channel not in ("sip", "twilio"):
                return None
            expires = max(datetime.fromisoformat(interview.expires_at.replace("Z", "+00:00")), at + after)
            again, _ = self.create_interview(candidate_id=interview.candidate_id, position_id=interview.position_id,
                                             channel=interview.channel, expires_at=expires, rerun_of=iid)
            self.db["interviews"].update(again.id, {"scheduled_for": fmt_time(at)})
        return self.get_interview(again.id)

    def set_recording(self, iid: str, recording_path: str) -> Interview:
        with immediate(self.db):
            self.get_interview(iid)
            self.db["interviews"].update(iid, {"recording_path": recording_path, "updated_at": self.now()})
        return self.get_interview(iid)

    def expire_due(self) -> list[str]:
        """Scheduled interviews past their expiry become expired; returns their ids."""
        due = [r["id"] for r in self.db.query(
            "SELECT id FROM interviews WHERE status = ? AND expires_at <= ?", [Status.SCHEDULED.value, self.now()])]
        expired = []
        for iid in due:
            try:
                self.transition(iid, Status.EXPIRED, reason="invite expired")
                expired.append(iid)
            except IllegalTransition:  # another process moved it on in the meantime
                continue
        return expired

    # -- turns -----------------------------------------------------------------------------------
    def add_turn(self, iid: str, *, role: str, text: str, start_ms: int, end_ms: int,
                 stt_confidence: float | None = None, interrupted: bool = False) -> Turn:
        """Commit one finished turn. Turn numbers are assigned here, under the write lock."""
        if role not in TURN_ROLES:
            raise ValueError(f"role must be one of {', '.join(TURN_ROLES)}, got {role!r}")
        with immediate(self.db):
            interview = self.get_interview(iid)
            if interview.status != Status.IN_PROGRESS:
                raise Conflict(f"turns can only be added while in progress; interview is {interview.status}")
            number = self.db.execute("SELECT COALESCE(MAX(turn_number), 0) + 1 FROM turns WHERE interview_id = ?",
                                     [iid]).fetchone()[0]
            turn = Turn(iid, number, role, text, int(start_ms), int(end_ms), stt_confidence, bool(interrupted),
                        self.now())
            self.db["turns"].insert({**dataclasses.asdict(turn), "interrupted": int(turn.interrupted)})
        return turn

    def turns(self, iid: str) -> list[Turn]:
        return [_turn(r) for r in self.db.query(
            "SELECT * FROM turns WHERE interview_id = ? ORDER BY turn_number", [iid])]

    def correct_turn(self, iid: str, turn_number: int, text: str) -> Turn:
        """Replace a stored turn's text (an integrator's correction, server/api/turns.py); only while the
        interview is in progress, like adding one."""
        with immediate(self.db):
            interview = self.get_interview(iid)
            if interview.status != Status.IN_PROGRESS:
                raise Conflict(f"turns can only be corrected while in progress; interview is {interview.status}")
            row = self._one("SELECT id FROM turns WHERE interview_id = ? AND turn_number = ?", [iid, int(turn_number)])
            if row is None:
                raise NotFound("turn", f"{iid}#{turn_number}")
            self.db["turns"].update(row["id"], {"text": text})
        return next(t for t in self.turns(iid) if t.turn_number == int(turn_number))

    def set_turn_evaluation(self, iid: str, turn_number: int, *, role: str, kind: str, factor: str | None = None,
                            question: str | None = None, evaluation: dict | None = None) -> None:
        """Store (or replace, on a rescore) what the interviewer understood of one stored turn."""
        with immediate(self.db):
            self.db["turn_evaluations"].upsert(
                {"interview_id": iid, "turn_number": int(turn_number), "role": role, "factor": factor,
                 "question": question, "kind": kind,
                 "evaluation": json.dumps(evaluation) if evaluation is not None else None, "created_at": self.now()},
                pk=("interview_id", "turn_number"))

    def turn_evaluations(self, iid: str) -> dict[int, TurnEvaluation]:
        """Turn number -> what the interviewer understood of it (turns stored before migration 4 have none)."""
        return {row["turn_number"]: TurnEvaluation(
                    row["interview_id"], row["turn_number"], row["role"], row["factor"], row["question"], row["kind"],
                    json.loads(row["evaluation"]) if row["evaluation"] else None)
                for row in self.db.query("SELECT * FROM turn_evaluations WHERE interview_id = ? ORDER BY turn_number",
                                         [iid])}

    # -- Twilio calls ----------------------------------------------------------------------------
    def issue_stream_token(self, iid: str, ttl_s: int) -> str:
        """The one-time Media Streams token of a Twilio interview's call (one call per interview), valid
        `ttl_s` seconds; only its hash is stored."""
        token, now = secrets.token_urlsafe(32), self.now()
        with immediate(self.db):
            interview = self.get_interview(iid)
            if interview.channel != "twilio":
                raise Conflict(f"interview {iid!r} is a {interview.channel} interview, not a twilio one")
            if self._one("SELECT 1 FROM twilio_calls WHERE interview_id = ?", [iid]):
                raise Conflict(f"interview {iid!r} already has a Twilio call")
            self.db["twilio_calls"].insert({"interview_id": iid, "stream_token_hash": token_hash(token),
                                            "token_expires_at": fmt_time(self.clock() + timedelta(seconds=ttl_s)),
                                            "created_at": now, "updated_at": now})
        return token

    def bind_twilio_call_sid(self, iid: str, call_sid: str) -> bool:
        """Record the call SID of the interview's call (the first one seen wins: a status callback may
        arrive before the REST answer). True if the interview's call is `call_sid`."""
        with immediate(self.db):
            row = self._one("SELECT call_sid FROM twilio_calls WHERE interview_id = ?", [iid])
            if row is None:
                return False
            if row["call_sid"] is not None:
                return row["call_sid"] == call_sid
            try:
                with savepoint(self.db):
                    self.db["twilio_calls"].update(iid, {"call_sid": call_sid, "updated_at": self.now()})
            except integrity_errors():  # the SID belongs to another interview's call
                return False
        return True

    def redeem_stream_token(self, iid: str, token: str, stream_sid: str) -> bool:
        """Spend the interview's stream token: True once, for the right token before it expires."""
        with immediate(self.db):
            row = self._one("SELECT * FROM twilio_calls WHERE interview_id = ?", [iid])
            if row is None or row["stream_started_at"] or row["token_expires_at"] <= self.now():
                return False
            if not hmac.compare_digest(row["stream_token_hash"], token_hash(token)):
                return False
            now = self.now()
            self.db["twilio_calls"].update(iid, {"stream_sid": stream_sid, "stream_started_at": now,
                                                 "updated_at": now})
        return True

    def twilio_call(self, iid: str) -> TwilioCall | None:
        row = self._one("SELECT * FROM twilio_calls WHERE interview_id = ?", [iid])
        return None if row is None else TwilioCall(iid, row["call_sid"], row["stream_sid"], row["stream_started_at"])

    # -- scorecards ------------------------------------------------------------------------------
    def save_scorecard(self, iid: str, *, status: str, overall: float | None, rubric_version: str,
                       data: dict[str, Any]) -> Scorecard:
        """Every scoring run is a new version; a completed interview becomes report_ready."""
        with immediate(self.db):
            interview = self.get_interview(iid)
            if interview.status not in (Status.COMPLETED, Status.REPORT_READY, Status.PARTIAL):
                raise Conflict(f"only a finished interview can be scored; this one is {interview.status}")
            version = self.db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM scorecards WHERE interview_id = ?",
                                      [iid]).fetchone()[0]
            sid = new_id("sc")
            self.db["scorecards"].insert({"id": sid, "interview_id": iid, "version": version, "status": status,
                                          "overall": overall, "rubric_version": rubric_version, "data": dumps(data),
                                          "created_at": self.now()})
            if interview.status == Status.COMPLETED:
                self.transition(iid, Status.REPORT_READY)
            self._emit("interview.scored", iid, {"scorecardId": sid, "version": version, "status": status,
                                                 "overall": overall})
        return self.scorecards(iid)[-1]

    def scorecards(self, iid: str) -> list[Scorecard]:
        return [_scorecard(r) for r in self.db.query(
            "SELECT * FROM scorecards WHERE interview_id = ? ORDER BY version", [iid])]

    # -- campaigns -------------------------------------------------------------------------------
    def create_campaign(self, *, name: str, position_id: str, channel: str, settings: dict[str, Any],
                        candidate_ids: list[str]) -> Campaign:
        now, cid = self.now(), new_id("camp")
        with immediate(self.db):
            if self.get_position(position_id).archived_at:
                raise Conflict(f"position {position_id!r} is archived")
            self.db["campaigns"].insert({"id": cid, "name": name, "position_id": position_id, "channel": channel,
                                         "status": "draft", "settings": dumps(settings), "created_at": now,
                                         "updated_at": now})
            self._set_campaign_candidates(cid, channel, candidate_ids)
        return self.get_campaign(cid)

    def _set_campaign_candidates(self, cid: str, channel: str, candidate_ids: list[str]) -> None:
        for candidate_id in candidate_ids:
            if channel in ("sip", "twilio") and not self.get_candidate(candidate_id).phone:
                raise Conflict(f"candidate {candidate_id!r} has no phone number for a {channel} campaign")
        self.db.execute("DELETE FROM campaign_candidates WHERE campaign_id = ?", [cid])
        for position, candidate_id in enumerate(dict.fromkeys(candidate_ids)):
            self.db["campaign_candidates"].insert({"campaign_id": cid, "candidate_id": candidate_id,
                                                   "position": position})

    def update_campaign(self, cid: str, *, name: str | None = None, settings: dict[str, Any] | None = None,
                        candidate_ids: list[str] | None = None) -> Campaign:
        with immediate(self.db):
            campaign = self.get_campaign(cid)
            if campaign.status != "draft":
                raise Conflict(f"only a draft campaign can be edited; this one is {campaign.status}")
            changes: dict[str, Any] = {"updated_at": self.now()}
            if name is not None:
                changes["name"] = name
            if settings is not None:
                changes["settings"] = dumps(settings)
            self.db["campaigns"].update(cid, changes)
            if candidate_ids is not None:
                self._set_campaign_candidates(cid, campaign.channel, candidate_ids)
        return self.get_campaign(cid)

    def delete_campaign(self, cid: str) -> None:
        with immediate(self.db):
            campaign = self.get_campaign(cid)
            if campaign.status != "draft" or self._one("SELECT 1 FROM interviews WHERE campaign_id = ?", [cid]):
                raise Conflict("only a draft campaign without interviews can be deleted")
            self.db.execute("DELETE FROM campaign_candidates WHERE campaign_id = ?", [cid])
            self.db.execute("DELETE FROM campaign_links WHERE campaign_id = ?", [cid])
            self.db.execute("DELETE FROM campaigns WHERE id = ?", [cid])

    def get_campaign(self, cid: str) -> Campaign:
        row = self._one("SELECT * FROM campaigns WHERE id = ?", [cid])
        if row is None:
            raise NotFound("campaign", cid)
        members = [r["candidate_id"] for r in self.db.query(
            "SELECT candidate_id FROM campaign_candidates WHERE campaign_id = ? ORDER BY position", [cid])]
        return _campaign(row, members)

    def list_campaigns(self, *, page: int = 1, page_size: int = 20,
                       position_id: str | None = None) -> tuple[list[Campaign], int]:
        where, params = (["position_id = ?"], [position_id]) if position_id else ([], [])
        rows, total = self._page("campaigns", where, params, page, page_size)
        return [self.get_campaign(r["id"]) for r in rows], total

    # -- events and webhooks ---------------------------------------------------------------------
    def _emit(self, event_type: str, iid: str, data: dict[str, Any]) -> None:
        """Append an audit event and queue a delivery for each endpoint subscribed to it.
        Called inside the caller's transaction."""
        now = self.now()
        interview = self.get_interview(iid)
        payload_data = {"interviewId": iid, "candidateId": interview.candidate_id,
                        "positionId": interview.position_id, "campaignId": interview.campaign_id,
                        "channel": interview.channel, "status": interview.status, **data}
        event_id = self.db["events"].insert({"type": event_type, "entity": "interview", "entity_id": iid,
                                             "interview_id": iid, "data": dumps(payload_data),
                                             "created_at": now}).last_pk
        if event_type not in WEBHOOK_EVENTS:
            return
        body = dumps({"id": f"evt_{event_id}", "type": event_type, "createdAt": now, "data": payload_data})
        for endpoint in self.db.query("SELECT id, events FROM webhook_endpoints WHERE active = 1"):
            if event_type in json.loads(endpoint["events"]):
                self.db["webhook_deliveries"].insert({
                    "id": new_id("dlv"), "endpoint_id": endpoint["id"], "event_id": event_id,
                    "event_type": event_type, "payload": body, "status": "pending", "attempts": 0,
                    "next_attempt_at": now, "created_at": now})

    def events(self, *, interview_id: str | None = None, limit: int = 100) -> list[Event]:
        where, params = ("WHERE interview_id = ?", [interview_id]) if interview_id else ("", [])
        return [_event(r) for r in self.db.query(f"SELECT * FROM events {where} ORDER BY id LIMIT ?",
                                                 [*params, limit])]

    def create_webhook(self, *, url: str, events: list[str], description: str | None = None,
                       secret: str | None = None) -> WebhookEndpoint:
        now, wid = self.now(), new_id("whk")
        with immediate(self.db):
            self.db["webhook_endpoints"].insert({"id": wid, "url": url, "secret": secret or "whsec_" +
                                                 secrets.token_urlsafe(32), "events": dumps(events), "active": 1,
                                                 "description": description, "created_at": now,
                                                 "updated_at": now})
        return self.get_webhook(wid)

    def update_webhook(self, wid: str, **changes: Any) -> WebhookEndpoint:
        allowed = {"url", "events", "description", "active"}
        if set(changes) - allowed:
            raise ValueError(f"unknown webhook fields {sorted(set(changes) - allowed)}")
        with immediate(self.db):
            self.get_webhook(wid)
            columns = {k: (dumps(v) if k == "events" else int(v) if k == "active" else v)
                       for k, v in changes.items() if v is not None}
            self.db["webhook_endpoints"].update(wid, {**columns, "updated_at": self.now()})
        return self.get_webhook(wid)

    def delete_webhook(self, wid: str) -> None:
        with immediate(self.db):
            self.get_webhook(wid)
            self.db.execute("DELETE FROM webhook_deliveries WHERE endpoint_id = ?", [wid])
            self.db.execute("DELETE FROM webhook_endpoints WHERE id = ?", [wid])

    def get_webhook(self, wid: str) -> WebhookEndpoint:
        row = self._one("SELECT * FROM webhook_endpoints WHERE id = ?", [wid])
        if row is None:
            raise NotFound("webhook", wid)
        return _webhook(row)

    def list_webhooks(self, *, page: int = 1, page_size: int = 20) -> tuple[list[WebhookEndpoint], int]:
        rows, total = self._page("webhook_endpoints", [], [], page, page_size)
        return [_webhook(r) for r in rows], total

    def claim_due_deliveries(self, limit: int, lease_s: float) -> list[WebhookDelivery]:
        """Due deliveries for this process to send, oldest first, each claimed by moving its next attempt
        `lease_s` on (under the write lock; PostgreSQL skips rows another node is claiming): however many
        nodes dispatch, one sends it. If this process dies the delivery falls due again once the lease ends."""
        lock = " FOR UPDATE SKIP LOCKED" if is_postgres(self.db) else ""
        with immediate(self.db):
            due = [_delivery(r) for r in self.db.query(
                "SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? "
                f"ORDER BY next_attempt_at, created_at LIMIT ?{lock}", [self.now(), limit])]
            until = fmt_time(self.clock() + timedelta(seconds=lease_s))
            for delivery in due:
                self.db["webhook_deliveries"].update(delivery.id, {"next_attempt_at": until})
        return due

    def record_delivery_attempt(self, did: str, *, ok: bool, status_code: int | None, error: str | None,
                                retry_at: datetime | None) -> WebhookDelivery:
        """retry_at None after a failure means attempts are exhausted: the delivery is marked failed."""
        now = self.now()
        with immediate(self.db):
            row = self._one("SELECT attempts FROM webhook_deliveries WHERE id = ?", [did])
            if row is None:
                raise NotFound("webhook delivery", did)
            changes: dict[str, Any] = {"attempts": row["attempts"] + 1, "last_status_code": status_code,
                                       "last_error": error}
            if ok:
                changes.update(status="delivered", delivered_at=now, next_attempt_at=None)
            elif retry_at is None:
                changes.update(status="failed", next_attempt_at=None)
            else:
                changes.update(next_attempt_at=fmt_time(retry_at))
            self.db["webhook_deliveries"].update(did, changes)
        return self.get_delivery(did)

    def get_delivery(self, did: str) -> WebhookDelivery:
        row = self._one("SELECT * FROM webhook_deliveries WHERE id = ?", [did])
        if row is None:
            raise NotFound("webhook delivery", did)
        return _delivery(row)

    def list_deliveries(self, wid: str, *, page: int = 1, page_size: int = 20) -> tuple[list[WebhookDelivery], int]:
        self.get_webhook(wid)
        rows, total = self._page("webhook_deliveries", ["endpoint_id = ?"], [wid], page, page_size)
        return [_delivery(r) for r in rows], total

    # -- work shared between nodes -----------------------------------------------------------------
    def claim_work(self, key: str, owner: str, lease_s: float) -> bool:
        """Take the lease on one job (`key`, e.g. score:<interview id>) for `owner` unless another owner
        holds it unexpired: however many nodes look for work, one does each job at a time; a dead node's
        lease runs out and the job is taken again."""
        until = fmt_time(self.clock() + timedelta(seconds=lease_s))
        with immediate(self.db):
            row = self._one("SELECT owner, expires_at FROM work_leases WHERE key = ?", [key])
            if row is not None and row["owner"] != owner and row["expires_at"] > self.now():
                return False
            self.db["work_leases"].upsert({"key": key, "owner": owner, "expires_at": until}, pk="key")
        return True

    def release_work(self, key: str, owner: str) -> None:
        with immediate(self.db):
            self.db.execute("DELETE FROM work_leases WHERE key = ? AND owner = ?", [key, owner])

    # -- API keys --------------------------------------------------------------------------------
    def create_api_key(self, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
        """Returns the key record and the secret key, which is shown once and stored only as a hash."""
        kid = new_id("key")
        secret = f"psk_{secrets.token_urlsafe(32)}"
        with immediate(self.db):
            self.db["api_keys"].insert({"id": kid, "name": name, "key_hash": token_hash(secret),
                                        "scopes": dumps(sorted(set(scopes))), "created_at": self.now()})
        return self.get_api_key(kid), secret

    def authenticate(self, secret: str) -> ApiKey | None:
        row = self._one("SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", [token_hash(secret)])
        return _api_key(row) if row else None

    def touch_api_key(self, kid: str) -> None:
        with immediate(self.db):
            self.db["api_keys"].update(kid, {"last_used_at": self.now()})

    def get_api_key(self, kid: str) -> ApiKey:
        row = self._one("SELECT * FROM api_keys WHERE id = ?", [kid])
        if row is None:
            raise NotFound("api key", kid)
        return _api_key(row)

    def list_api_keys(self) -> list[ApiKey]:
        return [_api_key(r) for r in self.db.query("SELECT * FROM api_keys ORDER BY created_at")]

    def revoke_api_key(self, kid: str) -> ApiKey:
        with immediate(self.db):
            key = self.get_api_key(kid)
            if not key.revoked_at:
                self.db["api_keys"].update(kid, {"revoked_at": self.now()})
        return self.get_api_key(kid)

    # -- operations and data protection ----------------------------------------------------------
    def check_writable(self) -> None:
        """Take the write lock and release it (readiness): raises a DatabaseError if the store cannot be written."""
        with immediate(self.db):
            pass

    def backup(self, path: str | Path) -> str:
        """An online copy of the whole store to `path` (a consistent snapshot: writers are never blocked in
        WAL mode); returns the copy's PRAGMA integrity_check verdict ("ok"). SQLite only: a PostgreSQL
        store is backed up with pg_dump."""
        if is_postgres(self.db):
            raise Conflict("the store is on PostgreSQL: back it up with pg_dump")
        target = sqlite3.connect(str(path))
        try:
            self.db.conn.backup(target)  # one step: every page under one read snapshot
            return target.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            target.close()

    def erase_candidate(self, cid: str) -> ErasedCandidate:
        """Remove a candidate and everything that holds their personal data: their interviews, turns,
        scorecards, events, webhook deliveries, Twilio calls and any other row keyed by the candidate or
        their interviews. One anonymous `candidate.erased` event (ids only) stays. The recording files are
        the caller's to delete (returned). Refused (Conflict) while one of their calls is under way."""
        self.db.execute("PRAGMA secure_delete = ON")  # deleted text is zeroed in the file, not just unlinked
        try:
            with immediate(self.db):
                self.get_candidate(cid)
                rows = list(self.db.query("SELECT id, status, recording_path FROM interviews WHERE candidate_id = ?",
                                          [cid]))
                if any(r["status"] in ACTIVE for r in rows):
                    raise Conflict("a call with this candidate is under way; erase them once it has ended")
                ids = [r["id"] for r in rows]
                marks = ",".join("?" * len(ids))
                self.db.execute("PRAGMA defer_foreign_keys = ON")  # rows go in any order; checked at commit
                of_interviews = f" OR interview_id IN ({marks})" if ids else ""
                event_where = f"(entity = 'candidate' AND entity_id = ?){of_interviews}"
                event_ids = [r["id"] for r in self.db.query(f"SELECT id FROM events WHERE {event_where}", [cid, *ids])]
                for chunk in (event_ids[i:i + 500] for i in range(0, len(event_ids), 500)):
                    chunk_marks = ",".join("?" * len(chunk))
                    self.db.execute(f"DELETE FROM webhook_deliveries WHERE event_id IN ({chunk_marks})", chunk)
                    self.db.execute(f"DELETE FROM events WHERE id IN ({chunk_marks})", chunk)
                for table in self.db.table_names():
                    columns = self.db[table].columns_dict
                    if ids and "interview_id" in columns and table != "events":
                        self.db.execute(f"DELETE FROM [{table}] WHERE interview_id IN ({marks})", ids)
                    if "candidate_id" in columns and table != "interviews":
                        self.db.execute(f"DELETE FROM [{table}] WHERE candidate_id = ?", [cid])
                self.db.execute("DELETE FROM interviews WHERE candidate_id = ?", [cid])
                self.db.execute("DELETE FROM candidates WHERE id = ?", [cid])
                self.db["events"].insert({"type": "candidate.erased", "entity": "candidate", "entity_id": cid,
                                          "interview_id": None, "data": dumps({"interviewIds": ids}),
                                          "created_at": self.now()})
        finally:
            self.db.execute("PRAGMA secure_delete = OFF")
        with contextlib.suppress(*database_errors()):  # old page images leave the WAL too (best effort: readers)
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return ErasedCandidate(cid, ids, [r["recording_path"] for r in rows if r["recording_path"]])

    def purge_old_content(self, ended_before: datetime, *, keep_scorecards: bool) -> list[ErasedCandidate]:
        """Retention: interviews that ended before `ended_before` lose their transcript, recording, recruiter notes
        (and their scorecards, or only the scorecards' quoted answers with `keep_scorecards`). Returns,
        per candidate, the interviews purged and their recording files (the caller deletes the files)."""
        cutoff = fmt_time(ended_before)
        rows = list(self.db.query(
            "SELECT id, candidate_id, recording_path FROM interviews WHERE ended_at IS NOT NULL AND ended_at < ? "
            "AND (recording_path IS NOT NULL OR EXISTS (SELECT 1 FROM turns WHERE turns.interview_id = interviews.id) "
            "OR EXISTS (SELECT 1 FROM recruiter_notes WHERE recruiter_notes.interview_id = interviews.id) "
            "OR EXISTS (SELECT 1 FROM scorecards WHERE scorecards.interview_id = interviews.id "
            "AND scorecards.data LIKE '%\"quote\"%'))", [cutoff]))
        purged: dict[str, ErasedCandidate] = {}
        for row in rows:
            iid = row["id"]
            with immediate(self.db):
                self.db.execute("DELETE FROM turns WHERE interview_id = ?", [iid])
                self.db.execute("DELETE FROM turn_evaluations WHERE interview_id = ?", [iid])
                self.db.execute("DELETE FROM recruiter_notes WHERE interview_id = ?", [iid])
                if keep_scorecards:
                    for card in self.db.query("SELECT id, data FROM scorecards WHERE interview_id = ?", [iid]):
                        kept = _without_quotes(json.loads(card["data"]))
                        self.db["scorecards"].update(card["id"], {"data": dumps(kept)})
                else:
                    self.db.execute("DELETE FROM scorecards WHERE interview_id = ?", [iid])
                self.db["interviews"].update(iid, {"recording_path": None, "updated_at": self.now()})
                self._emit("interview.content_purged", iid, {"keptScorecards": keep_scorecards})
            entry = purged.setdefault(row["candidate_id"], ErasedCandidate(row["candidate_id"], [], []))
            entry.interview_ids.append(iid)
            if row["recording_path"]:
                entry.recordings.append(row["recording_path"])
        return list(purged.values())


@dataclasses.dataclass(frozen=True)
class ErasedCandidate:
    """What an erasure or a retention purge removed from the store; the files are the caller's to delete."""
    candidate_id: str
    interview_ids: list[str]
    recordings: list[str]  # recording paths as the interviews held them


QUOTE_REMOVED = "[removed]"


def _without_quotes(data: dict[str, Any]) -> dict[str, Any]:
    """A scorecard kept by retention: scores and reasoning stay; the citations go, and so does every copy
    of a quoted answer elsewhere in it (the feedback quotes the best answer)."""
    quotes = sorted({c["quote"] for f in data.get("factors", []) for c in f.get("citations", []) if c.get("quote")},
                    key=len, reverse=True)

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            for quote in quotes:
                value = value.replace(quote, QUOTE_REMOVED)
            return value
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    factors = [{**factor, "citations": []} for factor in data.get("factors", [])]
    return scrub({**data, "factors": factors})


# -- rows to records -----------------------------------------------------------------------------
def _position(row: dict) -> Position:
    return Position(row["id"], row["version"], parse_template(json.loads(row["template"])), row["rubric_version"],
                    row["created_at"], row["updated_at"], row.get("archived_at"))


_CANDIDATE_FIELDS = ("name", "phone", "email", "timezone", "external_id", "metadata", "tags")


def _candidate_columns(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (dumps(v) if k in ("metadata", "tags") else v) for k, v in fields.items() if k in _CANDIDATE_FIELDS}


def _candidate(row: dict) -> Candidate:
    return Candidate(row["id"], row["name"], row["phone"], row["email"], row["timezone"], row["external_id"],
                     json.loads(row["metadata"] or "{}"), json.loads(row["tags"] or "[]"), row["created_at"],
                     row["updated_at"])


def _campaign(row: dict, members: list[str]) -> Campaign:
    return Campaign(row["id"], row["name"], row["position_id"], row["channel"], row["status"],
                    json.loads(row["settings"] or "{}"), members, row["created_at"], row["updated_at"])


def _interview(row: dict) -> Interview:
    return Interview(row["id"], row["candidate_id"], row["position_id"], row["position_version"],
                     row["campaign_id"], row["channel"], row["status"], row["attempt_count"], row["outcome_code"],
                     row["recording_path"], row["expires_at"], row["created_at"], row["updated_at"],
                     row["started_at"], row["ended_at"], row["rerun_of"], row["join_token_hash"],
                     row.get("end_reason"), row.get("callback_at"), row.get("scheduled_for"), row.get("legs") or 1,
                     row.get("led_by"))


def _turn(row: dict) -> Turn:
    return Turn(row["interview_id"], row["turn_number"], row["role"], row["text"], row["start_ms"], row["end_ms"],
                row["stt_confidence"], bool(row["interrupted"]), row["created_at"])


def _scorecard(row: dict) -> Scorecard:
    return Scorecard(row["id"], row["interview_id"], row["version"], row["status"], row["overall"],
                     row["rubric_version"], json.loads(row["data"]), row["created_at"])


def _event(row: dict) -> Event:
    return Event(row["id"], row["type"], row["entity"], row["entity_id"], row["interview_id"],
                 json.loads(row["data"] or "{}"), row["created_at"])


def _webhook(row: dict) -> WebhookEndpoint:
    return WebhookEndpoint(row["id"], row["url"], json.loads(row["events"]), bool(row["active"]),
                           row["description"], row["created_at"], row["updated_at"], row["secret"])


def _delivery(row: dict) -> WebhookDelivery:
    return WebhookDelivery(row["id"], row["endpoint_id"], row["event_id"], row["event_type"], row["payload"],
                           row["status"], row["attempts"], row["next_attempt_at"], row["last_status_code"],
                           row["last_error"], row["created_at"], row["delivered_at"])


def _api_key(row: dict) -> ApiKey:
    return ApiKey(row["id"], row["name"], json.loads(row["scopes"]), row["created_at"], row["last_used_at"],
                  row["revoked_at"])


def default_expiry(clock: Clock = utcnow, days: int = 7) -> datetime:
    return clock() + timedelta(days=days)
