"""`phonescreen call TARGET --position ID`: place one SIP interview now and show it live.

It runs beside `phonescreen serve` or another `phonescreen call`: when `sip.port` is taken it listens on a
free port instead (RTP ports already move on past taken ones: pjsua tries the next). Without
`--candidate` each call gets a candidate record of its own, so two calls never share (or rename) one."""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time

from config.settings import Settings, SipSettings
from dialer.sip.targets import NoRoute, sip_target
from models.lifecycle import Status
from models.store import SessionStore, default_expiry
from models.validation import clean_candidate
from server.cli.output import CliError, open_store

# A SIP URI target has no phone number, but a SIP interview's candidate needs one on record.
PLACEHOLDER_PHONE = "+10000000000"


def call(args: argparse.Namespace, settings: Settings) -> int:
    try:
        target = sip_target(args.target, settings.sip)
    except NoRoute as exc:
        raise CliError(str(exc)) from None
    with open_store(settings) as store:
        store.get_position(args.position)  # NotFound is reported by the CLI
        interview_id = _schedule(store, args, settings)
        print(f"interview {interview_id}: calling {target}", flush=True)
        settings = dataclasses.replace(settings, sip=_listening(settings.sip))
        status = asyncio.run(_place(settings, store, interview_id, target, with_llm=not args.no_llm))
    return 0 if status == Status.COMPLETED else 1


def _listening(sip: SipSettings) -> SipSettings:
    """One worker, on sip.port if it is free, else on any free port (another call or the server holds it)."""
    from dialer.sip.endpoint import free_udp_port, udp_port_free
    sip = dataclasses.replace(sip, workers=1)
    if udp_port_free(sip.bind_address, sip.port):
        return sip
    port = free_udp_port(sip.bind_address)
    print(f"SIP port {sip.port} is in use (another phonescreen?); this call listens on {port} "
          "(set sip.port or PHONESCREEN_SIP_PORT to choose)", flush=True)
    return dataclasses.replace(sip, port=port)


def _schedule(store: SessionStore, args: argparse.Namespace, settings: Settings) -> str:
    if args.candidate:
        candidate = store.get_candidate(args.candidate)
    else:
        phone = args.phone or (args.target if args.target.startswith("+") else PLACEHOLDER_PHONE)
        fields = clean_candidate({"name": args.name, "phone": phone},
                                 default_timezone=settings.interviews.default_timezone)
        candidate = store.create_candidate(fields)  # never an upsert: another record may share the number
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=args.position, channel="sip",
                                          expires_at=default_expiry(store.clock, settings.interviews.invite_expiry_days))
    return interview.id


async def _place(settings: Settings, store: SessionStore, interview_id: str, target: str, *, with_llm: bool) -> str:
    from dialer.sip.pool import MediaWorkerPool
    started = time.monotonic()

    def show(_id: str, status: str) -> None:
        print(f"{time.monotonic() - started:7.1f}s  status: {status}", flush=True)

    pool = MediaWorkerPool(settings, store, with_llm=with_llm, on_state=show)
    try:
        await pool.start()
    except (RuntimeError, TimeoutError) as exc:  # e.g. another process took the SIP port meanwhile
        store.transition(interview_id, Status.CANCELLED, reason="the media worker did not start")
        raise CliError(str(exc) or "the media worker did not start in time") from None
    try:
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
    finally:
        await pool.close()
    for turn in store.turns(interview_id)[shown:]:
        print(f"{time.monotonic() - started:7.1f}s  {'AI ' if turn.role == 'agent' else 'CAN'} {turn.text}")
    code = f" (SIP {result.sip_code})" if result.sip_code else ""
    print(f"interview {interview_id}: {result.status}{code}")
    return result.status
