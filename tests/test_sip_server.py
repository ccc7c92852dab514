"""SIP from the outside: `phonescreen call` places one interview and shows it live, and `phonescreen
serve` (its background jobs) dials SIP interviews created through the API. Real calls on 127.0.0.1."""
from __future__ import annotations

import asyncio
import dataclasses

from dialer.simulator import CandidateScript, SimulatedCandidate, connected_interview, run_call
from ivr.session import InterviewSession
from models.lifecycle import Status
from server.app import make_app
from server.cli import main
from sip_harness import SHORT_ANSWERS, SHORT_TEMPLATE, short_template, sim_phone, sip_settings
from voice import record_shape, word_error_rate

SHORT_SCRIPT = {"name": "short", "answers": list(SHORT_ANSWERS)}


def test_call_command_places_one_interview_and_shows_it_live(settings, store, tmp_path, capsys) -> None:
    settings = sip_settings(settings)
    config = tmp_path / "phonescreen.toml"
    config.write_text(f'[store]\npath = "{settings.store.path}"\nrecordings_dir = "{settings.store.recordings_dir}"\n'
                      f'[sip]\nport = {settings.sip.port}\nrtp_port_start = {settings.sip.rtp_port_start}\n'
                      f'rtp_ports_per_worker = 40\n[log]\nlevel = "warning"\n')
    position = store.create_position(short_template())
    with sim_phone(tmp_path, [SHORT_SCRIPT]) as phone:
        code = main(["--config", str(config), "call", phone.uri("short"), "--position", position.id,
                     "--name", "Ana Ruiz", "--no-llm"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "status: ringing" in out and "status: in_progress" in out
    assert "AI  Hi Ana, this is the automated interviewer" in out
    [interview_id] = [line.split()[1].rstrip(":") for line in out.splitlines() if line.endswith("completed (SIP 200)")]
    interview = store.get_interview(interview_id)
    assert interview.status == Status.COMPLETED and interview.channel == "sip"
    spoken = " ".join(t.text for t in store.turns(interview_id) if t.role == "candidate")
    assert word_error_rate(" ".join(SHORT_ANSWERS), spoken) <= 0.15


def test_call_command_refuses_a_target_it_cannot_route(settings, tmp_path, capsys) -> None:
    config = tmp_path / "phonescreen.toml"
    config.write_text(f'[store]\npath = "{settings.store.path}"\n')
    code = main(["--config", str(config), "call", "+14155550100", "--position", "pos_x"])
    assert code == 2 and "sip.domain is not set" in capsys.readouterr().err


async def test_serve_dials_sip_interviews_created_through_the_api(settings, store, make_key, aiohttp_client,
                                                                  engines, tmp_path) -> None:
    with sim_phone(tmp_path, [SHORT_SCRIPT], assign={"+14155550100": "short"}) as phone:
        base = sip_settings(settings)
        settings = dataclasses.replace(base, sip=dataclasses.replace(base.sip, domain=phone.address))
        client = await aiohttp_client(make_app(settings, store, background_jobs=True), headers=make_key())
        position = await (await client.post("/api/v1/positions/import", data=SHORT_TEMPLATE,
                                            headers={"Content-Type": "application/toml"})).json()
        candidate = await (await client.post("/api/v1/candidates", json={
            "name": "Ana Ruiz", "phone": "+1 415 555 0100", "timezone": "America/Los_Angeles"})).json()
        response = await client.post("/api/v1/interviews", json={
            "candidateId": candidate["id"], "positionId": position["id"], "channel": "sip"})
        assert response.status == 201
        interview_id = (await response.json())["id"]
        record = {}
        for _ in range(1200):  # 120 s, bounded
            record = await (await client.get(f"/api/v1/interviews/{interview_id}")).json()
            if record["status"] not in ("scheduled", "dialing", "ringing", "in_progress"):
                break
            await asyncio.sleep(0.1)
    assert record["status"] in (Status.COMPLETED, Status.REPORT_READY)
    [report] = phone.reports()
    assert report["user"] == "+14155550100" and report["answered"] == 200
    spoken = " ".join(t["text"] for t in record["turns"] if t["role"] == "candidate")
    assert word_error_rate(" ".join(SHORT_ANSWERS), spoken) <= 0.15
    statuses = [e["data"]["to"] for e in record["events"] if e["type"] == "interview.status_changed"]
    assert statuses[:3] == ["dialing", "ringing", "in_progress"]
    # The same record shape as an interview over the in-process line (which the Twilio and web channels'
    # tests compare with too): one session schema whatever the channel.
    line_id = connected_interview(store, short_template(), name="Bo Chen", phone="+14155550123")
    session = InterviewSession.for_interview(store, line_id, engines=engines, voice=settings.voice,
                                             recordings_dir=tmp_path)
    assert await run_call(session, SimulatedCandidate(CandidateScript("line", SHORT_ANSWERS))) == "completed"
    # Both are scored by the app's scoring job, so both records carry a scorecard.
    assert record_shape(await scored_record(client, interview_id)) == record_shape(await scored_record(client, line_id))


async def scored_record(client, interview_id: str) -> dict:
    for _ in range(600):  # 60 s, bounded
        record = await (await client.get(f"/api/v1/interviews/{interview_id}")).json()
        if record["scorecard"]:
            return record
        await asyncio.sleep(0.1)
    raise AssertionError(f"{interview_id} was not scored")
