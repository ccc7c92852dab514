"""Data protection: erasure of a candidate everywhere (rows, file bytes, recordings), retention of old
transcripts and recordings, signed recording URLs, and the polite end of an interview. Real interviews
over the in-process line (Whisper, Piper, SQLite), scored by the real scorer."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta, timezone
from pathlib import Path

from config.settings import RetentionSettings, ServerSettings
from dialer.simulator import CandidateScript, SimulatedCandidate, connected_interview, run_call
from ivr.session import POLITE_END, InterviewSession
from models.lifecycle import Status
from models.store import SessionStore
from scoring.job import rescore_with_own_store
from server.app import make_app
from server.retention import retention_forever
from sip_harness import SHORT_ANSWERS, short_template

NAME, PHONE = "Ana Ruiz", "+14155550100"
OTHER_ANSWERS = ("Yes, I agree.", "A man was angry about a late parcel. I listened, apologized, tracked it with him "
                 "and called him back when it arrived.")
SECRETS = ("Ana Ruiz", "Ruiz", "4155550100", "415 555 0100", "charged twice", "next morning")


async def interview_of(store: SessionStore, settings, engines, recordings: Path, *, name: str = NAME,
                       phone: str = PHONE, answers: tuple[str, ...] = SHORT_ANSWERS) -> str:
    """A real interview over the in-process line, recorded and scored; its id."""
    iid = connected_interview(store, short_template(), name=name, phone=phone)
    session = InterviewSession.for_interview(store, iid, engines=engines, voice=settings.voice,
                                             recordings_dir=recordings)
    assert await run_call(session, SimulatedCandidate(CandidateScript("short", answers))) == Status.COMPLETED
    rescore_with_own_store(settings, store.path, iid)
    return iid


def text_cells(store: SessionStore) -> list[str]:
    cells = []
    for table in store.db.table_names():
        for row in store.db.query(f"SELECT * FROM [{table}]"):
            cells.extend(str(v) for v in row.values() if isinstance(v, str))
    return cells


def found(haystack: str, needles=SECRETS) -> list[str]:
    return [n for n in needles if n.lower() in haystack.lower()]


async def test_erasure_leaves_no_row_and_no_file_with_the_candidate(settings, store, engines, make_key,
                                                                    aiohttp_client, tmp_path) -> None:
    recordings = Path(settings.store.recordings_dir)
    store.create_webhook(url="http://127.0.0.1:9/hook", events=["interview.status_changed", "interview.completed",
                                                                "interview.scored"])
    erased_id = await interview_of(store, settings, engines, recordings)
    kept_id = await interview_of(store, settings, engines, recordings, name="Bo Chen", phone="+14155550123",
                                 answers=OTHER_ANSWERS)
    candidate_id = store.get_interview(erased_id).candidate_id
    kept_recording = store.get_interview(kept_id).recording_path
    assert found(" ".join(text_cells(store)))  # the data is there before
    client = await aiohttp_client(make_app(settings, store, background_jobs=False))

    writer = await client.delete(f"/api/v1/candidates/{candidate_id}", headers=make_key(["candidates:write"]))
    assert writer.status == 403  # erasure needs its own scope
    response = await client.delete(f"/api/v1/candidates/{candidate_id}", headers=make_key(["candidates:erase"]))
    assert response.status == 204, await response.text()

    assert found(" ".join(text_cells(store))) == []
    for path in [Path(store.path), Path(store.path + "-wal"), *recordings.rglob("*")]:
        if path.is_file():
            assert found(path.read_bytes().decode("latin-1")) == [], path
    assert not (recordings / f"{erased_id}.wav").exists()
    [audit] = [e for e in store.events(limit=1000) if e.type == "candidate.erased"]
    assert audit.entity_id == candidate_id and audit.data == {"interviewIds": [erased_id]}
    # Everyone else's records are untouched.
    assert Path(kept_recording).is_file() and store.turns(kept_id) and store.scorecards(kept_id)
    assert (await client.get(f"/api/v1/candidates/{candidate_id}", headers=make_key())).status == 404


async def test_erasure_waits_for_a_call_under_way(settings, store, make_key, aiohttp_client) -> None:
    iid = connected_interview(store, short_template())
    client = await aiohttp_client(make_app(settings, store, background_jobs=False), headers=make_key())
    response = await client.delete(f"/api/v1/candidates/{store.get_interview(iid).candidate_id}")
    assert response.status == 409 and "under way" in (await response.json())["error"]["message"]
    assert store.get_interview(iid).status == Status.IN_PROGRESS


async def test_retention_purges_old_transcripts_and_recordings_daily(settings, engines, tmp_path) -> None:
    now = [datetime(2030, 1, 1, tzinfo=timezone.utc)]
    store = SessionStore(settings.store.path, clock=lambda: now[0])
    settings = dataclasses.replace(settings, retention=RetentionSettings(days=30, keep_scorecards=True))
    recordings = Path(settings.store.recordings_dir)
    try:
        old_id = await interview_of(store, settings, engines, recordings)
        now[0] += timedelta(days=20)
        new_id = await interview_of(store, settings, engines, recordings, name="Bo Chen", phone="+14155550123")
        now[0] += timedelta(days=15)  # the first ended 35 days ago, the second 15
        old_recording = Path(store.get_interview(old_id).recording_path)
        job = asyncio.create_task(retention_forever(store, settings, interval_s=3600))
        try:
            for _ in range(100):  # the job runs once at start; 10 s, bounded
                if not store.turns(old_id):
                    break
                await asyncio.sleep(0.1)
        finally:
            job.cancel()
        assert store.turns(old_id) == [] and not old_recording.exists()
        assert store.get_interview(old_id).recording_path is None
        [card] = store.scorecards(old_id)  # kept, without the candidate's words
        assert card.data["factors"] and all(f["citations"] == [] for f in card.data["factors"])
        assert "charged twice" not in str(card.data)
        assert store.turns(new_id) and Path(store.get_interview(new_id).recording_path).is_file()
        assert any(f["citations"] for f in store.scorecards(new_id)[0].data["factors"])
    finally:
        store.close()


async def test_recordings_are_served_only_through_short_lived_signed_urls(settings, engines, aiohttp_client) -> None:
    now = [datetime(2030, 1, 1, tzinfo=timezone.utc)]
    store = SessionStore(settings.store.path, clock=lambda: now[0])
    settings = dataclasses.replace(settings, server=ServerSettings(recording_url_ttl_s=3600))
    try:
        iid = await interview_of(store, settings, engines, Path(settings.store.recordings_dir))
        _, key = store.create_api_key("reader", ["interviews:read"])
        client = await aiohttp_client(make_app(settings, store, background_jobs=False))
        api = {"Authorization": f"Bearer {key}"}
        assert (await client.get(f"/api/v1/interviews/{iid}/recording-url")).status == 401
        body = await (await client.get(f"/api/v1/interviews/{iid}/recording-url", headers=api)).json()
        path = body["url"].removeprefix(settings.public_url)
        assert path.startswith(f"/recordings/{iid}?expires=")
        response = await client.get(path)  # no API key: the URL is the permission
        assert response.status == 200 and response.content_type == "audio/wav"
        assert await response.read() == Path(store.get_interview(iid).recording_path).read_bytes()
        forged = path[:-1] + ("0" if path[-1] != "0" else "1")
        assert (await client.get(forged)).status == 403
        assert (await client.get(path.replace(iid, "int_other"))).status == 403
        assert (await client.get(f"/recordings/{iid}")).status == 403
        now[0] += timedelta(seconds=3601)
        assert (await client.get(path)).status == 403  # expired
        other = connected_interview(store, short_template(), name="Bo Chen", phone="+14155550123")
        assert (await client.get(f"/api/v1/interviews/{other}/recording-url", headers=api)).status == 404
    finally:
        store.close()


async def test_end_politely_says_goodbye_and_ends_partial_with_every_turn(settings, store, engines, tmp_path) -> None:
    iid = connected_interview(store, short_template())
    session = InterviewSession.for_interview(store, iid, engines=engines, voice=settings.voice, recordings_dir=tmp_path)
    call = asyncio.create_task(run_call(session, SimulatedCandidate(CandidateScript("short", SHORT_ANSWERS))))
    for _ in range(1200):  # 120 s, bounded
        if any(t.role == "candidate" for t in store.turns(iid)) or call.done():
            break
        await asyncio.sleep(0.1)
    session.end_politely("shutdown")
    assert await asyncio.wait_for(call, 240) == Status.PARTIAL  # bounded; slow only on a loaded machine
    turns = store.turns(iid)
    assert store.get_interview(iid).status == Status.PARTIAL
    assert "agree" in next(t.text for t in turns if t.role == "candidate").lower()
    # Heard in full: said again after the candidate's words when an answer was already on its way.
    assert [t for t in turns if t.role == "agent"][-1].text.endswith(" ".join(POLITE_END))
