"""Several OS processes, each with its own SessionStore on the same SQLite file, write at once (as media
workers, scorers and the server do): no turn is lost or doubled, turn numbers stay contiguous, every
status change queues its webhook deliveries, and the file stays sound."""
from __future__ import annotations

import multiprocessing
from datetime import timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from models.db import utcnow
from models.store import SessionStore

PROCESSES = 4
INTERVIEWS_PER_PROCESS = 3
TURNS = 40
SHARED_TURNS_PER_PROCESS = 30
TIMEOUT_S = 60
SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: no SQLite connection inherited by fork
_start: Barrier | None = None  # in each worker process: lets the workers begin writing together


def _keep_barrier(barrier: Barrier) -> None:
    global _start
    _start = barrier


@pytest.fixture(scope="module")
def pool():
    """Four worker processes for the whole module: spawning them (imports and all) is the slow part."""
    with SPAWN.Pool(PROCESSES, initializer=_keep_barrier, initargs=(SPAWN.Barrier(PROCESSES),)) as workers:
        yield workers


def run_together(pool, target, args_per_worker: list[tuple]) -> None:
    """One task per worker; each waits at the barrier, so no worker can take two and all four overlap."""
    assert len(args_per_worker) == PROCESSES
    tasks = [pool.apply_async(target, args) for args in args_per_worker]
    for task in tasks:
        task.get(TIMEOUT_S)  # re-raises a worker's exception here


def text_of(iid: str, number: int) -> str:
    return f"{iid} says line {number}"


def write_interviews(path: str, interview_ids: list[str]) -> None:
    """One worker: interleave turns across its interviews, then end them (queueing webhooks)."""
    store = SessionStore(path)
    _start.wait(TIMEOUT_S)
    for number in range(1, TURNS + 1):
        for iid in interview_ids:
            store.add_turn(iid, role="agent" if number % 2 else "candidate", text=text_of(iid, number),
                           start_ms=number * 1000, end_ms=number * 1000 + 900, stt_confidence=0.9)
    for iid in interview_ids:
        store.transition(iid, "completed")
    store.close()


def write_shared(path: str, iid: str, worker: int) -> None:
    store = SessionStore(path)
    _start.wait(TIMEOUT_S)
    for number in range(SHARED_TURNS_PER_PROCESS):
        store.add_turn(iid, role="candidate", text=f"p{worker}-{number}", start_ms=number, end_ms=number + 1)
    store.close()


def interviews_in_progress(store: SessionStore, template, count: int) -> list[str]:
    position = store.create_position(template).id
    ids = []
    for n in range(count):
        candidate = store.upsert_candidate({"name": f"Candidate {n}", "phone": f"+1415555{n:04d}"})[0].id
        iid = store.create_interview(candidate_id=candidate, position_id=position, channel="sip",
                                     expires_at=utcnow() + timedelta(days=1))[0].id
        store.transition(iid, "in_progress")
        ids.append(iid)
    return ids


def test_processes_writing_many_interviews_at_once(pool, tmp_path: Path, sample_template) -> None:
    path = str(tmp_path / "shared.db")
    store = SessionStore(path)
    endpoints = [store.create_webhook(url=f"https://hooks.example.com/{n}", events=events).id for n, events in
                 enumerate((["interview.status_changed", "interview.completed"], ["interview.completed"]))]
    ids = interviews_in_progress(store, sample_template, PROCESSES * INTERVIEWS_PER_PROCESS)
    last_event_before = store.events(limit=1_000_000)[-1].id
    run_together(pool, write_interviews, [(path, ids[w::PROCESSES]) for w in range(PROCESSES)])

    for iid in ids:
        turns = store.turns(iid)
        assert [t.turn_number for t in turns] == list(range(1, TURNS + 1)), iid
        assert [t.text for t in turns] == [text_of(iid, n) for n in range(1, TURNS + 1)]
        assert store.get_interview(iid).status == "completed"
    assert store.db["turns"].count == len(ids) * TURNS

    # Per ended interview: status_changed to endpoint 0, completed to both.
    new_deliveries = list(store.db.query(
        "SELECT d.endpoint_id, d.event_type, e.interview_id FROM webhook_deliveries d JOIN events e "
        "ON e.id = d.event_id WHERE e.id > ?", [last_event_before]))
    assert len(new_deliveries) == 3 * len(ids)
    expected = {(endpoints[0], "interview.status_changed"), (endpoints[0], "interview.completed"),
                (endpoints[1], "interview.completed")}
    for iid in ids:
        assert {(d["endpoint_id"], d["event_type"]) for d in new_deliveries if d["interview_id"] == iid} == expected
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
    store.close()


def test_processes_writing_the_same_interview_get_contiguous_turn_numbers(pool, tmp_path: Path,
                                                                          sample_template) -> None:
    path = str(tmp_path / "shared.db")
    store = SessionStore(path)
    [iid] = interviews_in_progress(store, sample_template, 1)
    run_together(pool, write_shared, [(path, iid, w) for w in range(PROCESSES)])

    turns = store.turns(iid)
    assert [t.turn_number for t in turns] == list(range(1, PROCESSES * SHARED_TURNS_PER_PROCESS + 1))
    assert sorted(t.text for t in turns) == sorted(f"p{w}-{n}" for w in range(PROCESSES)
                                                   for n in range(SHARED_TURNS_PER_PROCESS))
    for worker in range(PROCESSES):  # each process's own turns keep the order it wrote them in
        mine = [int(t.text.split("-")[1]) for t in turns if t.text.startswith(f"p{worker}-")]
        assert mine == list(range(SHARED_TURNS_PER_PROCESS))
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()
