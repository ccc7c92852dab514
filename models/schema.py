"""Schema migrations, the same code on SQLite and PostgreSQL. The schema version is SQLite's user_version
(PostgreSQL: the one row of phonescreen_schema); each migration runs once, in order, inside the write lock,
so several processes starting at once migrate exactly once.

Adding a migration: write `_vN(db)` with the table calls below (`db[t].create(columns, pk=...,
foreign_keys=..., not_null=...)`, `.add_column(name, type)`, `.create_index(columns, unique=...)`) and
portable `db.execute(...)` SQL, and append it to MIGRATIONS: models/pg.py gives PostgreSQL the same calls.
Only SQL that differs between the two goes under `if is_postgres(db):`."""
from __future__ import annotations

from typing import Callable

from models.db import SCHEMA_TABLE, Database, immediate, is_postgres


def _v1(db: Database) -> None:
    db["positions"].create({"id": str, "title": str, "language": str, "version": int, "template": str,
                            "rubric_version": str, "created_at": str, "updated_at": str, "archived_at": str},
                           pk="id", not_null={"title", "version", "template", "created_at", "updated_at"})
    db["position_versions"].create({"position_id": str, "version": int, "template": str, "rubric_version": str,
                                    "created_at": str}, pk=("position_id", "version"),
                                   foreign_keys=[("position_id", "positions", "id")])
    db["candidates"].create({"id": str, "name": str, "phone": str, "email": str, "timezone": str,
                             "external_id": str, "metadata": str, "tags": str, "created_at": str,
                             "updated_at": str}, pk="id", not_null={"name", "timezone", "created_at"})
    db["candidates"].create_index(["external_id"], unique=True)
    db["candidates"].create_index(["phone"])
    db["campaigns"].create({"id": str, "name": str, "position_id": str, "channel": str, "status": str,
                            "settings": str, "created_at": str, "updated_at": str}, pk="id",
                           not_null={"name", "position_id", "channel", "status"},
                           foreign_keys=[("position_id", "positions", "id")])
    db["campaign_candidates"].create({"campaign_id": str, "candidate_id": str, "position": int},
                                     pk=("campaign_id", "candidate_id"),
                                     foreign_keys=[("campaign_id", "campaigns", "id"),
                                                   ("candidate_id", "candidates", "id")])
    db["interviews"].create({"id": str, "candidate_id": str, "position_id": str, "position_version": int,
                             "campaign_id": str, "channel": str, "status": str, "attempt_count": int,
                             "outcome_code": str, "recording_path": str, "join_token_hash": str,
                             "expires_at": str, "created_at": str, "updated_at": str, "started_at": str,
                             "ended_at": str, "rerun_of": str}, pk="id",
                            not_null={"candidate_id", "position_id", "channel", "status", "expires_at"},
                            foreign_keys=[("candidate_id", "candidates", "id"), ("position_id", "positions", "id"),
                                          ("campaign_id", "campaigns", "id"), ("rerun_of", "interviews", "id")])
    for cols in (["status"], ["candidate_id"], ["position_id"], ["campaign_id"], ["created_at"]):
        db["interviews"].create_index(cols)
    db["interviews"].create_index(["join_token_hash"], unique=True)
    db["turns"].create({"id": int, "interview_id": str, "turn_number": int, "role": str, "text": str,
                        "start_ms": int, "end_ms": int, "stt_confidence": float, "interrupted": int,
                        "created_at": str}, pk="id", not_null={"interview_id", "turn_number", "role", "text"},
                       foreign_keys=[("interview_id", "interviews", "id")])
    db["turns"].create_index(["interview_id", "turn_number"], unique=True)
    db["scorecards"].create({"id": str, "interview_id": str, "version": int, "status": str, "overall": float,
                             "rubric_version": str, "data": str, "created_at": str}, pk="id",
                            foreign_keys=[("interview_id", "interviews", "id")])
    db["scorecards"].create_index(["interview_id", "version"], unique=True)
    db["events"].create({"id": int, "type": str, "entity": str, "entity_id": str, "interview_id": str,
                         "data": str, "created_at": str}, pk="id", not_null={"type", "entity", "entity_id"})
    db["events"].create_index(["interview_id"])
    db["webhook_endpoints"].create({"id": str, "url": str, "secret": str, "events": str, "active": int,
                                    "description": str, "created_at": str, "updated_at": str}, pk="id")
    db["webhook_deliveries"].create({"id": str, "endpoint_id": str, "event_id": int, "event_type": str,
                                     "payload": str, "status": str, "attempts": int, "next_attempt_at": str,
                                     "last_status_code": int, "last_error": str, "created_at": str,
                                     "delivered_at": str}, pk="id",
                                    foreign_keys=[("endpoint_id", "webhook_endpoints", "id"),
                                                  ("event_id", "events", "id")])
    db["webhook_deliveries"].create_index(["status", "next_attempt_at"])
    db["api_keys"].create({"id": str, "name": str, "key_hash": str, "scopes": str, "created_at": str,
                           "last_used_at": str, "revoked_at": str}, pk="id")
    db["api_keys"].create_index(["key_hash"], unique=True)


def _v2(db: Database) -> None:
    """Twilio calls: the call SID of an interview's call and its one-time Media Streams token (hash only)."""
    db["twilio_calls"].create({"interview_id": str, "call_sid": str, "stream_token_hash": str,
                               "token_expires_at": str, "stream_sid": str, "stream_started_at": str,
                               "created_at": str, "updated_at": str}, pk="interview_id",
                              not_null={"stream_token_hash", "token_expires_at", "created_at"},
                              foreign_keys=[("interview_id", "interviews", "id")])
    db["twilio_calls"].create_index(["call_sid"], unique=True)


def _v3(db: Database) -> None:
    """Campaign dialing: one row per call attempt (claimed with a lease the dialer renews by heartbeat, so a
    dead dialer's attempts are recovered), and the do-not-call list checked before every campaign call."""
    db["call_attempts"].create({"id": str, "campaign_id": str, "candidate_id": str, "interview_id": str,
                                "attempt_no": int, "status": str, "outcome": str, "sip_code": int,
                                "lease_owner": str, "lease_expires_at": str, "heartbeat_at": str, "due_at": str,
                                "expires_at": str, "created_at": str, "updated_at": str, "started_at": str,
                                "ended_at": str}, pk="id",
                               not_null={"campaign_id", "candidate_id", "attempt_no", "status", "due_at"},
                               foreign_keys=[("campaign_id", "campaigns", "id"), ("candidate_id", "candidates", "id"),
                                             ("interview_id", "interviews", "id")])
    db["call_attempts"].create_index(["campaign_id", "status", "due_at"])
    db["call_attempts"].create_index(["interview_id"])
    # At most one open (pending or active) attempt per candidate and campaign: never two calls at once.
    db.execute("CREATE UNIQUE INDEX idx_call_attempts_open ON call_attempts (campaign_id, candidate_id) "
               "WHERE status IN ('pending', 'active')")
    db["do_not_call"].create({"phone": str, "reason": str, "created_at": str}, pk="phone",
                             not_null={"created_at"})


def _v4(db: Database) -> None:
    """Why an answered call ended and when a candidate asked to be called back (interviews.end_reason,
    .callback_at, and .scheduled_for: a callback is not dialed before it). What the interviewer understood of each turn, stored as the turn ends: for an agent turn the factor
    it asked about and what kind of turn it was (question, follow_up, ...); for a candidate turn its intent
    and, for an answer, the evaluation against the factor. Scoring attributes answers from these rows
    (what the interviewer asked), not from the stored wording; a rescore can re-evaluate them."""
    db["interviews"].add_column("end_reason", str)
    db["interviews"].add_column("callback_at", str)
    db["interviews"].add_column("scheduled_for", str)
    db["turn_evaluations"].create({"interview_id": str, "turn_number": int, "role": str, "factor": str,
                                   "question": str, "kind": str, "evaluation": str, "created_at": str},
                                  pk=("interview_id", "turn_number"), not_null={"role", "kind", "created_at"},
                                  foreign_keys=[("interview_id", "interviews", "id")])


def _v5(db: Database) -> None:
    """How many calls (legs) an interview took: a dropped interview that is resumed keeps its id, its
    transcript and its recording, and counts one leg more."""
    db["interviews"].add_column("legs", int, not_null_default=1)


def _v6(db: Database) -> None:
    """Invitations (e-mail and SMS) that carry a candidate's join link, each a job claimed under a lease by
    the sender, with its delivery state; and a campaign's shared link (its token kept only as a hash).
    Plain text and integer columns only (portable to PostgreSQL)."""
    db["invitations"].create({"id": str, "interview_id": str, "candidate_id": str, "channel": str, "status": str,
                              "reason": str, "attempts": int, "next_attempt_at": str, "claimed_until": str,
                              "token_hash": str, "provider_id": str, "created_at": str, "updated_at": str,
                              "sent_at": str}, pk="id",
                             not_null={"interview_id", "candidate_id", "channel", "status", "attempts", "created_at"},
                             foreign_keys=[("interview_id", "interviews", "id"), ("candidate_id", "candidates", "id")])
    db["invitations"].create_index(["status", "next_attempt_at"])
    db["invitations"].create_index(["interview_id"])
    db["invitations"].create_index(["token_hash"], unique=True)
    db["invitations"].create_index(["provider_id"])
    db["campaign_links"].create({"campaign_id": str, "token_hash": str, "created_at": str}, pk="campaign_id",
                                not_null={"token_hash", "created_at"},
                                foreign_keys=[("campaign_id", "campaigns", "id")])
    db["campaign_links"].create_index(["token_hash"], unique=True)


def _v7(db: Database) -> None:
    """Recruiter-led calls: who leads the interview (interviews.led_by: NULL = the AI, "recruiter" = a person
    with the copilot, "ai_handover" once the recruiter handed the call to the AI) and the recruiter's notes,
    one text per interview saved as they type."""
    db["interviews"].add_column("led_by", str)
    db["recruiter_notes"].create({"interview_id": str, "text": str, "updated_at": str}, pk="interview_id",
                                 not_null={"text", "updated_at"}, foreign_keys=[("interview_id", "interviews", "id")])


def _v8(db: Database) -> None:
    """Several dialer/API nodes on one store: each campaign's pacing is one token bucket in the store (tokens,
    refilled_at in Unix seconds), taken from under the write lock with the claims it paces; a work lease
    (`key` such as score:<interview id>) lets exactly one node do a job at a time, and a dead node's runs out."""
    db["pacing_buckets"].create({"campaign_id": str, "tokens": float, "refilled_at": float}, pk="campaign_id",
                                not_null={"tokens", "refilled_at"}, foreign_keys=[("campaign_id", "campaigns", "id")])
    db["work_leases"].create({"key": str, "owner": str, "expires_at": str}, pk="key",
                             not_null={"owner", "expires_at"})


MIGRATIONS: list[Callable[[Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8]
LATEST = len(MIGRATIONS)


def schema_version(db: Database) -> int:
    if not is_postgres(db):
        return db.execute("PRAGMA user_version").fetchone()[0]
    if db.execute("SELECT to_regclass(?)", [SCHEMA_TABLE]).fetchone()[0] is None:
        return 0
    row = db.execute(f"SELECT version FROM {SCHEMA_TABLE}").fetchone()
    return row[0] if row else 0


def _set_schema_version(db: Database, version: int) -> None:
    if not is_postgres(db):
        db.execute(f"PRAGMA user_version = {int(version)}")
        return
    db.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version BIGINT NOT NULL)")
    db.execute(f"DELETE FROM {SCHEMA_TABLE}")
    db.execute(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (?)", [version])


def migrate(db: Database) -> int:
    """Bring the file to the latest schema; returns the number of migrations applied."""
    if schema_version(db) == LATEST:
        return 0
    with immediate(db):
        current = schema_version(db)  # re-read under the lock: another process may have migrated
        if current > LATEST:
            raise RuntimeError(f"database schema {current} is newer than this program ({LATEST}); upgrade phonescreen")
        for number in range(current, LATEST):
            MIGRATIONS[number](db)
            _set_schema_version(db, number + 1)
        return LATEST - current
