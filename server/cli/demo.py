"""`phonescreen demo`: the main job on embedded defaults, end to end on 127.0.0.1.

The hiring team's flow through the REST API (import the sample call-center position, upload candidates
from CSV with one broken row, register a signed webhook, start a campaign of the candidates), then a
batch of real SIP calls: the server's campaign scheduler places them through pjsua2 media workers to a simulated
candidates' SIP phone (dialer.sim_phone, another process) whose candidates follow different scripts
(concrete answers, vague ones, one who hangs up). The real voice engine (webrtcvad, Whisper, Piper,
SmolLM2) runs each call; the scoring job turns each transcript into a scorecard; the stored transcripts
and scorecards are read back through the API, and the dashboard shows them. The demo exits non-zero, with a
one-line reason, unless every interview ended the way its script means it to (server/cli/demo_verdict.py)."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

import aiohttp
from aiohttp import web

from config.settings import LogSettings, ServerSettings, Settings, SipSettings, StoreSettings, WebhookSettings
from config.templates import sample_template_path
from dialer.sip.pool import WorkerDeath
from models.lifecycle import ENDED, Status
from models.store import SessionStore
from server.app import make_app
from server.api.auth import SCOPES
from server.cli.demo_verdict import DEMO_CANDIDATES, interview_problem
from server.shutdown import OPS
from server.webhooks import verify

SAMPLE_CSV = Path(__file__).resolve().parents[2] / "config" / "samples" / "demo_candidates.csv"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebhookReceiver:
    """A stand-in for an ATS: receives the demo's webhooks and checks their signatures."""

    def __init__(self, secret: str = "whsec_demo_receiver_secret_0001") -> None:
        self.secret, self.received, self.port = secret, [], free_port()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify(self.secret, request.headers.get("X-Phonescreen-Signature", ""), body, time.time())
        self.received.append((ok, json.loads(body)))
        return web.Response(status=204 if ok else 401)

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/hooks", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner


async def _call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, url, **kwargs) as response:
        text = await response.text()
        return response.status, (json.loads(text) if text else None)


def _show(step: str, status: int, detail: str) -> None:
    print(f"  {step:<44} HTTP {status}  {detail}")


DEMO_WINDOW = {"start": "00:00", "end": "23:59", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
SCORE_DEADLINE_S = 120.0  # an ended interview without a scorecard by then is unscored (scoring takes seconds)


def demo_settings(data_dir: Path, phone_port: int) -> Settings:
    return Settings(server=ServerSettings(port=free_port(), admin_password=secrets.token_urlsafe(9)),
                    log=LogSettings(level="warning"),  # media workers and the scorer log; the demo narrates
                    webhooks=WebhookSettings(allow_private_targets=True),  # the stand-in ATS is on 127.0.0.1
                    store=StoreSettings(path=str(data_dir / "phonescreen.db"),
                                        recordings_dir=str(data_dir / "recordings")),
                    # E.164 numbers go to the simulated phone, as they would go to a SIP trunk
                    sip=SipSettings(port=free_port(socket.SOCK_DGRAM), rtp_port_start=41000,
                                    domain=f"127.0.0.1:{phone_port}"))


async def start_phone(data_dir: Path) -> tuple[asyncio.subprocess.Process, int]:
    """The simulated candidates: one SIP phone process answering each demo number with its script."""
    port = free_port(socket.SOCK_DGRAM)
    args = [sys.executable, "-m", "dialer.sim_phone", "--port", str(port), "--rtp-port", "42000",
            "--record-dir", str(data_dir / "candidate-phone")]
    for number, meant in DEMO_CANDIDATES.items():
        args += ["--assign", f"{number}={meant.script}"]
    phone = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                 cwd=Path(__file__).resolve().parents[2])
    line = await asyncio.wait_for(phone.stdout.readline(), 300)  # the first run synthesizes the answers
    if line.strip() != b"ready":
        raise RuntimeError("the simulated candidate phone did not start")
    return phone, port


async def read_phone_reports(phone: asyncio.subprocess.Process, reports: dict[str, dict]) -> None:
    """The phone's JSON line per finished call, by the number called (what the candidate said)."""
    while line := await phone.stdout.readline():
        if line.startswith(b"{"):
            report = json.loads(line)
            reports[report["user"]] = report


async def kill_worker_later(app: web.Application, store: SessionStore, interview_ids: list[str],
                            after_s: float) -> None:
    """`--kill-worker-after S` (hidden, for testing the demo's verdict): S seconds after the first call is
    answered, crash media worker 0 with SIGSEGV, as a fault in native code (llama.cpp) would."""
    while not any(store.get_interview(iid).status == Status.IN_PROGRESS for iid in interview_ids):
        await asyncio.sleep(0.2)
    await asyncio.sleep(after_s)
    pool = app[OPS].media_pool()
    if pool is None or not pool.workers:
        return
    pid = pool.workers[0].process.pid
    print(f"  --kill-worker-after: sending SIGSEGV to media worker 0 (pid {pid})", flush=True)
    os.kill(pid, signal.SIGSEGV)


async def run_demo(data_dir: Path, keep_serving: bool, kill_worker_after_s: float | None = None) -> int:
    shutil.rmtree(data_dir, ignore_errors=True)  # every demo run starts from a clean store
    logging.getLogger().setLevel(logging.WARNING)  # the demo prints its own account of what happened
    print("phonescreen demo — starting the simulated candidates' SIP phone ...", flush=True)
    phone, phone_port = await start_phone(data_dir)
    reports: dict[str, dict] = {}
    reading = asyncio.create_task(read_phone_reports(phone, reports))
    settings = demo_settings(data_dir, phone_port)
    store = SessionStore(settings.store.target)
    _, api_key = store.create_api_key("demo", list(SCOPES))
    receiver = WebhookReceiver()
    receiver_runner = await receiver.start()
    app = make_app(settings, store)  # with its jobs: SIP dialer, scoring, webhooks
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.server.port).start()
    base = f"{settings.public_url}/api/v1"
    print(f"server on {settings.public_url}, store {settings.store.path}, "
          f"candidates' phone on sip:127.0.0.1:{phone_port}\n")
    headers = {"Authorization": f"Bearer {api_key}"}
    killer: asyncio.Task | None = None
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            status, position = await _call(http, "POST", f"{base}/positions/import",
                                           data=sample_template_path().read_text(),
                                           headers={"Content-Type": "application/toml"})
            factors = [f["name"] for f in position["template"]["factors"]]
            _show("import the call-center template", status, f"{position['id']}: {', '.join(factors)}")
            status, result = await _call(http, "POST", f"{base}/candidates/import", data=SAMPLE_CSV.read_bytes(),
                                         headers={"Content-Type": "text/csv"})
            _show("upload candidates.csv", status,
                  f"created {result['created']}, failed {result['failed']}"
                  + "".join(f"\n{'':50}line {e['line']}: {e['field']}: {e['message']}" for e in result["errors"]))
            status, again = await _call(http, "POST", f"{base}/candidates/import", data=SAMPLE_CSV.read_bytes(),
                                        headers={"Content-Type": "text/csv"})
            _show("upload the same file again (idempotent)", status,
                  f"created {again['created']}, updated {again['updated']}")
            status, hook = await _call(http, "POST", f"{base}/webhooks", json={
                "url": f"http://127.0.0.1:{receiver.port}/hooks", "secret": receiver.secret,
                "events": ["interview.status_changed", "interview.completed", "interview.scored"]})
            _show("register a signed webhook", status, hook["id"])
            *callees, web_candidate = result["candidates"]
            status, invite = await _call(http, "POST", f"{base}/interviews", json={
                "candidateId": web_candidate, "positionId": position["id"], "channel": "web"})
            _show("invite one candidate by web link", status, invite["joinUrl"].split("#")[0] + "#…")
            status, _ = await _call(http, "POST", f"{base}/interviews/{invite['id']}/cancel")
            _show("cancel that invite", status, "cancelled")
            status, error = await _call(http, "POST", f"{base}/interviews/{invite['id']}/cancel")
            _show("cancel it again (illegal transition)", status, error["error"]["message"])
            status, campaign = await _call(http, "POST", f"{base}/campaigns", json={
                "name": "Demo batch", "positionId": position["id"], "channel": "sip", "candidateIds": callees,
                "settings": {"window": DEMO_WINDOW, "maxConcurrentCalls": len(callees), "attemptsPerSecond": 2}})
            _show("create a SIP campaign of the other candidates", status, campaign["id"])
            status, campaign = await _call(http, "POST", f"{base}/campaigns/{campaign['id']}/start")
            _show("start it", status, campaign["status"])
            interviews = await campaign_interviews(http, base, campaign["id"], len(callees))
            if kill_worker_after_s is not None:
                killer = asyncio.create_task(kill_worker_later(app, store, interviews, kill_worker_after_s))
            status, document = await _call(http, "GET", f"{base}/openapi.json")
            _show("OpenAPI document", status, f"{len(document['paths'])} paths")
            print(f"\n  the server dials {len(interviews)} candidates over SIP (real pjsua2 calls on 127.0.0.1; "
                  "the first start loads Whisper, Piper and SmolLM2) ...", flush=True)
            records = await follow_calls(http, base, interviews)
            for record in records:
                print_transcript(record)
                print_scorecard(record)
            phones = {}
            for record in records:
                _, candidate = await _call(http, "GET", f"{base}/candidates/{record['candidateId']}")
                phones[record["id"]] = candidate["phone"]
            await _wait_for(lambda: set(phones.values()) <= set(reports), 15)  # the phone notices a lost call late
            for _ in range(50):  # the dispatcher polls every second; wait boundedly for the deliveries
                if len(receiver.received) >= len(interviews) * 4:
                    break
                await asyncio.sleep(0.1)
            _, campaign = await _call(http, "GET", f"{base}/campaigns/{campaign['id']}")
            print(f"\n  campaign {campaign['id']}: {campaign['status']}; "
                  + ", ".join(f"{key} {value}" for key, value in campaign["progress"].items()))
            signed = sum(ok for ok, _ in receiver.received)
            print(f"\n  webhooks received by the stand-in ATS: {len(receiver.received)}, signatures valid: {signed}")
        pool = app[OPS].media_pool()
        problems = demo_problems(records, phones, reports, pool.deaths if pool is not None else [])
        if not receiver.received or signed != len(receiver.received):
            problems.append(f"webhooks: {len(receiver.received)} received, {signed} with a valid signature")
        print(f"  recordings (stereo WAV: candidate left, AI right) in {settings.store.recordings_dir}")
        print(f"\n  dashboard: {settings.public_url}/admin  (password: {settings.server.admin_password})")
        if problems:
            print(f"phonescreen: error: demo failed: {'; '.join(problems)}", file=sys.stderr, flush=True)
        else:
            print("\n  every interview ended as its script means it to: "
                  + ", ".join(f"{DEMO_CANDIDATES[phones[r['id']]].script} {r['status']}" for r in records)
                  + "; all scored")
        if keep_serving:
            print(f"\nServing on {settings.public_url} — API key (shown once): {api_key}\nCtrl-C to stop.")
            await asyncio.Event().wait()
        return 1 if problems else 0
    finally:
        if killer is not None:
            killer.cancel()
        await runner.cleanup()  # stops the SIP dialer and its media workers
        await receiver_runner.cleanup()
        store.close()
        if phone.returncode is None:
            phone.stdin.close()
            try:
                await asyncio.wait_for(phone.wait(), 20)
            except TimeoutError:
                phone.kill()
        reading.cancel()


def demo_problems(records: list[dict[str, Any]], phones: dict[str, str], reports: dict[str, dict],
                  deaths: list[WorkerDeath]) -> list[str]:
    """Why the demo failed, one short clause each; empty when every interview ended as its script means."""
    problems = [str(death) for death in deaths]  # signal, the calls it had, its log
    for record in records:
        number = phones[record["id"]]
        meant = DEMO_CANDIDATES.get(number)
        if meant is None:
            problems.append(f"{record['id']}: no script answers {number}")
            continue
        report = reports.get(number)
        spoken = len(report.get("said", [])) if report else None
        problem = interview_problem(record, meant, spoken, score_deadline_s=SCORE_DEADLINE_S)
        if problem:
            problems.append(f"{record['id']} ({meant.script}) {problem}")
    return problems


async def _wait_for(condition: Callable[[], bool], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


async def campaign_interviews(http: aiohttp.ClientSession, base: str, campaign_id: str, count: int,
                              limit_s: float = 120) -> list[str]:
    """The interviews the campaign scheduler creates as it claims each candidate's call, in order."""
    started, ids = time.monotonic(), []
    while time.monotonic() - started < limit_s:
        _, page = await _call(http, "GET", f"{base}/interviews", params={"campaignId": campaign_id,
                                                                          "pageSize": 100})
        ids = [item["id"] for item in sorted(page["items"], key=lambda item: item["createdAt"])]
        if len(ids) >= count:
            break
        await asyncio.sleep(0.5)
    return ids


async def follow_calls(http: aiohttp.ClientSession, base: str, interview_ids: list[str],
                       limit_s: float = 900) -> list[dict[str, Any]]:
    """Print each interview's status changes as they happen until every one is over and scored, or has
    waited SCORE_DEADLINE_S for its scorecard since it ended (or `limit_s` is up)."""
    started, last, records, ended_at = time.monotonic(), {}, {}, {}
    while True:
        now = time.monotonic()
        for interview_id in interview_ids:
            _, records[interview_id] = await _call(http, "GET", f"{base}/interviews/{interview_id}")
            record = records[interview_id]
            seen = (record["status"], len(record["turns"]), bool(record["scorecard"]))
            if last.get(interview_id) != seen:
                last[interview_id] = seen
                scored = ", scored" if record["scorecard"] else ""
                print(f"  {now - started:6.1f}s  {interview_id}  {record['status']:<12} "
                      f"{len(record['turns'])} turns{scored}", flush=True)
            if record["status"] in ENDED:
                ended_at.setdefault(interview_id, now)
        waiting = [i for i, r in records.items() if r["status"] not in ENDED or (
            not r["scorecard"] and r["status"] in (Status.COMPLETED, Status.PARTIAL)
            and now - ended_at[i] < SCORE_DEADLINE_S)]
        if not waiting or now - started > limit_s:
            return [records[i] for i in interview_ids]
        await asyncio.sleep(0.5)


def print_scorecard(record: dict[str, Any]) -> None:
    card = record.get("scorecard")
    if not card:
        return
    overall = "no overall (low confidence)" if card["overall"] is None else f"overall {card['overall']:.0f}/100"
    print(f"    scorecard: {card['status']}, {overall}")
    for factor in card["data"].get("factors", []):
        score = "—" if factor.get("score") is None else f"{factor['score']:.0f}"
        print(f"      {factor.get('name', factor.get('key')):<32} {score:>4}")


def print_transcript(record: dict[str, Any]) -> None:
    print(f"\n  {record['id']} — {record['status']}, {len(record['turns'])} turns")
    for turn in record["turns"]:
        cut = " [interrupted]" if turn["interrupted"] else ""
        who = "AI " if turn["role"] == "agent" else "CAN"
        print(f"    {turn['startMs'] / 1000:6.1f}s {who} {turn['text']}{cut}")


def demo_command(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run_demo(Path(args.data_dir), args.serve, args.kill_worker_after))
    except KeyboardInterrupt:
        return 0
