"""`phonescreen call TARGET --position ID`: place one SIP interview now and show it live."""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time

from config.settings import Settings
from dialer.sip.targets import NoRoute, sip_target
from models.lifecycle import Status
from models.store import SessionStore, default_expiry
from server.cli_output import CliError, open_store


def call(args: argparse.Namespace, settings: Settings) -> int:
    try:
        target = sip_target(args.target, settings.sip)
    except NoRoute as exc:
        raise CliError(str(exc)) from None
    with open_store(settings) as store:
        store.get_position(args.position)  # NotFound is reported by the CLI
        interview_id = _schedule(store, args, settings)
        print(f"interview {interview_id}: calling {target}", flush=True)
        status = asyncio.run(_place(settings, store, interview_id, target, with_llm=not args.no_llm))
    return 0 if status == Status.COMPLETED else 1


def _schedule(store: SessionStore, args: argparse.Namespace, settings: Settings) -> str:
    if args.candidate:
        candidate = store.get_candidate(args.candidate)
    else:
        phone = args.phone or "+10000000000"  # a SIP URI target needs no real number; the record needs one
        candidate, _ = store.upsert_candidate({"name": args.name, "phone": phone,
                                               "timezone": settings.interviews.default_timezone})
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=args.position, channel="sip",
                                          expires_at=default_expiry(store.clock, settings.interviews.invite_expiry_days))
    return interview.id


async def _place(settings: Settings, store: SessionStore, interview_id: str, target: str, *, with_llm: bool) -> str:
    from dialer.sip.pool import MediaWorkerPool
    started = time.monotonic()

    def show(_id: str, status: str) -> None:
        print(f"{time.monotonic() - started:7.1f}s  status: {status}", flush=True)

    one_worker = dataclasses.replace(settings, sip=dataclasses.replace(settings.sip, workers=1))
    async with MediaWorkerPool(one_worker, store, with_llm=with_llm, on_state=show) as pool:
        call = asyncio.create_task(pool.dial(interview_id, target))
        shown = 0
        while not call.done():
            turns = store.turns(interview_id)
            for turn in turns[shown:]:
                who = "AI " if turn.role == "agent" else "CAN"
                print(f"{time.monotonic() - started:7.1f}s  {who} {turn.text}", flush=True)
            shown = len(turns)
            await asyncio.wait({call}, timeout=0.5)
        result = call.result()
    for turn in store.turns(interview_id)[shown:]:
        print(f"{time.monotonic() - started:7.1f}s  {'AI ' if turn.role == 'agent' else 'CAN'} {turn.text}")
    code = f" (SIP {result.sip_code})" if result.sip_code else ""
    print(f"interview {interview_id}: {result.status}{code}")
    return result.status
