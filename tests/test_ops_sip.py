"""Operations with real SIP calls (pjsua2 media workers dialing simulated candidate phones on 127.0.0.1):
metrics and health after an interview dialed by the server, an online backup taken mid-call, and a
SIGTERM to `phonescreen serve` with two interviews under way."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from dialer.sip.pool import MediaWorkerPool
from ivr.session import POLITE_END
from models.lifecycle import Status
from models.store import SessionStore
from server.app import make_app
from server.cli import main
from sip_harness import (REPO, SHORT_ANSWERS, SHORT_TEMPLATE, free_port, new_interview, short_template, sim_phone,
                         sip_settings)

SHORT_SCRIPT = {"name": "short", "answers": list(SHORT_ANSWERS)}
PHONES = ("+14155550100", "+14155550101")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def until(condition, timeout_s: float = 180.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.2)


async def schedule(client, phones: tuple[str, ...]) -> list[str]:
    """A position, then one candidate and one SIP interview per phone, through the API."""
    position = await (await client.post("/api/v1/positions/import", data=SHORT_TEMPLATE,
                                        headers={"Content-Type": "application/toml"})).json()
    ids = []
    for i, phone in enumerate(phones):
        candidate = await (await client.post("/api/v1/candidates",
                                             json={"name": f"Ana Ruiz {i}", "phone": phone})).json()
        response = await client.post("/api/v1/interviews", json={"candidateId": candidate["id"],
                                                                 "positionId": position["id"], "channel": "sip"})
        assert response.status == 201, await response.text()
        ids.append((await response.json())["id"])
    return ids


async def test_metrics_and_readiness_after_a_sip_interview_dialed_by_the_server(settings, store, make_key,
                                                                                aiohttp_client, tmp_path) -> None:
    with sim_phone(tmp_path, [SHORT_SCRIPT], assign={PHONES[0]: "short"}) as phone:
        base = sip_settings(settings)
        settings = dataclasses.replace(base, sip=dataclasses.replace(base.sip, domain=phone.address))
        client = await aiohttp_client(make_app(settings, store, background_jobs=True), headers=make_key())
        ready = await (await client.get("/readyz")).json()
        assert ready["status"] == "ready" and "not started" in ready["checks"]["mediaWorkers"]["detail"]
        [interview_id] = await schedule(client, PHONES[:1])

        async def ended() -> bool:
            return store.get_interview(interview_id).status not in ("scheduled", "dialing", "ringing", "in_progress")
        await until(ended)
    assert store.get_interview(interview_id).status in (Status.COMPLETED, Status.REPORT_READY)
    # The worker reports the call's end over its pipe once the SIP dialog is over, a moment after the
    # store shows the final status.
    async def reported() -> bool:
        text = await (await client.get("/metrics", headers={"Authorization": ""})).text()
        return ("phonescreen_dialer_attempts_total", (("channel", "sip"), ("outcome", "completed"))) in samples(text)
    await until(reported, timeout_s=30)
    response = await client.get("/metrics", headers={"Authorization": ""})  # no API key needed
    assert response.status == 200 and response.content_type == "text/plain"
    values = samples(await response.text())
    assert values[("phonescreen_interviews_total", (("status", "completed"),))] == 1
    assert values[("phonescreen_dialer_attempts_total", (("channel", "sip"), ("outcome", "completed")))] == 1
    assert values[("phonescreen_first_ai_audio_seconds_count", ())] >= 1
    assert values[("phonescreen_stage_seconds_count", (("stage", "stt"),))] >= 1
    assert values[("phonescreen_stage_seconds_count", (("stage", "tts"),))] >= 1
    assert values[("phonescreen_call_setup_seconds_count", (("channel", "sip"),))] == 1
    assert values[("phonescreen_active_calls", (("channel", "sip"),))] == 0
    assert values[("phonescreen_media_worker_restarts_total", ())] == 0
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["notReady"] == [], body
    assert body["checks"]["mediaWorkers"]["detail"].startswith("1 up")


async def test_readiness_names_what_is_not_ready(settings, store, aiohttp_client) -> None:
    from config.settings import TwilioSettings
    settings = dataclasses.replace(settings, twilio=TwilioSettings(enabled=True, account_sid="nope"))
    client = await aiohttp_client(make_app(settings, store, background_jobs=False))
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 503 and body["status"] == "not_ready" and body["notReady"] == ["twilio"]
    assert "twilio.account_sid" in body["checks"]["twilio"]["detail"]
    assert body["checks"]["store"] == {"ok": True, "detail": "writable"}


async def test_backup_taken_during_a_call_restores_to_a_sound_store(settings, store, tmp_path) -> None:
    settings = sip_settings(settings)
    config = tmp_path / "phonescreen.toml"
    config.write_text(f'[store]\npath = "{settings.store.path}"\n[log]\nlevel = "warning"\n')
    interview_id = new_interview(store, short_template())
    backup = tmp_path / "backup.db"
    with sim_phone(tmp_path, [SHORT_SCRIPT]) as phone:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            call = asyncio.create_task(pool.dial(interview_id, phone.uri("short")))

            async def talking() -> bool:
                return any(t.role == "candidate" for t in store.turns(interview_id)) or call.done()
            await until(talking)
            assert not call.done()
            code = await asyncio.to_thread(main, ["--config", str(config), "db", "backup", str(backup)])
            assert code == 0
            assert (await call).status == Status.COMPLETED
    copy = sqlite3.connect(backup)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        status, = copy.execute("SELECT status FROM interviews WHERE id = ?", [interview_id]).fetchone()
        turns = copy.execute("SELECT role, text FROM turns WHERE interview_id = ? ORDER BY turn_number",
                             [interview_id]).fetchall()
    finally:
        copy.close()
    assert status == Status.IN_PROGRESS and any(r == "candidate" and "agree" in t.lower() for r, t in turns)
    assert len(turns) < len(store.turns(interview_id))  # a snapshot from mid-call
    restored = SessionStore(backup)  # what `phonescreen db migrate` does on a restored file
    try:
        assert restored.get_interview(interview_id).status == Status.IN_PROGRESS
    finally:
        restored.close()
    again = await asyncio.to_thread(main, ["--config", str(config), "db", "backup", str(backup)])
    assert again == 2  # a backup never overwrites a file


async def test_sigterm_ends_two_sip_interviews_politely_and_exits_0(settings, store, tmp_path) -> None:
    grace_s, goodbye_s = 2.0, 30.0
    base = sip_settings(settings)
    port = free_port(socket.SOCK_STREAM)
    _, key = store.create_api_key("test", ["positions:write", "candidates:write", "interviews:write",
                                           "interviews:read"])
    with sim_phone(tmp_path, [SHORT_SCRIPT], assign={p: "short" for p in PHONES}) as phone:
        config = tmp_path / "phonescreen.toml"
        config.write_text(
            f'[server]\nport = {port}\nshutdown_grace_s = {grace_s}\nshutdown_goodbye_s = {goodbye_s}\n'
            f'[store]\npath = "{settings.store.path}"\nrecordings_dir = "{settings.store.recordings_dir}"\n'
            f'[sip]\nport = {base.sip.port}\nrtp_port_start = {base.sip.rtp_port_start}\nrtp_ports_per_worker = 40\n'
            f'domain = "{phone.address}"\nrtp_timeout_s = 4.0\n[log]\nlevel = "info"\nformat = "json"\n')
        server = subprocess.Popen([sys.executable, "-m", "server.cli", "--config", str(config), "serve"], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            assert "listening" in server.stdout.readline()
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}",
                                             headers={"Authorization": f"Bearer {key}"}) as client:
                ids = await schedule(client, PHONES)

                async def both_talking() -> bool:
                    return all(any(t.role == "candidate" for t in store.turns(i)) for i in ids)
                await until(both_talking)
            assert [store.get_interview(i).status for i in ids] == [Status.IN_PROGRESS] * 2
            server.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(server.wait, grace_s + goodbye_s + 60)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        logs = server.stderr.read()
    assert code == 0, logs[-3000:]
    for interview_id in ids:
        interview = store.get_interview(interview_id)
        assert interview.status == Status.PARTIAL, interview
        turns = store.turns(interview_id)
        assert any(t.role == "candidate" and "agree" in t.text.lower() for t in turns)
        assert POLITE_END[0] in [t for t in turns if t.role == "agent"][-1].text, [(t.role, t.text, t.interrupted) for t in turns]
        assert Path(interview.recording_path).is_file()
    # JSON logs: calls carry the interview and SIP Call-ID; phone numbers never appear in full.
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    answered = [line for line in lines if line["msg"] == "call answered"]
    assert {line["interview_id"] for line in answered} == set(ids) and all(line["call_id"] for line in answered)
    assert not any(p in logs or p[1:] in logs for p in PHONES)
