"""The store on a real PostgreSQL cluster (tests/postgres.py) where it differs from SQLite: the schema
version table, several processes migrating at once, `phonescreen db migrate-to URL` copying a SQLite store
(every row and id, numbering going on after the copy, a non-empty target refused with nothing changed),
the password kept out of messages, and how the store's SQL is translated (logic, no database)."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from campaign_harness import WEDNESDAY_NOON
from models.db import SCHEMA_TABLE, redact
from models.pg import translate
from models.schema import LATEST, schema_version
from models.store import SessionStore

ROOT = Path(__file__).resolve().parents[1]


def test_translate_placeholders_quotes_and_sqlite_words() -> None:
    assert translate("SELECT * FROM [t] WHERE a = ? AND b LIKE '%?%' ESCAPE '\\'") == \
        "SELECT * FROM \"t\" WHERE a = %s AND b ILIKE '%%?%%' ESCAPE '\\'"
    assert translate("lease_owner IS NOT ?") == "lease_owner IS DISTINCT FROM %s"
    assert translate("EXISTS (SELECT 1 FROM json_each(candidates.tags) WHERE value = ?)") == (
        "EXISTS (SELECT 1 FROM jsonb_array_elements_text((candidates.tags)::jsonb) AS json_each(value) "
        "WHERE value = %s)")
    assert translate("SELECT 'it''s ?' , ?") == "SELECT 'it''s ?' , %s"
    assert redact("postgresql://app:s3cret@db:5432/ps") == "postgresql://app:***@db:5432/ps"


def test_newer_schema_is_refused(pg_cluster) -> None:
    url = pg_cluster.new_database()
    SessionStore(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"UPDATE {SCHEMA_TABLE} SET version = %s", [LATEST + 1])
    with pytest.raises(RuntimeError, match="newer than this program"):
        SessionStore(url)


def _open(url: str, out) -> None:
    store = SessionStore(url)
    out.put(schema_version(store.db))
    store.close()


def test_processes_starting_together_migrate_once(pg_cluster) -> None:
    url = pg_cluster.new_database()
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=_open, args=(url, out)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert sorted(out.get(timeout=5) for _ in workers) == [LATEST] * 4
    with psycopg.connect(url) as conn:
        assert conn.execute(f"SELECT version FROM {SCHEMA_TABLE}").fetchall() == [(LATEST,)]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONESCREEN_")}
    env.update(PHONESCREEN_STORE_PATH=str(tmp_path / "store.db"), PHONESCREEN_LOG_FORMAT="text",
               PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


def _fill(store: SessionStore, sample_template) -> str:
    """A store with a bit of everything: a campaign attempt, an interview with turns, events, a delivery."""
    from campaign_harness import make_campaign
    store.create_webhook(url="http://127.0.0.1:9/hook", events=["interview.status_changed"])
    campaign = make_campaign(store, sample_template, ["+12025550001", "+12025550002"], max_concurrent_calls=2)
    store.campaign_action(campaign.id, "start")
    claim = store.claim_due_attempts(campaign.id, "node-a", limit=1, lease_s=60)[0]
    for status in ("dialing", "ringing", "in_progress"):
        store.transition(claim.interview_id, status)
    store.add_turn(claim.interview_id, role="agent", text="Hello Ana, ready?", start_ms=0, end_ms=900)
    store.add_turn(claim.interview_id, role="candidate", text="Yes, I'm ready.", start_ms=1000, end_ms=1900)
    store.set_turn_evaluation(claim.interview_id, 2, role="candidate", kind="answer", evaluation={"ok": True})
    store.add_do_not_call("+12025550099", "asked")
    store.create_api_key("ats", ["interviews:read"])
    return claim.interview_id


def _rows(db) -> dict[str, list[tuple]]:
    return {t: sorted(map(repr, (tuple(r.values()) for r in db.query(f'SELECT * FROM "{t}"'))))
            for t in sorted(db.table_names())}


def test_migrate_to_copies_every_row_and_refuses_a_full_target(tmp_path, pg_cluster, sample_template) -> None:
    source = SessionStore(tmp_path / "store.db", clock=lambda: WEDNESDAY_NOON)  # within the calling window
    iid = _fill(source, sample_template)
    before = _rows(source.db)
    source.close()
    url = pg_cluster.new_database()

    done = _cli(tmp_path, "db", "migrate-to", url)
    assert done.returncode == 0, done.stderr
    assert "copied" in done.stdout and "turns" in done.stdout

    target = SessionStore(url, clock=lambda: WEDNESDAY_NOON)
    try:
        assert _rows(target.db) == before  # every row, every id, as it was
        assert [t.text for t in target.turns(iid)] == ["Hello Ana, ready?", "Yes, I'm ready."]
        last_event = max(e.id for e in target.events(interview_id=iid))
        target.add_turn(iid, role="agent", text="First question.", start_ms=2000, end_ms=2500)
        target.transition(iid, "completed")  # numbering goes on after the copied ids
        assert max(e.id for e in target.events(interview_id=iid)) > last_event
        attempts = target.list_attempts(target.get_interview(iid).campaign_id)
        assert [a.lease_owner for a in attempts if a.interview_id == iid] == ["node-a"]  # the lease came along
        after = _rows(target.db)
    finally:
        target.close()

    again = _cli(tmp_path, "db", "migrate-to", url)  # into a store that holds rows: refused, nothing changed
    assert again.returncode == 2 and "not empty" in again.stderr
    check = SessionStore(url)
    assert _rows(check.db) == after
    check.close()


def test_migrate_to_an_unreachable_url_says_why_without_the_password(tmp_path) -> None:
    SessionStore(tmp_path / "store.db").close()
    failed = _cli(tmp_path, "db", "migrate-to", "postgresql://app:s3cret@127.0.0.1:9/none")
    assert failed.returncode == 2
    assert "cannot open the target store postgresql://app:***@127.0.0.1:9/none" in failed.stderr
    assert "s3cret" not in failed.stderr + failed.stdout


def test_erasure_on_postgres_removes_every_row_of_the_candidate(pg_cluster, sample_template) -> None:
    store = SessionStore(pg_cluster.new_database(), clock=lambda: WEDNESDAY_NOON)
    try:
        iid = _fill(store, sample_template)
        store.transition(iid, "completed")
        candidate = store.get_interview(iid).candidate_id
        assert store.erase_candidate(candidate).interview_ids == [iid]
        count = lambda sql, value: store.db.execute(sql, [value]).fetchone()[0]  # noqa: E731
        assert count("SELECT COUNT(*) FROM turns WHERE interview_id = ?", iid) == 0
        assert count("SELECT COUNT(*) FROM turn_evaluations WHERE interview_id = ?", iid) == 0
        assert count("SELECT COUNT(*) FROM call_attempts WHERE candidate_id = ?", candidate) == 0
        assert count("SELECT COUNT(*) FROM webhook_deliveries WHERE payload LIKE ?", f"%{iid}%") == 0
        assert [e.type for e in store.events(limit=1000)].count("candidate.erased") == 1
    finally:
        store.close()
