"""SIP from the outside: `phonescreen call` places one interview and shows it live, and `phonescreen
serve` (its background jobs) dials SIP interviews created through the API. Real calls on 127.0.0.1."""
from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from pathlib import Path
import time

from dialer.sip.endpoint import udp_port_free
from dialer.simulator import CandidateScript, SimulatedCandidate, connected_interview, run_call
from ivr.session import InterviewSession
from models.lifecycle import Status
from server.app import make_app
from server.cli import main
from server.cli.call import PLACEHOLDER_PHONE
from sip_harness import REPO, SHORT_ANSWERS, SHORT_TEMPLATE, short_template, sim_phone, sip_settings
from voice import record_shape, word_error_rate

SHORT_SCRIPT = {"name": "short", "answers": list(SHORT_ANSWERS)}


def call_config(settings, tmp_path: Path) -> Path:
    """A settings file for `phonescreen call` on the test's store and SIP ports."""
    config = tmp_path / "phonescreen.toml"
    config.write_text(f'[store]\npath = "{settings.store.path}"\nrecordings_dir = "{settings.store.recordings_dir}"\n'
                      f'[sip]\nport = {settings.sip.port}\nrtp_port_start = {settings.sip.rtp_port_start}\n'
                      f'rtp_ports_per_worker = 40\n[log]\nlevel = "warning"\n')
    return config


def test_call_command_places_one_interview_and_shows_it_live(settings, store, tmp_path, capsys) -> None:
    settings = sip_settings(settings)
    config = call_config(settings, tmp_path)
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


def test_two_call_commands_run_side_by_side_each_with_its_own_candidate(settings, store, tmp_path) -> None:
    """The second `phonescreen call` finds sip.port taken by the first and listens elsewhere; neither
    reuses (or renames) the other's candidate, nor one that was there before."""
    settings = sip_settings(settings)
    config = call_config(settings, tmp_path)
    position = store.create_position(short_template())
    earlier, _ = store.upsert_candidate({"name": "Earlier Caller", "phone": PLACEHOLDER_PHONE, "timezone": "UTC"})
    with sim_phone(tmp_path, [SHORT_SCRIPT]) as phone:
        def call(name: str) -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "server.cli", "--config", str(config), "call",
                                     phone.uri("short"), "--position", position.id, "--name", name, "--no-llm"],
                                    cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = call("Ana Ruiz")
        deadline = time.monotonic() + 60
        while udp_port_free("127.0.0.1", settings.sip.port):  # until the first call's worker listens
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.1)
        second = call("Bo Chen")
        outputs = [process.communicate(timeout=240) for process in (first, second)]
    for process, (out, err) in zip((first, second), outputs):
        assert process.returncode == 0, out + err
    assert f"SIP port {settings.sip.port} is in use" in outputs[1][0] and "set sip.port" in outputs[1][0]
    ids = [line.split()[1].rstrip(":") for out, _ in outputs for line in out.splitlines()
           if line.endswith("completed (SIP 200)")]
    interviews = [store.get_interview(interview_id) for interview_id in ids]
    assert [i.status for i in interviews] == [Status.COMPLETED] * 2
    names = [store.get_candidate(i.candidate_id).name for i in interviews]
    assert names == ["Ana Ruiz", "Bo Chen"]
    assert store.get_candidate(earlier.id).name == "Earlier Caller"


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
