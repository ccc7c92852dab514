"""Scoring as the product runs it: the background job grading in a child process, rescoring through the
API and the CLI, the readable report, and a campaign's results as CSV."""
from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from config.settings import Settings
from models.store import SessionStore, default_expiry
from scoring.job import ScoringWorker, pending_interviews
from server import cli
from server.app import make_app
from test_scoring import DATA_VALIDATOR, store_transcript

INTERVIEWS = "/api/v1/interviews"


# -- the background job ----------------------------------------------------------------------------
async def test_the_job_scores_finished_interviews_in_a_child_process(store, sample_template, settings) -> None:
    webhook = store.create_webhook(url="https://ats.example.com/hook", events=["interview.scored"])
    completed = store_transcript(store, sample_template, "strong")
    dropped = store_transcript(store, sample_template, "dropped")
    assert set(pending_interviews(store)) == {completed, dropped}
    worker = ScoringWorker(settings)
    try:
        results = await worker.run_once(store)
        assert await worker.run_once(store) == []  # nothing left to do
    finally:
        worker.close()
    assert {r.interview_id for r in results} == {completed, dropped}
    assert {r.pid for r in results} != {os.getpid()} and len({r.pid for r in results}) == 1
    assert store.get_interview(completed).status == "report_ready"
    assert store.get_interview(dropped).status == "partial"
    assert [s.status for s in store.scorecards(dropped)] == ["partial"]
    events = [e.type for e in store.events(interview_id=completed)]
    assert events.count("interview.scored") == 1
    assert events.index("interview.scored") > events.index("interview.completed")
    changed = [e.data for e in store.events(interview_id=completed) if e.type == "interview.status_changed"]
    assert changed[-1] == {**changed[-1], "from": "completed", "to": "report_ready"}
    deliveries = store.list_deliveries(webhook.id)[0]
    scored = [json.loads(d.payload) for d in deliveries if d.event_type == "interview.scored"]
    assert {p["data"]["interviewId"] for p in scored} == {completed, dropped}
    assert pending_interviews(store) == []


async def test_two_nodes_grade_each_interview_once(store, sample_template, settings) -> None:
    """Two scoring jobs (two nodes) on one store: each interview is graded by one of them, once."""
    interviews = {store_transcript(store, sample_template, "strong"), store_transcript(store, sample_template, "weak")}
    first, second = ScoringWorker(settings), ScoringWorker(settings)
    other_store = SessionStore(settings.store.target)
    try:
        assert store.claim_work(f"score:{min(interviews)}", second.owner, 900)  # the second node is grading it
        done = await first.run_once(store)
        assert [r.interview_id for r in done] == [max(interviews)]  # the first left it to the second
        other_store.release_work(f"score:{min(interviews)}", second.owner)
        both = await asyncio.gather(first.run_once(store), second.run_once(other_store))
        graded = [r.interview_id for results in both for r in results if r.scorecard_id]
        assert graded == [min(interviews)]
        assert all(len(store.scorecards(iid)) == 1 for iid in interviews)
    finally:
        first.close()
        second.close()
        other_store.close()


async def test_serve_runs_the_scoring_job_and_reports_within_the_loop(aiohttp_client, store, sample_template,
                                                                     settings, make_key) -> None:
    fast = dataclasses.replace(settings, scoring=dataclasses.replace(settings.scoring, poll_interval_s=0.2))
    client = await aiohttp_client(make_app(fast, store, background_jobs=True), headers=make_key())
    iid = store_transcript(store, sample_template, "weak")
    for _ in range(600):  # bounded: the child process starts (spawn) and grades
        if store.get_interview(iid).status == "report_ready":
            break
        await asyncio.sleep(0.1)
    detail = await (await client.get(f"{INTERVIEWS}/{iid}")).json()
    assert detail["status"] == "report_ready"
    assert detail["scorecard"]["status"] == "scored" and detail["scorecardVersions"] == 1
    assert "interview.scored" in [e["type"] for e in detail["events"]]
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "score-interviews"]
    assert len(tasks) == 1
    await client.close()
    assert tasks[0].cancelled()


# -- the API ---------------------------------------------------------------------------------------
async def test_rescore_through_the_api_keeps_every_version(api, store, sample_template) -> None:
    iid = store_transcript(store, sample_template, "strong")
    first = await api.post(f"{INTERVIEWS}/{iid}/rescore")
    assert first.status == 201, await first.text()
    second = await (await api.post(f"{INTERVIEWS}/{iid}/rescore")).json()
    one = await first.json()
    assert (one["version"], second["version"]) == (1, 2)
    assert one["status"] == "scored" and one["overall"] == second["overall"] and one["data"] == second["data"]
    assert DATA_VALIDATOR.is_valid(second["data"])
    factor = second["data"]["factors"][0]
    assert {"key", "name", "weight", "score", "reasoning", "citations", "answeredTurns"} <= set(factor)
    assert set(second["data"]["aiFeedback"]) == {"strengths", "probe"}
    detail = await (await api.get(f"{INTERVIEWS}/{iid}")).json()
    assert detail["status"] == "report_ready"
    assert detail["scorecard"]["version"] == 2 and detail["scorecardVersions"] == 2
    assert [s.version for s in store.scorecards(iid)] == [1, 2]


async def test_rescore_refuses_unfinished_and_unknown_interviews(api, store, sample_template, make_key) -> None:
    position_id = store.create_position(sample_template).id
    candidate_id = store.upsert_candidate({"name": "Ana Ruiz"})[0].id
    interview, _ = store.create_interview(candidate_id=candidate_id, position_id=position_id, channel="web",
                                          expires_at=default_expiry())
    response = await api.post(f"{INTERVIEWS}/{interview.id}/rescore")
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "not_finished"
    assert (await api.post(f"{INTERVIEWS}/int_nope/rescore")).status == 404
    reader = make_key(["interviews:read"])
    assert (await api.post(f"{INTERVIEWS}/{interview.id}/rescore", headers=reader)).status == 403
    assert store.scorecards(interview.id) == []


async def test_campaign_results_csv_for_ats_import(api, store, sample_template, make_key) -> None:
    position_id = store.create_position(sample_template).id
    people = [store.upsert_candidate({"name": name, "phone": f"+1415555010{i}", "external_id": f"ats-{i}",
                                      "email": f"c{i}@example.com"})[0]
              for i, name in enumerate(["Ana Ruiz", "=HYPERLINK(\"http://x\")", "Jo Diaz", "Kim Park"])]
    campaign = store.create_campaign(name="June", position_id=position_id, channel="sip", settings={},
                                     candidate_ids=[p.id for p in people])
    strong = store_transcript(store, sample_template, "strong", position_id=position_id, campaign_id=campaign.id,
                              candidate_id=people[0].id)
    weak = store_transcript(store, sample_template, "weak", position_id=position_id, campaign_id=campaign.id,
                            candidate_id=people[1].id)
    silent = store_transcript(store, sample_template, "near_silent", position_id=position_id,
                              campaign_id=campaign.id, candidate_id=people[2].id)
    for iid in (strong, weak, silent, weak):
        assert (await api.post(f"{INTERVIEWS}/{iid}/rescore")).status == 201
    callback = datetime(2030, 1, 10, 10, 0, tzinfo=ZoneInfo("America/Chicago"))
    store.schedule_callback(silent, callback)  # a campaign's callback: kept on the interview

    response = await api.get(f"/api/v1/campaigns/{campaign.id}/results.csv")
    assert response.status == 200 and response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [r["candidate_id"] for r in rows] == [p.id for p in people]
    by_name = {r["external_id"]: r for r in rows}
    assert by_name["ats-0"]["scorecard_status"] == "scored" and by_name["ats-0"]["interview_id"] == strong
    assert by_name["ats-1"]["candidate_name"] == "'=HYPERLINK(\"http://x\")"  # no formula for the spreadsheet
    assert by_name["ats-1"]["scorecard_version"] == "2"
    assert by_name["ats-2"]["scorecard_status"] == "low_confidence" and by_name["ats-2"]["overall"] == ""
    assert by_name["ats-3"]["interview_status"] == "not_scheduled" and by_name["ats-3"]["interview_id"] == ""
    # Why a call ended and when to call back: what a recruiter sorts the list by.
    assert by_name["ats-0"]["end_reason"] == (store.get_interview(strong).end_reason or "")
    assert by_name["ats-3"]["end_reason"] == "" and by_name["ats-3"]["callback_at"] == ""
    assert by_name["ats-2"]["callback_at"] == callback.isoformat()
    latest = store.scorecards(strong)[-1]
    assert float(by_name["ats-0"]["overall"]) == latest.overall
    for factor in latest.data["factors"]:
        assert by_name["ats-0"][f"score_{factor['key']}"] == str(factor["score"])
    assert by_name["ats-0"]["cefr"] == latest.data["language"]["cefr"]
    assert by_name["ats-0"]["rubric_version"] == latest.rubric_version

    missing = await api.get("/api/v1/campaigns/camp_nope/results.csv")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    campaigns_only = make_key(["campaigns:read"])
    assert (await api.get(f"/api/v1/campaigns/{campaign.id}/results.csv", headers=campaigns_only)).status == 403


# -- the CLI ---------------------------------------------------------------------------------------
@pytest.fixture
def cli_env(monkeypatch, settings: Settings) -> None:
    for name in [n for n in os.environ if n.startswith("PHONESCREEN_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PHONESCREEN_STORE_PATH", settings.store.path)
    monkeypatch.setenv("PHONESCREEN_LOG_FORMAT", "text")
    monkeypatch.setenv("PHONESCREEN_LOG_LEVEL", "warning")


def test_cli_rescore_and_report(cli_env, store: SessionStore, sample_template, capsys) -> None:
    iid = store_transcript(store, sample_template, "strong")
    assert cli.main(["report", iid]) == 2
    assert "no scorecard yet" in capsys.readouterr().err

    assert cli.main(["rescore", iid]) == 0
    out = capsys.readouterr().out
    card = store.scorecards(iid)[-1]
    assert f"scored interview {iid}: version 1, scored, overall {card.overall:g}" in out
    assert cli.main(["rescore", iid]) == 0 and "version 2" in capsys.readouterr().out

    assert cli.main(["report", iid]) == 0
    report = capsys.readouterr().out
    assert "Ana Ruiz" in report and "scorecard version 2: scored" in report
    for factor in card.data["factors"]:
        assert f"{factor['name']} (weight {factor['weight'] * 100:.0f}%): {factor['score']}/100" in report
        for citation in factor["citations"]:
            assert f"turn {citation['turn']}:" in report
    assert "What went well" in report and "What to probe next" in report
    assert "2 span(s) on sensitive attributes were masked" in report
    assert "single mother" not in report  # citations and feedback come from masked text

    assert cli.main(["report", iid, "--version", "1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == 1 and DATA_VALIDATOR.is_valid(shown["data"])
    assert cli.main(["report", iid, "--version", "7"]) == 2
    assert "versions 1 to 2, not 7" in capsys.readouterr().err


def test_cli_report_of_a_low_confidence_interview_has_no_number(cli_env, store, sample_template, capsys) -> None:
    iid = store_transcript(store, sample_template, "near_silent")
    assert cli.main(["rescore", iid]) == 0
    assert "low_confidence, no overall score" in capsys.readouterr().out
    assert cli.main(["report", iid]) == 0
    report = capsys.readouterr().out
    assert "no overall score (low confidence)" in report and "low confidence: only" in report
    assert "not graded" in report


def test_cli_refuses_unfinished_and_unknown_interviews(cli_env, store, sample_template, capsys) -> None:
    position_id = store.create_position(sample_template).id
    candidate_id = store.upsert_candidate({"name": "Ana Ruiz"})[0].id
    interview, _ = store.create_interview(candidate_id=candidate_id, position_id=position_id, channel="web",
                                          expires_at=default_expiry())
    assert cli.main(["rescore", interview.id]) == 2
    assert "only a finished interview can be scored" in capsys.readouterr().err
    assert cli.main(["rescore", "int_nope"]) == 2
    assert "int_nope" in capsys.readouterr().err
