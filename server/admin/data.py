"""What the dashboard shows, read from the store: counters, active calls, campaign progress, the interview
list and one interview in full. Read-only SQL over the store's tables (the store stays the only writer).
Calls run by SIP media workers are in the store like any other, so the dashboard sees every channel; the
current factor comes from the session when this process runs the call (web, Twilio), else from the stored
turns (SIP calls run in media worker processes)."""
from __future__ import annotations

from datetime import datetime, time as day_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from config.settings import Settings
from dialer.channels import campaign_blocked_reason
from models.db import fmt_time
from models.lifecycle import ACTIVE, ENDED, Status
from models.store import SessionStore
from config.logging_setup import mask_phone
from scoring.transcript import factor_in_progress
from server.api.interviews import event_json, interview_json, scorecard_json, turn_json
from server.voice import VoiceRuntime

COMPLETED = (Status.COMPLETED.value, Status.REPORT_READY.value)
# Ended without a usable interview: the "failed today" counter (the breakdown says which).
FAILED = (Status.FAILED.value, Status.NO_ANSWER.value, Status.BUSY.value, Status.DECLINED.value,
          Status.PARTIAL.value)
MAX_ACTIVE_ROWS = 200
RECENT_ROWS = 10
CAMPAIGN_ROWS = 10
MAX_SEARCH_CHARS = 100


def _marks(values: tuple[str, ...] | frozenset) -> str:
    return ",".join("?" * len(values))


def start_of_today(store: SessionStore, timezone: str) -> str:
    """Midnight in the team's time zone (interviews.default_timezone), as a store timestamp."""
    zone = ZoneInfo(timezone)
    local_now = store.clock().astimezone(zone)
    return fmt_time(datetime.combine(local_now.date(), day_time(0), zone))


def counters(store: SessionStore, timezone: str) -> dict[str, Any]:
    live = dict(store.db.execute(
        f"SELECT status, COUNT(*) FROM interviews WHERE status IN ({_marks(ACTIVE)}) GROUP BY status",
        [s.value for s in ACTIVE]).fetchall())
    ended = dict(store.db.execute(
        f"SELECT status, COUNT(*) FROM interviews WHERE ended_at >= ? AND status IN ({_marks(COMPLETED + FAILED)}) "
        "GROUP BY status", [start_of_today(store, timezone), *COMPLETED, *FAILED]).fetchall())
    return {"dialing": live.get("dialing", 0), "ringing": live.get("ringing", 0),
            "in_progress": live.get("in_progress", 0),
            "completed_today": sum(ended.get(s, 0) for s in COMPLETED),
            "failed_today": sum(ended.get(s, 0) for s in FAILED),
            "failed_today_by_status": {s: ended[s] for s in FAILED if ended.get(s)}}


def _last_turn(store: SessionStore, interview_id: str) -> dict[str, Any] | None:
    return next(store.db.query("SELECT turn_number, role, text, start_ms FROM turns WHERE interview_id = ? "
                               "ORDER BY turn_number DESC LIMIT 1", [interview_id]), None)


def _current_factor(store: SessionStore, row: dict[str, Any], session) -> str | None:
    """From the session when this process runs the call; else (SIP media workers) from its stored turns."""
    if session is not None:
        return session.interviewer.current_factor
    if row["status"] != "in_progress":
        return None
    template = store.get_position(row["position_id"], row["position_version"]).template
    return factor_in_progress(store.turns(row["id"]), template)


def active_calls(store: SessionStore, voice: VoiceRuntime) -> list[dict[str, Any]]:
    rows = store.db.query(
        "SELECT i.id, i.status, i.channel, i.started_at, i.updated_at, i.campaign_id, i.position_id, "
        "i.position_version, c.name AS candidate "
        f"FROM interviews i JOIN candidates c ON c.id = i.candidate_id WHERE i.status IN ({_marks(ACTIVE)}) "
        "ORDER BY i.created_at LIMIT ?", [*(s.value for s in ACTIVE), MAX_ACTIVE_ROWS])
    calls = []
    for row in rows:
        session = voice.active.get(row["id"])
        last = _last_turn(store, row["id"])
        calls.append({"id": row["id"], "candidate": row["candidate"], "channel": row["channel"],
                      "status": row["status"], "campaign_id": row["campaign_id"],
                      # A ringing phone counts from when it started ringing; a call from when it connected.
                      "since": row["started_at"] or row["updated_at"],
                      "current_factor": _current_factor(store, row, session),
                      "turns": last["turn_number"] if last else 0,
                      "last_utterance": {"role": last["role"], "text": last["text"]} if last else None})
    return calls


def campaign_progress(store: SessionStore, settings: Settings) -> list[dict[str, Any]]:
    """The latest campaigns' progress bars, with why one cannot dial on this server (blocked_reason)."""
    campaigns = list(store.db.query(
        "SELECT id, name, status, channel, (SELECT COUNT(*) FROM campaign_candidates cc WHERE cc.campaign_id = "
        "campaigns.id) AS candidates FROM campaigns ORDER BY created_at DESC LIMIT ?", [CAMPAIGN_ROWS]))
    result = []
    for campaign in campaigns:
        by_status = dict(store.db.execute("SELECT status, COUNT(*) FROM interviews WHERE campaign_id = ? "
                                          "GROUP BY status", [campaign["id"]]).fetchall())
        completed = sum(by_status.get(s, 0) for s in COMPLETED)
        ended = sum(n for s, n in by_status.items() if s in ENDED)
        active = sum(n for s, n in by_status.items() if s in ACTIVE)
        total = max(campaign["candidates"], sum(by_status.values()))
        result.append({**campaign, "total": total, "completed": completed, "failed": ended - completed,
                       "active": active, "scheduled": by_status.get(Status.SCHEDULED.value, 0),
                       "blocked_reason": campaign_blocked_reason(settings, campaign["channel"], campaign["status"])})
    return result


def recent_interviews(store: SessionStore) -> list[dict[str, Any]]:
    return list(store.db.query(
        "SELECT i.id, i.status, i.channel, i.updated_at, c.name AS candidate FROM interviews i "
        "JOIN candidates c ON c.id = i.candidate_id ORDER BY i.updated_at DESC, i.id LIMIT ?", [RECENT_ROWS]))


def dashboard(store: SessionStore, voice: VoiceRuntime, settings: Settings) -> dict[str, Any]:
    """Everything the dashboard shows at once; sent again whenever any of it changes."""
    return {"counters": counters(store, settings.interviews.default_timezone), "active": active_calls(store, voice),
            "campaigns": campaign_progress(store, settings), "recent": recent_interviews(store)}


def interview_list(store: SessionStore, *, page: int, page_size: int, status: str | None = None,
                   channel: str | None = None, campaign_id: str | None = None, position_id: str | None = None,
                   search: str | None = None) -> tuple[list[dict[str, Any]], int]:
    where, params = [], []
    for column, value in (("i.status", status), ("i.channel", channel), ("i.campaign_id", campaign_id),
                          ("i.position_id", position_id)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if search:
        where.append("c.name LIKE ? ESCAPE '\\'")
        escaped = search[:MAX_SEARCH_CHARS].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(f"%{escaped}%")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    joins = "FROM interviews i JOIN candidates c ON c.id = i.candidate_id JOIN positions p ON p.id = i.position_id " \
            "LEFT JOIN campaigns cp ON cp.id = i.campaign_id"
    total = store.db.execute(f"SELECT COUNT(*) {joins} {clause}", params).fetchone()[0]
    rows = list(store.db.query(
        f"SELECT i.id, i.status, i.channel, i.created_at, i.started_at, i.ended_at, c.name AS candidate, "
        f"p.title AS position, cp.name AS campaign, (SELECT overall FROM scorecards s WHERE s.interview_id = i.id "
        f"ORDER BY s.version DESC LIMIT 1) AS overall, (SELECT v.channel || ' ' || v.status FROM invitations v "
        f"WHERE v.interview_id = i.id ORDER BY v.created_at DESC, v.id DESC LIMIT 1) AS invitation "
        f"{joins} {clause} ORDER BY i.created_at DESC, i.id DESC LIMIT ? OFFSET ?",
        [*params, page_size, (page - 1) * page_size]))
    return rows, total


def filter_choices(store: SessionStore) -> dict[str, Any]:
    return {"campaigns": list(store.db.query("SELECT id, name FROM campaigns ORDER BY created_at DESC LIMIT 100")),
            "positions": list(store.db.query("SELECT id, title FROM positions ORDER BY created_at DESC LIMIT 100"))}


def interview_detail(store: SessionStore, voice: VoiceRuntime, interview_id: str) -> dict[str, Any]:
    """One interview in full for its page: the API's record plus what a reader needs around it."""
    interview = store.get_interview(interview_id)  # NotFound -> 404
    candidate = store.get_candidate(interview.candidate_id)
    position = store.get_position(interview.position_id, interview.position_version)
    scorecards = store.scorecards(interview.id)
    session = voice.active.get(interview.id)
    recording = interview.recording_path and Path(interview.recording_path).is_file()
    return {
        **interview_json(interview),
        "candidate": {"id": candidate.id, "name": candidate.name, "phone": mask_phone(candidate.phone),
                      "email": candidate.email},
        "position": {"id": position.id, "title": position.title, "version": position.version,
                     "factors": [{"name": f.name, "weight": f.weight} for f in position.factors]},
        "turns": [turn_json(t) for t in store.turns(interview.id)],
        "scorecard": scorecard_json(scorecards[-1]) if scorecards else None,
        "scorecard_versions": len(scorecards),
        "events": [event_json(e) for e in store.events(interview_id=interview.id, limit=500)],
        "current_factor": _current_factor(store, {"id": interview.id, "status": interview.status,
                                                  "position_id": interview.position_id,
                                                  "position_version": interview.position_version}, session),
        "recording_url": f"/admin/interviews/{interview.id}/recording" if recording else None,
        "invitations": [{"id": v.id, "channel": v.channel, "status": v.status, "reason": v.reason,
                         "attempts": v.attempts, "sent_at": v.sent_at, "updated_at": v.updated_at}
                        for v in store.invitations_of(interview.id)],
        "can_invite": interview.channel == "web" and interview.status == "scheduled",
        "led_by": interview.led_by,
        "notes": store.notes(interview.id),
    }
