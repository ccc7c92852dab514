"""Several `phonescreen serve` nodes on one PostgreSQL store: which jobs each role runs, and two API nodes
delivering a burst of webhooks between them, each delivery sent once (real processes, a real cluster, a
receiver on 127.0.0.1)."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from models.db import utcnow
from models.store import SessionStore
from server.jobs import job_names
from server.webhooks import DELIVERY_HEADER

ROOT = Path(__file__).resolve().parents[1]


def test_each_role_runs_its_jobs() -> None:
    api_jobs = ["expire-invites", "deliver-webhooks", "score-interviews", "retention", "send-invitations"]
    assert job_names("api", dials=True) == api_jobs
    assert job_names("dialer", dials=True) == ["dial"]
    assert job_names("dialer", dials=False) == []  # nothing to dial with: the node only serves health
    assert job_names("all", dials=True) == [*api_jobs, "dial"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(tmp_path: Path, url: str, role: str, name: str) -> tuple[subprocess.Popen, Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONESCREEN_")}
    env.update(PHONESCREEN_STORE_URL=url, PHONESCREEN_STORE_PATH=str(tmp_path / name / "unused.db"),
               PHONESCREEN_LOG_FORMAT="text", PHONESCREEN_WEBHOOKS_ALLOW_PRIVATE_TARGETS="true",
               PHONESCREEN_WEBHOOKS_POLL_INTERVAL_S="0.2", PHONESCREEN_SIP_ENABLED="false", PYTHONPATH=str(ROOT))
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--role", role, "--host", "127.0.0.1",
                             "--port", str(_free_port())], cwd=tmp_path, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    return proc, log


async def test_two_api_nodes_send_each_webhook_once(tmp_path, pg_cluster, sample_template, aiohttp_server) -> None:
    url = pg_cluster.new_database()
    store = SessionStore(url)
    received: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(request.headers[DELIVERY_HEADER])
        await asyncio.sleep(0.05)  # a receiver that takes a moment: both nodes are sending at once
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    receiver = await aiohttp_server(app)
    nodes = [_serve(tmp_path, url, "api", f"api-{n}") for n in range(2)]
    try:
        deadline = time.monotonic() + 30
        while not all("listening on" in log.read_text() for _, log in nodes):  # both up before any work
            assert time.monotonic() < deadline and all(proc.poll() is None for proc, _ in nodes), \
                [log.read_text() for _, log in nodes]
            await asyncio.sleep(0.1)
        store.create_webhook(url=str(receiver.make_url("/hook")), events=["interview.status_changed"])
        position = store.create_position(sample_template).id
        for n in range(20):
            candidate = store.create_candidate({"name": f"C {n}", "phone": f"+1202555{n:04d}"}).id
            iid = store.create_interview(candidate_id=candidate, position_id=position, channel="sip",
                                         expires_at=utcnow() + timedelta(days=1))[0].id
            for status in ("dialing", "ringing", "in_progress"):
                store.transition(iid, status)  # 60 deliveries in all
        deadline = time.monotonic() + 60
        while len(received) < 60 and time.monotonic() < deadline:
            assert all(proc.poll() is None for proc, _ in nodes), [log.read_text() for _, log in nodes]
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # time for a second copy to arrive, were one sent
        assert len(received) == 60 and len(set(received)) == 60, "every delivery sent, none twice"
        pending = store.db.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE status != 'delivered'").fetchone()[0]
        assert pending == 0
    finally:
        for proc, _ in nodes:
            proc.terminate()
        for proc, _ in nodes:
            proc.wait(timeout=30)
        store.close()
    logs = [log.read_text() for _, log in nodes]
    assert all("role api" in text for text in logs)
    assert all(" delivered to " in text for text in logs), "both nodes took part"
