"""Recruiter-led calls with the copilot, end to end: headless Chromium logs in to the dashboard, picks a
candidate and clicks "Call" with a fake microphone speaking the recruiter's question (Piper); the server
dials the simulated candidate's SIP phone (a real pjsua2 process on 127.0.0.1) through a media worker and
bridges it to the browser. The copilot pane updates live (plan ticks, the next suggestion, the answer's
evaluation), a note is saved, the call is handed to the AI, which asks the remaining factor on the same
leg, and the report shows the scorecard with the notes. Plus the plan logic and the store on their own."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from browser import artifact, chromium, write_wav
from config.settings import Settings, VoiceSettings
from config.templates import load_template_text
from dialer.leg import Leg, LineEnded
from dialer.recruiter_link import HANDOVER, RecruiterLink
from dialer.simulator import candidate_audio, connected_interview
from dialer.sip.shared_pool import SharedPool
from dialer.web_leg import WEB_RATE
from ivr.frames import AudioFrame, frames_of, silence
from models.records import TurnEvaluation
from scoring.plan import covered_factors, match_question, next_factor, suggestion
from server.app import make_app
from server.admin.copilot import copilot
from server.admin.recruiter_call import RECRUITER_POOL
from sip_harness import sim_phone, sip_settings

PASSWORD = "correct horse battery staple"
DOCS = Path(__file__).resolve().parents[1] / "docs"
TEMPLATE = '''
title = "Customer Support Agent"
language = "en-US"
company = "Acme Support"
greeting = "Hi {candidate_name}, this is the interviewer from {company}."
consent = "This call is recorded. Do you agree to continue?"
closing = "That's all my questions. Thank you for your time. Goodbye."
max_duration_s = 300
inactivity_timeout_s = 60
silence_reprompt_s = 20

[[factors]]
name = "Customer empathy"
weight = 1
description = "Acknowledges the customer's feelings, stays calm and takes ownership of the problem."
max_follow_ups = 0
questions = ["Tell me about a time you calmed down an upset customer. What did you do?"]
[factors.anchors]
weak = "Blames the customer or gives no example."
adequate = "Gives an example with some acknowledgement."
strong = "A specific example: acknowledged the customer's feelings, took ownership and followed up."

[[factors]]
name = "Reliability"
weight = 1
description = "Shows up on time for every shift and tells the team early when something gets in the way."
max_follow_ups = 0
questions = ["How do you make sure you are on time for every shift?"]
[factors.anchors]
weak = "Is often late or vague about it."
adequate = "Usually on time, no plan for problems."
strong = "Concrete routine, a backup plan, and early notice to the team when something goes wrong."
'''
ANSWERS = ("Last spring a customer called because she was charged twice. I told her I understood why she was "
           "upset, fixed the bill during the call, and sent her an email the next morning to confirm it.",
           "I leave home forty minutes early and check the bus times the night before. If the bus is late I take "
           "a taxi, and if I am sick I call my supervisor two hours before the shift.")
NOTE = "Warm and concrete; ask about weekend shifts."


def template():
    return load_template_text(TEMPLATE, "tests/test_recruiter_call.py")


# -- the plan, on its own ------------------------------------------------------------------------------------
def test_plan_ticks_answered_factors_and_suggests_the_next_one() -> None:
    t = template()
    answered = [TurnEvaluation("int_1", 2, "candidate", "Customer empathy", "q", "answer", {"score": 70})]
    covered = covered_factors(answered)
    assert covered == {"Customer empathy"}
    assert next_factor(t, covered).name == "Reliability"
    assert next_factor(t, frozenset({"Customer empathy", "Reliability"})) is None
    tip = suggestion(t.factors[1])
    assert tip["question"] == t.factors[1].questions[0]
    assert tip["alternative"] != tip["question"] and "reliability" in tip["alternative"]
    assert tip["strong_answer"] == t.factors[1].anchors.strong
    # A recruiter asks in their own words: most of the question's words, in any order, is that question.
    assert match_question("So, how do you make sure that you're on time for every single shift?", t)[0] == "Reliability"
    assert match_question("tell me about a time you calmed down an upset customer", t)[0] == "Customer empathy"
    assert match_question("How was your weekend?", t) is None


def test_notes_and_leader_are_stored_and_recruiter_calls_are_never_auto_dialed(store) -> None:
    position = store.create_position(template())
    candidate, _ = store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100"})
    from datetime import timedelta
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="sip",
                                          expires_at=store.clock() + timedelta(hours=1), led_by="recruiter")
    assert store.get_interview(interview.id).led_by == "recruiter"
    assert store.due_calls("sip", 10) == []  # the recruiter's page dials it, no dialer
    assert store.notes(interview.id) is None
    store.save_notes(interview.id, "first")
    store.save_notes(interview.id, NOTE)
    assert store.notes(interview.id)["text"] == NOTE
    with pytest.raises(ValueError):
        store.save_notes(interview.id, "x" * 20_001)
    assert store.notes(interview.id)["text"] == NOTE  # a refused save loses nothing
    # A candidate who rings in is never put into a recruiter's call by the AI, nor into anything while on one.
    assert store.inbound_plan("+14155550100").matches == []
    store.transition(interview.id, "dialing")
    store.transition(interview.id, "in_progress")
    store.transition(interview.id, "completed")
    store.purge_old_content(store.clock() + timedelta(days=1), keep_scorecards=True)  # retention
    assert store.notes(interview.id) is None


async def test_notes_and_handover_need_the_admin_login_and_a_live_call(aiohttp_client, settings, store) -> None:
    settings = dataclasses.replace(settings, server=dataclasses.replace(settings.server, admin_password=PASSWORD))
    client = await aiohttp_client(make_app(settings, store, background_jobs=False))
    assert (await client.put("/admin/api/interviews/x/notes", json={"text": "a"})).status == 401
    assert (await client.post("/admin/api/recruiter-calls", json={})).status == 401
    assert (await client.get("/admin/recruiter", allow_redirects=False)).status == 303
    await client.post("/admin/login", data={"password": PASSWORD, "next": "/admin"}, allow_redirects=False)
    position = store.create_position(template())
    candidate, _ = store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100"})
    refused = await client.post("/admin/api/recruiter-calls", json={"candidateId": candidate.id,
                                                                     "positionId": position.id})
    assert refused.status == 409 and "sip" in (await refused.json())["error"]["message"]  # SIP is off here
    from datetime import timedelta
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="sip",
                                          expires_at=store.clock() + timedelta(hours=1), led_by="recruiter")
    path = f"/admin/api/interviews/{interview.id}"
    assert (await client.put(f"{path}/notes", json={"text": 5})).status == 400
    assert (await client.put(f"{path}/notes", json={"text": NOTE})).status == 200
    assert store.notes(interview.id)["text"] == NOTE
    assert (await client.post(f"{path}/handover")).status == 409  # not on a call


# -- the whole flow in Chromium over real SIP ---------------------------------------------------------------
def recruiter_wav(path: Path, question: str) -> Path:
    """The recruiter's fake microphone: quiet while the call connects, the question, then a long silence
    (Chromium loops the file; the test hands over long before)."""
    quiet = lambda seconds: np.zeros(int(seconds * WEB_RATE), dtype=np.int16)  # noqa: E731
    return write_wav(path, np.concatenate([quiet(6), candidate_audio(question, WEB_RATE, telephone=False),
                                           quiet(170)]), WEB_RATE)


async def test_recruiter_calls_a_candidate_with_the_copilot_then_hands_over_to_the_ai(
        settings: Settings, store, tmp_path) -> None:
    t = template()
    position = store.create_position(t)
    candidate, _ = store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100"})
    wav = recruiter_wav(tmp_path / "recruiter.wav", t.factors[0].questions[0])
    script = {"name": "ana", "answers": list(ANSWERS)}
    with sim_phone(tmp_path, [script], assign={"+14155550100": "ana"}) as phone:
        settings = sip_settings(settings, domain=phone.address, rtp_timeout_s=6.0)
        settings = dataclasses.replace(settings, server=dataclasses.replace(settings.server,
                                                                            admin_password=PASSWORD))
        app = make_app(settings, store, background_jobs=False)
        shared = app[RECRUITER_POOL] = SharedPool(settings, store, with_llm=False)
        from aiohttp.test_utils import TestServer
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            await shared.get()  # the media worker loads its models before the browser starts counting
            async with chromium(tmp_path / "profile", fake_audio=wav) as browser:
                page = await browser.new_page()
                await page.goto(str(server.make_url("/admin/recruiter")))
                await page.fill("#password", PASSWORD)
                await page.click("button[type=submit]")
                await page.wait_for_url("**/admin/recruiter")
                await page.select_option("#position", position.id)
                await page.click(f'#candidates tr[data-candidate="{candidate.id}"] button.call')
                await page.wait_for_selector('#call-state[data-state="live"]', timeout=30_000)
                iid = page.url.rsplit("/", 1)[-1]
                assert store.get_interview(iid).led_by == "recruiter"
                await page.wait_for_selector('#plan li[data-factor="Customer empathy"]:not(.covered)')
                assert await page.text_content("#suggestion .question") == t.factors[0].questions[0]
                assert await page.text_content("#suggestion .strong") == t.factors[0].anchors.strong

                # The recruiter asks, the candidate answers: both turns, the tick, the evaluation, the next tip.
                await page.wait_for_selector("#evaluations li", timeout=90_000)
                await page.wait_for_selector('#plan li.covered[data-factor="Customer empathy"]')
                await page.wait_for_selector(f'#suggestion .question:text-is("{t.factors[1].questions[0]}")')
                assert "/ 100" in await page.text_content("#evaluations li .score")
                await page.wait_for_selector("#transcript .turn.recruiter")
                await page.fill("#notes-input", NOTE)
                await page.wait_for_selector('#notes-saved:has-text("Saved")', timeout=10_000)
                assert store.notes(iid)["text"] == NOTE
                shot = await page.screenshot(path=artifact("recruiter-copilot.png"), full_page=True)
                assert shot

                await page.click("#handover")
                await page.wait_for_selector('#call-state[data-state="ai"]', timeout=10_000)
                await page.wait_for_selector("#report-link:not([hidden])", timeout=150_000)
                await page.wait_for_selector('#plan li.covered[data-factor="Reliability"]', timeout=10_000)

                interview = store.get_interview(iid)
                assert interview.status == "completed", interview
                assert interview.led_by == "ai_handover"
                turns = store.turns(iid)
                roles = [t_.role for t_ in turns]
                assert roles[0] == "recruiter" and "candidate" in roles and "agent" in roles, roles
                assert roles.index("recruiter") < roles.index("agent")
                understood = store.turn_evaluations(iid)
                answered = {e.factor for e in understood.values() if e.kind == "answer"}
                assert answered == {"Customer empathy", "Reliability"}, understood
                ai_lines = " ".join(t_.text for t_ in turns if t_.role == "agent")
                assert "recruiter asked me to finish" in ai_lines and t.factors[1].questions[0] in ai_lines
                assert t.factors[0].questions[0] not in ai_lines  # the AI did not ask what was covered
                assert Path(interview.recording_path).is_file()

                from scoring.job import rescore_with_own_store  # the same scorecard as an AI interview
                card = await asyncio.get_running_loop().run_in_executor(
                    None, rescore_with_own_store, settings, settings.store.path, iid)
                assert card.overall is not None
                await page.click("#report-link")
                await page.wait_for_url(f"**/admin/interviews/{iid}")
                await page.wait_for_selector(".factor .bar .fill", timeout=20_000)
                await page.wait_for_selector("#notes-panel:not([hidden])")
                assert await page.text_content("#notes") == NOTE
                assert "Recruiter" in await page.text_content("#transcript")
                await page.screenshot(path=artifact("recruiter-report.png"), full_page=True)
            if os.environ.get("PHONESCREEN_UPDATE_DOCS"):  # the README's screenshot, renewed on request only
                DOCS.mkdir(exist_ok=True)
                shutil.copy(artifact("recruiter-copilot.png"), DOCS / "recruiter-copilot.png")
        finally:
            await shared.close()
            await server.close()


# -- the worker's side of the call, in process (real Whisper, real evaluator; a scripted line) ----------------
class ScriptedLine(Leg):
    """The candidate's leg: each received frame is one step of a script (candidate frame, recruiter frame);
    the recruiter's frame is handed to the link just before, as the pool's pipe would."""
    sample_rate = 8000

    def __init__(self, steps: list[tuple[AudioFrame, AudioFrame]], link_ref: list) -> None:
        self.steps, self.link_ref, self.sent = iter(steps), link_ref, []

    async def receive(self):
        step = next(self.steps, None)
        if step is None:
            return LineEnded("remote_hangup")
        self.link_ref[0].push_recruiter(step[1].pcm)
        await asyncio.sleep(0)
        return step[0]

    def send(self, frame: AudioFrame) -> None:
        self.sent.append(frame)

    async def hang_up(self, reason: str) -> None:
        pass


def _steps(question: str, answer: str) -> list[tuple[AudioFrame, AudioFrame]]:
    quiet = silence(8000)
    asked = frames_of(candidate_audio(question, 8000), 8000)
    said = frames_of(candidate_audio(answer, 8000), 8000)
    pause = [(quiet, quiet)] * 75  # 1.5 s
    return [*pause, *((quiet, f) for f in asked), *pause, *((f, quiet) for f in said), *pause]


@pytest.mark.parametrize("hand_over", [False, True])
async def test_link_stores_both_sides_as_turns_evaluates_the_answer_and_hands_over(
        store, engines, tmp_path, hand_over) -> None:
    t = template()
    iid = connected_interview(store, t)
    store.set_led_by(iid, "recruiter")
    link_ref: list = [None]
    line = ScriptedLine(_steps(t.factors[0].questions[0], ANSWERS[0]), link_ref)
    up: list[bytes] = []
    link = link_ref[0] = RecruiterLink(store, iid, line, engines, VoiceSettings(), up.append, tmp_path)
    if hand_over:
        link.hand_over()
        assert await link.run() == HANDOVER
        assert store.get_interview(iid).led_by == "ai_handover" and store.get_interview(iid).status == "in_progress"
        return
    assert await link.run() == "completed"
    assert len(up) == len(line.sent) > 0  # one frame to the recruiter, one back to the candidate, per frame heard
    turns = store.turns(iid)
    assert [x.role for x in turns] == ["recruiter", "candidate"], turns
    understood = store.turn_evaluations(iid)
    asked, answered = understood[1], understood[2]
    assert (asked.kind, asked.factor) == ("question", "Customer empathy")
    assert (answered.kind, answered.factor) == ("answer", "Customer empathy")
    assert answered.evaluation["score"] is not None and answered.evaluation["reasoning"]
    assert copilot(store, iid)["plan"][0]["covered"] is True
    assert copilot(store, iid)["suggestion"]["factor"] == "Reliability"
    with wave.open(store.get_interview(iid).recording_path) as wav:  # candidate left, recruiter right
        assert wav.getnchannels() == 2 and wav.getnframes() == len(line.sent) * 160
