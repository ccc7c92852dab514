"""Campaign dialer throughput: call attempts per second against a SIPp UAS, and the concurrency held.

Run: .venv/bin/python bench/dialer.py [--candidates 60] [--max-concurrent 8] [--rate 10] [--answered 0.3]

A campaign of N candidates is dialed by the campaign scheduler through one media worker pool (no LLM) to one
SIPp UAS (tests/sipp/campaign_uas.xml) that answers a share of the numbers (and hangs up after 1 s) and
returns 486 for the rest. Printed: attempts per second (claim to claim), time from claim to the call's end
(p50/p95), the most calls in progress at once as the store saw it and as SIPp saw it, against the cap.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from latency import row  # noqa: E402  (bench/latency.py: the same p50/p95 rows)

from campaign_harness import OffsetClock, make_campaign  # noqa: E402
from campaign_sipp import ANSWERS, BUSY, campaign_uas  # noqa: E402
from config.settings import LogSettings, Settings, StoreSettings  # noqa: E402
from dialer.campaign.scheduler import CampaignScheduler  # noqa: E402
from dialer.sip.shared_pool import SharedPool  # noqa: E402
from models.db import parse_time  # noqa: E402
from models.store import SessionStore  # noqa: E402
from sip_harness import short_template, sip_settings  # noqa: E402


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    peak = level = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


async def bench(args: argparse.Namespace, tmp: Path) -> None:
    answered = int(args.candidates * args.answered)
    phones = [f"{ANSWERS}{n:03d}" for n in range(answered)] + [f"{BUSY}{n:03d}" for n in range(args.candidates - answered)]
    workers = max(1, -(-args.max_concurrent // 4))
    with campaign_uas(tmp, hang_up_after_ms=1000) as uas:
        base = Settings(log=LogSettings(level="warning"), store=StoreSettings(path=str(tmp / "bench.db"),
                                                                             recordings_dir=str(tmp / "rec")))
        settings = sip_settings(base, workers=workers, ring_timeout_s=5.0, domain=uas.domain)
        store = SessionStore(settings.store.target, clock=OffsetClock())
        campaign = make_campaign(store, short_template(), phones, max_concurrent_calls=args.max_concurrent,
                                 attempts_per_second=args.rate, retry={"busy": {"delay_s": 60, "max_attempts": 1}})
        pool = SharedPool(settings, store, with_llm=False)
        await pool.get()  # start the workers first: model loading is not dialing
        store.campaign_action(campaign.id, "start")
        scheduler = CampaignScheduler(settings, store, pool=pool, campaign_ids=[campaign.id], poll_interval_s=0.05)
        started = time.monotonic()
        try:
            await asyncio.wait_for(scheduler.run(until_done=True), 900)
        finally:
            await scheduler.close(hang_up=True)
            await pool.close()
        elapsed = time.monotonic() - started
        phone_of = {cid: store.get_candidate(cid).phone for cid in campaign.candidate_ids}
        attempts = [a for cid in campaign.candidate_ids for a in store.list_attempts(campaign.id, cid)
                    if a.started_at and a.ended_at]
        spans = [(parse_time(a.started_at).timestamp(), parse_time(a.ended_at).timestamp()) for a in attempts]
        phones = [phone_of[a.candidate_id] for a in attempts]
        starts = sorted(s for s, _ in spans)
        gaps = [(b - a) * 1000 for a, b in zip(starts, starts[1:])]
        print(f"phonescreen campaign dialer — {len(attempts)} attempts ({answered} answered, "
              f"{len(attempts) - answered} busy), cap {args.max_concurrent}, pacing {args.rate}/s, "
              f"{workers} media worker(s)")
        print(f"attempts per second (whole campaign)         {len(spans) / elapsed:8.2f}   in {elapsed:.1f} s")
        print(row("between two claims (ms)", gaps))
        print(row("claim -> attempt ended, answered (ms)", [(b - a) * 1000 for (a, b), p in zip(spans, phones)
                                                           if p.startswith(ANSWERS)]))
        print(row("claim -> attempt ended, busy (ms)", [(b - a) * 1000 for (a, b), p in zip(spans, phones)
                                                       if p.startswith(BUSY)]))
        print(f"peak concurrent calls: store {peak_overlap(spans)}, SIPp {uas.peak_concurrent_calls()}, "
              f"cap {args.max_concurrent}")
        print(f"progress: {store.campaign_progress(campaign.id)}")
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=60)
    parser.add_argument("--max-concurrent", type=int, default=8)
    parser.add_argument("--rate", type=float, default=10.0, help="campaign pacing, attempts per second")
    parser.add_argument("--answered", type=float, default=0.3, help="share of numbers that answer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phonescreen-bench-dialer-") as tmp:
        asyncio.run(bench(args, Path(tmp)))


if __name__ == "__main__":
    main()
