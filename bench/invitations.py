"""How long an invitation takes from the API's queue to the candidate's mail server: N invitations queued at
once, sent by the `serve` job (server/invitations.py) through a local SMTP server (aiosmtpd on 127.0.0.1),
and, for SMS, through the local Twilio double to its delivery report. Prints p50/p95 of queue -> accepted
(e-mail) and queue -> delivered (SMS) per invitation, and the batch's throughput.

Run: .venv/bin/python bench/invitations.py [-n INVITATIONS]
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from aiohttp import web  # noqa: E402
from aiohttp.test_utils import unused_port  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402

from browser import short_template  # noqa: E402
from config.settings import EmailSettings, Settings, StoreSettings  # noqa: E402
from models.store import SessionStore  # noqa: E402
from server.app import make_app  # noqa: E402
from server.invitations import InvitationSender  # noqa: E402
from twilio_double import TwilioDouble, twilio_settings  # noqa: E402


class Inbox:
    def __init__(self) -> None:
        self.arrived: list[float] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.arrived.append(time.monotonic())
        return "250 OK"


def report(name: str, values_ms: list[float]) -> None:
    p50, p95 = np.percentile(values_ms, [50, 95])
    print(f"{name:<40} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   n={len(values_ms)}")


def queue(store: SessionStore, n: int, channel: str) -> list[str]:
    position = store.create_position(short_template())
    ids = []
    for k in range(n):
        candidate = store.create_candidate({"name": f"Candidate {k}", "email": f"c{k}@example.com",
                                            "phone": f"+1415555{k:04d}"})
        interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                                              expires_at=store.clock() + timedelta(days=1))
        ids.append(store.queue_invitation(interview.id, channel).id)
    return ids


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Inbox()
        smtp = Controller(inbox, hostname="127.0.0.1", port=unused_port())
        smtp.start()
        double = TwilioDouble()
        await double.start()
        port = unused_port()
        base = Settings(store=StoreSettings(path=f"{tmp}/bench.db", recordings_dir=f"{tmp}/rec"))
        settings = dataclasses.replace(twilio_settings(base, double, port), email=EmailSettings(
            host="127.0.0.1", port=smtp.port, starttls=False, sender="jobs@example.com"))
        store = SessionStore(settings.store.path)
        runner = web.AppRunner(make_app(settings, store, background_jobs=False))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            sender = InvitationSender(settings, store)
            queue(store, n, "email")
            started = time.monotonic()
            await sender.run_once()
            mail_s = time.monotonic() - started
            report("e-mail: queued -> accepted by SMTP", [(t - started) * 1000 for t in inbox.arrived])
            print(f"{'e-mail throughput':<40} {n / mail_s:8.1f} per s")

            sms = queue(store, n, "sms")
            started = time.monotonic()
            await sender.run_once()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(store.get_invitation(i).status != "delivered" for i in sms):
                await asyncio.sleep(0.01)
            delivered = [store.get_invitation(i) for i in sms]
            assert all(v.status == "delivered" for v in delivered), [v.status for v in delivered]
            print(f"{'SMS: queued -> delivered (all)':<40} {(time.monotonic() - started) * 1000:8.1f} ms   n={n}")
        finally:
            await runner.cleanup()
            await double.close()
            smtp.stop()
            store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100)
    asyncio.run(main(parser.parse_args().n))
