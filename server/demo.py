"""`phonescreen demo`: the main job on embedded defaults, end to end on 127.0.0.1.

The hiring team's flow through the REST API (import the sample call-center position, upload candidates
from CSV with one broken row, register a signed webhook, schedule an interview per candidate), then a
batch of voice interviews: simulated candidates with different scripts (concrete answers, vague ones,
one who hangs up) talk to the real voice engine (webrtcvad, Whisper, Piper, SmolLM2) over an in-process
line, and the stored transcripts are read back through the API. The SIP channel puts the same calls
behind real phones."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from config.settings import ServerSettings, Settings, StoreSettings, WebhookSettings
from config.templates import sample_template_path
from dialer.simulator import SAMPLE_SCRIPTS
from models.store import SessionStore
from server.app import make_app
from server.auth import SCOPES
from server.webhooks import verify

SAMPLE_CSV = Path(__file__).resolve().parents[1] / "config" / "samples" / "demo_candidates.csv"


def free_port() -> int:
    with socket.socket() as sock:
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


async def run_demo(data_dir: Path, keep_serving: bool) -> int:
    shutil.rmtree(data_dir, ignore_errors=True)  # every demo run starts from a clean store
    logging.getLogger().setLevel(logging.WARNING)  # the demo prints its own account of what happened
    port = free_port()
    settings = Settings(server=ServerSettings(port=port),
                        webhooks=WebhookSettings(allow_private_targets=True),  # the stand-in ATS is on 127.0.0.1
                        store=StoreSettings(path=str(data_dir / "phonescreen.db"),
                                            recordings_dir=str(data_dir / "recordings")))
    store = SessionStore(settings.store.path)
    _, api_key = store.create_api_key("demo", list(SCOPES))
    receiver = WebhookReceiver()
    receiver_runner = await receiver.start()
    runner = web.AppRunner(make_app(settings, store))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"{settings.public_url}/api/v1"
    print(f"phonescreen demo — server on {settings.public_url}, store {settings.store.path}\n")
    headers = {"Authorization": f"Bearer {api_key}"}
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
            interviews = []
            for candidate_id in result["candidates"]:
                status, interview = await _call(http, "POST", f"{base}/interviews", json={
                    "candidateId": candidate_id, "positionId": position["id"], "channel": "sip"})
                interviews.append(interview)
            _show("schedule one SIP interview per candidate", status, f"{len(interviews)} scheduled")
            status, _ = await _call(http, "POST", f"{base}/interviews/{interviews[-1]['id']}/cancel")
            _show("cancel the last one", status, "cancelled")
            status, error = await _call(http, "POST", f"{base}/interviews/{interviews[-1]['id']}/cancel")
            _show("cancel it again (illegal transition)", status, error["error"]["message"])
            status, listing = await _call(http, "GET", f"{base}/interviews", params={"status": "scheduled"})
            _show("list scheduled interviews", status, f"total {listing['total']}")
            status, document = await _call(http, "GET", f"{base}/openapi.json")
            _show("OpenAPI document", status, f"{len(document['paths'])} paths")
            await interview_batch(settings, store, [i["id"] for i in interviews[:len(SAMPLE_SCRIPTS)]])
            for interview in interviews[:len(SAMPLE_SCRIPTS)]:
                status, record = await _call(http, "GET", f"{base}/interviews/{interview['id']}")
                print_transcript(record)
            for _ in range(50):  # the dispatcher polls every second; wait boundedly for the deliveries
                if len(receiver.received) >= len(SAMPLE_SCRIPTS) * 4:
                    break
                await asyncio.sleep(0.1)
            signed = sum(ok for ok, _ in receiver.received)
            print(f"\n  webhooks received by the stand-in ATS: {len(receiver.received)}, signatures valid: {signed}")
        print(f"\n  recordings (stereo WAV: candidate left, AI right) in {settings.store.recordings_dir}")
        if keep_serving:
            print(f"\nServing on {settings.public_url} — API key (shown once): {api_key}\nCtrl-C to stop.")
            await asyncio.Event().wait()
        return 0 if receiver.received and signed == len(receiver.received) else 1
    finally:
        await runner.cleanup()
        await receiver_runner.cleanup()
        store.close()


async def interview_batch(settings: Settings, store: SessionStore, interview_ids: list[str]) -> None:
    """One simulated candidate per interview, all at once, through the real voice engine."""
    from dialer.simulator import SimulatedCandidate, run_call
    from ivr.engines import load_engines
    from ivr.session import InterviewSession
    print(f"\n  calling {len(interview_ids)} simulated candidates (loading Whisper, Piper and SmolLM2)...")
    engines = load_engines(settings, "en")

    async def call(interview_id: str, script) -> str:
        for status in ("dialing", "ringing", "in_progress"):  # what the SIP leg reports as the call connects
            store.transition(interview_id, status)
        session = InterviewSession.for_interview(store, interview_id, engines=engines, voice=settings.voice,
                                                 recordings_dir=settings.store.recordings_dir)
        return await run_call(session, SimulatedCandidate(script))

    started = time.monotonic()
    outcomes = await asyncio.gather(*(call(i, s) for i, s in zip(interview_ids, SAMPLE_SCRIPTS)))
    print(f"  {len(outcomes)} interviews finished in {time.monotonic() - started:.0f} s: {', '.join(outcomes)}")


def print_transcript(record: dict[str, Any]) -> None:
    print(f"\n  {record['id']} — {record['status']}, {len(record['turns'])} turns")
    for turn in record["turns"]:
        cut = " [interrupted]" if turn["interrupted"] else ""
        who = "AI " if turn["role"] == "agent" else "CAN"
        print(f"    {turn['startMs'] / 1000:6.1f}s {who} {turn['text']}{cut}")


def demo_command(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run_demo(Path(args.data_dir), args.serve))
    except KeyboardInterrupt:
        return 0
