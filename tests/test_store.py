"""The session store on a real SQLite file and a real PostgreSQL database: schema, pragmas, versioning,
idempotent upserts, turns, scorecards; `db migrate-to` copying a SQLite store into PostgreSQL."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from models.db import integrity_errors, is_postgres
from models.lifecycle import Status
from models.schema import LATEST, migrate, schema_version
from models.store import Conflict, NotFound, SessionStore, token_hash
from postgres import STORE_BACKENDS


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request) -> str:
    return request.param


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def _interview(store: SessionStore, sample_template, channel: str = "sip"):
    position = store.create_position(sample_template)
    candidate, _ = store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100", "timezone": "America/Chicago"})
    return store.create_interview(candidate_id=candidate.id, position_id=position.id, channel=channel,
                                  expires_at=store.clock() + timedelta(days=7))


def test_schema_pragmas_and_idempotent_migration(store: SessionStore) -> None:
    assert schema_version(store.db) == LATEST
    assert migrate(store.db) == 0
    if not is_postgres(store.db):
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    with pytest.raises(integrity_errors()):  # foreign keys are enforced
        store.db.execute("INSERT INTO turns (interview_id, turn_number, role, text) VALUES ('nope', 1, 'agent', 'x')")


def test_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "future.db"
    SessionStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this program"):
        SessionStore(path)


def test_position_versions_are_kept(store: SessionStore, sample_template) -> None:
    from dataclasses import replace
    position = store.create_position(sample_template)
    assert position.version == 1 and position.rubric_version == sample_template.fingerprint()
    changed = replace(sample_template, factors=(replace(sample_template.factors[0], weight=9.0),
                                                *sample_template.factors[1:]))
    updated = store.update_position(position.id, changed)
    assert updated.version == 2 and updated.rubric_version != position.rubric_version
    assert store.update_position(position.id, changed).version == 2  # unchanged template: no new version
    assert store.get_position(position.id, version=1).template == sample_template
    with pytest.raises(NotFound):
        store.get_position(position.id, version=7)


def test_candidate_upsert_is_idempotent_on_external_id_then_phone(store: SessionStore) -> None:
    first, created = store.upsert_candidate({"name": "Bo", "phone": "+442071838750", "external_id": "ats-1"})
    again, created_again = store.upsert_candidate({"name": "Bo Chan", "phone": "+442071838750", "external_id": "ats-1"})
    assert created and not created_again and again.id == first.id and again.name == "Bo Chan"
    by_phone, created3 = store.upsert_candidate({"name": "Bo C.", "phone": "+442071838750"})
    assert not created3 and by_phone.id == first.id
    _, total = store.list_candidates()
    assert total == 1


def test_interview_token_is_stored_hashed(store: SessionStore, sample_template) -> None:
    interview, token = _interview(store, sample_template)
    assert len(token) >= 40
    raw = store.db.execute("SELECT join_token_hash FROM interviews WHERE id = ?", [interview.id]).fetchone()[0]
    assert raw == token_hash(token) and token not in raw
    assert store.find_interview_by_token(token).id == interview.id
    assert store.find_interview_by_token(token + "x") is None


def test_turns_commit_one_by_one_and_only_while_in_progress(store: SessionStore, sample_template) -> None:
    interview, _ = _interview(store, sample_template)
    with pytest.raises(Conflict):
        store.add_turn(interview.id, role="agent", text="Hello", start_ms=0, end_ms=900)
    for status in ("dialing", "ringing", "in_progress"):
        store.transition(interview.id, status)
    store.add_turn(interview.id, role="agent", text="Hello Ana.", start_ms=0, end_ms=900)
    # a second connection (another process) sees the committed turn at once
    other = SessionStore(store.path)
    assert [t.text for t in other.turns(interview.id)] == ["Hello Ana."]
    store.add_turn(interview.id, role="candidate", text="Hi there.", start_ms=1200, end_ms=2100,
                   stt_confidence=0.91)
    store.add_turn(interview.id, role="agent", text="Great, so tell me", start_ms=2400, end_ms=3000,
                   interrupted=True)
    turns = other.turns(interview.id)
    assert [t.turn_number for t in turns] == [1, 2, 3] and turns[2].interrupted and turns[1].stt_confidence == 0.91
    with pytest.raises(ValueError):
        store.add_turn(interview.id, role="narrator", text="x", start_ms=0, end_ms=1)
    store.transition(interview.id, "completed")
    with pytest.raises(Conflict):
        store.add_turn(interview.id, role="candidate", text="late", start_ms=5000, end_ms=6000)
    assert other.get_interview(interview.id).ended_at is not None
    other.close()


def test_scorecards_are_versioned_and_make_report_ready(store: SessionStore, sample_template) -> None:
    interview, _ = _interview(store, sample_template)
    with pytest.raises(Conflict):
        store.save_scorecard(interview.id, status="scored", overall=50, rubric_version="r", data={})
    for status in ("dialing", "in_progress", "completed"):
        store.transition(interview.id, status)
    first = store.save_scorecard(interview.id, status="scored", overall=71.5, rubric_version="r1", data={"a": 1})
    assert store.get_interview(interview.id).status == Status.REPORT_READY
    second = store.save_scorecard(interview.id, status="scored", overall=73.0, rubric_version="r1", data={"a": 2})
    assert (first.version, second.version) == (1, 2)
    assert [s.overall for s in store.scorecards(interview.id)] == [71.5, 73.0]
    types = [e.type for e in store.events(interview_id=interview.id)]
    assert types.count("interview.scored") == 2 and "interview.completed" in types


def test_dialing_counts_attempts_and_expiry_sweep(settings, sample_template) -> None:
    clock = FakeClock()
    store = SessionStore(settings.store.target, clock=clock)
    interview, _ = _interview(store, sample_template)
    clock.now += timedelta(days=8)
    assert store.expire_due() == [interview.id]
    assert store.get_interview(interview.id).status == Status.EXPIRED
    with pytest.raises(Conflict):  # an expiry date in the past is refused
        store.create_interview(candidate_id=interview.candidate_id, position_id=interview.position_id,
                               channel="web", expires_at=clock.now - timedelta(seconds=1))
    fresh, _ = store.create_interview(candidate_id=interview.candidate_id, position_id=interview.position_id,
                                      channel="sip", expires_at=clock.now + timedelta(days=1), rerun_of=interview.id)
    assert store.transition(fresh.id, "dialing").attempt_count == 1
    assert store.get_interview(interview.id).status == Status.EXPIRED  # the old one is kept as it was
    store.close()


def test_phone_channel_needs_a_phone(store: SessionStore, sample_template) -> None:
    position = store.create_position(sample_template)
    candidate, _ = store.upsert_candidate({"name": "Web Only", "email": "w@example.org"})
    with pytest.raises(Conflict, match="no phone"):
        store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="twilio",
                               expires_at=store.clock() + timedelta(days=1))
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                                          expires_at=store.clock() + timedelta(days=1))
    assert interview.channel == "web"


def test_api_keys_are_hashed_and_revocable(store: SessionStore) -> None:
    key, secret = store.create_api_key("ats", ["interviews:read"])
    stored = store.db.execute("SELECT key_hash FROM api_keys").fetchone()[0]
    assert secret.startswith("psk_") and secret not in stored
    assert store.authenticate(secret).id == key.id
    store.revoke_api_key(key.id)
    assert store.authenticate(secret) is None


def _claim_deliveries(target: str, out) -> None:
    store = SessionStore(target)
    claimed = []
    for _ in range(30):
        claimed += [d.id for d in store.claim_due_deliveries(3, lease_s=600)]
    out.put(claimed)
    store.close()


def test_each_due_delivery_is_claimed_by_one_process(settings, store: SessionStore, sample_template) -> None:
    import multiprocessing
    store.create_webhook(url="http://127.0.0.1:9/hook", events=["interview.status_changed"])
    for _ in range(10):
        interview, _ = _interview(store, sample_template)
        for status in ("dialing", "ringing", "in_progress"):  # 3 deliveries each
            store.transition(interview.id, status)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=_claim_deliveries, args=(settings.store.target, out)) for _ in range(3)]
    for worker in workers:
        worker.start()
    claimed = [d for _ in workers for d in out.get(timeout=120)]
    for worker in workers:
        worker.join(30)
    assert len(claimed) == 30 and len(set(claimed)) == 30  # every delivery once, none twice


def test_a_claimed_delivery_falls_due_again_when_its_lease_ends(settings, sample_template) -> None:
    clock = FakeClock()
    first, second = SessionStore(settings.store.target, clock=clock), SessionStore(settings.store.target, clock=clock)
    try:
        first.create_webhook(url="http://127.0.0.1:9/hook", events=["interview.status_changed"])
        interview, _ = _interview(first, sample_template)
        first.transition(interview.id, "dialing")
        [delivery] = first.claim_due_deliveries(10, lease_s=60)
        assert second.claim_due_deliveries(10, lease_s=60) == []  # claimed: the other node does not send it
        clock.now += timedelta(seconds=61)  # the first node died while sending
        assert [d.id for d in second.claim_due_deliveries(10, lease_s=60)] == [delivery.id]
    finally:
        first.close()
        second.close()


def test_work_leases_let_one_node_do_a_job(settings) -> None:
    clock = FakeClock()
    first, second = SessionStore(settings.store.target, clock=clock), SessionStore(settings.store.target, clock=clock)
    try:
        assert first.claim_work("score:int_1", "node-a", 60)
        assert not second.claim_work("score:int_1", "node-b", 60)
        assert first.claim_work("score:int_1", "node-a", 60)  # its own lease, renewed
        assert second.claim_work("score:int_2", "node-b", 60)  # another job
        first.release_work("score:int_1", "node-a")
        assert second.claim_work("score:int_1", "node-b", 60)
        clock.now += timedelta(seconds=61)  # node b died: its leases run out
        assert first.claim_work("score:int_2", "node-a", 60)
    finally:
        first.close()
        second.close()
