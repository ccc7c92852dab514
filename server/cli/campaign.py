"""`phonescreen campaign ...`: run a calling campaign from a CSV in this process with a live progress bar
(`campaign run FILE.csv --position ID`, or `campaign run --campaign ID` to carry on with one, e.g. after a
crash), and start / pause / resume / cancel / status of a campaign by id (a running campaign is dialed by
`phonescreen serve` or by `campaign run --campaign ID`)."""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from config.settings import Settings
from models.campaign_dialing import CAMPAIGN_ACTIONS
from models.campaign_settings import RETRY_OUTCOMES, WEEKDAYS, clean_campaign_settings
from models.candidate_csv import decode_csv, import_candidates
from models.store import Conflict, SessionStore
from models.validation import ValidationError
from server.cli.output import CliError, open_store

FINISHED_KEYS = ("completed", "partial", "failed", "skipped_dnc", "cancelled", "expired")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("campaign", help="calling campaigns").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    run = group.add_parser("run", help="import candidates, start a campaign and dial it here with a live progress "
                                       "bar (Ctrl-C pauses it)")
    run.add_argument("file", nargs="?", metavar="FILE.csv", help="candidates to call (see `candidates import`)")
    run.add_argument("--position", metavar="ID", help="the position to interview for (with FILE.csv)")
    run.add_argument("--campaign", metavar="ID", help="instead of a file: carry on dialing this campaign")
    run.add_argument("--name", help="the campaign's name (default: the file's name)")
    run.add_argument("--channel", choices=("sip", "twilio"), default="sip")
    run.add_argument("--max-concurrent", type=int, metavar="N", help="calls at once (default 4)")
    run.add_argument("--attempts-per-second", type=float, metavar="R", help="pacing (default 1)")
    run.add_argument("--window", metavar="HH:MM-HH:MM", help="calling hours in each candidate's time zone "
                                                            "(default 09:00-20:00)")
    run.add_argument("--weekdays", metavar="DAYS", help=f"comma-separated among {','.join(WEEKDAYS)} (default mon-fri)")
    run.add_argument("--retry", action="append", default=[], metavar="OUTCOME=DELAY_S:MAX_ATTEMPTS",
                     help=f"retry policy for one of {', '.join(RETRY_OUTCOMES)} (repeatable)")
    run.add_argument("--settings", metavar="JSON", help="campaign settings as the API takes them (snake_case); "
                                                        "the options above override it")
    run.add_argument("--lease-s", type=float, default=30.0, help="claim lease; a dialer that dies is taken over "
                                                                 "after it (default %(default)s)")
    run.add_argument("--no-llm", action="store_true", help="template wording only: do not load the LLM")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    for action in CAMPAIGN_ACTIONS:
        group.add_parser(action, help=f"{action} a campaign").add_argument("id", metavar="ID")
    status = group.add_parser("status", help="a campaign's progress")
    status.add_argument("id", metavar="ID")
    status.add_argument("--json", action="store_true", help="print JSON")


def campaign_action(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as store:
        try:
            campaign = store.campaign_action(args.id, args.action)
        except Conflict as exc:
            raise CliError(str(exc)) from None
    print(f"campaign {campaign.id}: {campaign.status}")
    return 0


def campaign_status(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as store:
        campaign = store.get_campaign(args.id)
        progress = store.campaign_progress(campaign.id)
    if args.json:
        from server.http import camelize
        print(json.dumps({"id": campaign.id, "status": campaign.status, "progress": camelize(progress)}, indent=2))
    else:
        print(f"campaign {campaign.id} ({campaign.name}): {campaign.status}")
        print(summary(progress))
    return 0


def summary(progress: dict[str, int]) -> str:
    return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in progress.items())


# -- campaign run ---------------------------------------------------------------------------------------
def campaign_run(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as store:
        if args.campaign:
            if args.file:
                raise CliError("give FILE.csv --position ID, or --campaign ID, not both")
            campaign = _carry_on(store, args.campaign)
        else:
            campaign = _new_campaign(store, args, settings)
        print(f"campaign {campaign.id}: {len(campaign.candidate_ids)} candidates, {campaign.channel}", flush=True)
        asyncio.run(_dial(settings, store, campaign.id, args))
        campaign, progress = store.get_campaign(campaign.id), store.campaign_progress(campaign.id)
    print(f"campaign {campaign.id}: {campaign.status}; {summary(progress)}")
    return 0


def _carry_on(store: SessionStore, campaign_id: str):
    campaign = store.get_campaign(campaign_id)
    action = {"draft": "start", "paused": "resume"}.get(campaign.status)
    if action:
        campaign = store.campaign_action(campaign.id, action)
    if campaign.status not in ("running", "completed"):
        raise CliError(f"campaign {campaign.id} is {campaign.status}")
    return campaign


def _new_campaign(store: SessionStore, args: argparse.Namespace, settings: Settings):
    if not args.file or not args.position:
        raise CliError("campaign run needs FILE.csv and --position ID (or --campaign ID)")
    store.get_position(args.position)  # NotFound is reported by the CLI
    campaign_settings = _settings(args)
    try:
        text = decode_csv(Path(args.file).read_bytes())
        result = import_candidates(store, text, settings.interviews.default_timezone)
    except OSError as exc:
        raise CliError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    except ValidationError as exc:
        raise CliError(f"{args.file}: {exc.message}") from None
    for error in result.errors:
        print(f"{args.file}: " + ": ".join(p for p in (f"line {error.line}", error.field, error.message) if p))
    if not result.candidate_ids:
        raise CliError(f"{args.file}: no valid candidate to call")
    try:
        campaign = store.create_campaign(name=args.name or Path(args.file).stem, position_id=args.position,
                                         channel=args.channel, settings=campaign_settings,
                                         candidate_ids=result.candidate_ids)
    except Conflict as exc:  # e.g. a candidate without a phone number
        raise CliError(str(exc)) from None
    return store.campaign_action(campaign.id, "start")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    try:
        data = json.loads(args.settings) if args.settings else {}
    except json.JSONDecodeError as exc:
        raise CliError(f"--settings: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliError("--settings: must be a JSON object")
    if args.max_concurrent is not None:
        data["max_concurrent_calls"] = args.max_concurrent
    if args.attempts_per_second is not None:
        data["attempts_per_second"] = args.attempts_per_second
    window = dict(data.get("window", {}))
    if args.window:
        start, _, end = args.window.partition("-")
        window.update(start=start, end=end)
    if args.weekdays:
        window["weekdays"] = [day.strip() for day in args.weekdays.split(",")]
    if window:
        data["window"] = window
    retry = dict(data.get("retry", {}))
    for item in args.retry:
        outcome, _, policy = item.partition("=")
        delay, _, attempts = policy.partition(":")
        if not delay.isdigit() or not attempts.isdigit():
            raise CliError(f"--retry {item!r}: expected OUTCOME=DELAY_S:MAX_ATTEMPTS, e.g. busy=900:3")
        retry[outcome] = {"delay_s": int(delay), "max_attempts": int(attempts)}
    if retry:
        data["retry"] = retry
    try:
        return clean_campaign_settings(data)
    except ValidationError as exc:
        raise CliError(f"campaign settings: {exc}") from None


async def _dial(settings: Settings, store: SessionStore, campaign_id: str, args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from dialer.campaign.scheduler import CampaignScheduler
    from dialer.sip.shared_pool import SharedPool
    pool = SharedPool(settings, store, with_llm=not args.no_llm)
    scheduler = CampaignScheduler(settings, store, pool=pool, campaign_ids=[campaign_id], lease_s=args.lease_s)
    loop = asyncio.get_running_loop()
    interrupts = 0

    def interrupt() -> None:  # first Ctrl-C pauses (calls in progress finish); the second hangs them up
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            if store.get_campaign(campaign_id).status == "running":
                store.campaign_action(campaign_id, "pause")
            print(f"\npaused; waiting for {len(scheduler.active)} calls in progress (Ctrl-C again hangs them up)",
                  file=sys.stderr, flush=True)
        else:
            for interview_id in list(scheduler.interview_of.values()):
                pool.hang_up(interview_id)

    loop.add_signal_handler(signal.SIGINT, interrupt)
    total = len(store.get_campaign(campaign_id).candidate_ids)
    # disable=None: the bar is drawn only on a terminal, so logs and pipes stay clean.
    bar = tqdm(total=total, unit="candidate", file=sys.stderr, disable=True if args.quiet else None)
    run = asyncio.create_task(scheduler.run(until_done=True))
    try:
        while not run.done():
            progress = store.campaign_progress(campaign_id)
            bar.n = sum(progress[k] for k in FINISHED_KEYS)
            bar.set_postfix_str(f"dialed {progress['dialed']} | in progress {progress['in_progress']} | completed "
                                f"{progress['completed'] + progress['partial']} | retry pending "
                                f"{progress['retry_pending']} | failed {progress['failed']}", refresh=True)
            await asyncio.wait({run}, timeout=0.5)
        run.result()
    finally:
        bar.close()
        loop.remove_signal_handler(signal.SIGINT)
        await scheduler.close()
        await pool.close()
