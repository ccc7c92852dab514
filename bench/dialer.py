"""Campaign dialer throughput: call attempts per second against a SIPp UAS, and the concurrency held.

Run: .venv/bin/python bench/dialer.py [--candidates 60] [--max-concurrent 8] [--rate 10] [--answered 0.3]
     .venv/bin/python bench/dialer.py --nodes 2   # two dialer processes on one throwaway PostgreSQL

With --nodes N (2 or more) the campaign is dialed by N `phonescreen campaign run --campaign ID` processes
sharing a PostgreSQL store (a cluster started for the run, tests/postgres.py), and the cap and pacing are
checked across them from SIPp's own statistics.

A campaign of N candidates is dialed by the campaign scheduler through one media worker pool (no LLM) to one
SIPp UAS (tests/sipp/campaign_uas.xml) that answers a share of the numbers (and hangs up after 1 s) and
returns 486 for the rest. Printed: attempts per second (claim to claim), time from claim to the call's end
(p50/p95), the most calls in progress at once as the store saw it and as SIPp saw it, against the cap.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from latency import row  # noqa: E402  (bench/latency.py: the same p50/p95 rows)

from campaign_harness import OffsetClock, make_campaign  # noqa: E402
from campaign_sipp import ANSWERS, BUSY, campaign_uas, dialer_node, paced  # noqa: E402
from config.settings import LogSettings, Settings, StoreSettings  # noqa: E402
from dialer.campaign.scheduler import CampaignScheduler  # noqa: E402
from dialer.sip.shared_pool import SharedPool  # noqa: E402
from models.db import parse_time, utcnow  # noqa: E402
from models.store import SessionStore  # noqa: E402
from sip_harness import short_template, sip_settings  # noqa: E402


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    peak = level = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


EVERY_DAY = {"start": "00:00", "end": "23:59", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}


def run_nodes(args: argparse.Namespace, tmp: Path, url: str, campaign_id: str, domain: str) -> float:
    """N dialer processes on the PostgreSQL store until the campaign is over; returns the seconds taken."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PHONESCREEN_")},
           "PHONESCREEN_STORE_URL": url, "PHONESCREEN_STORE_PATH": str(tmp / "node.db"),
           "PHONESCREEN_SIP_DOMAIN": domain, "PHONESCREEN_SIP_RING_TIMEOUT_S": "5",
           "PHONESCREEN_SIP_WORKERS": str(max(1, -(-args.max_concurrent // 4))),
           "PHONESCREEN_STORE_RECORDINGS_DIR": str(tmp / "rec"), "PHONESCREEN_LOG_LEVEL": "warning",
           "PHONESCREEN_CONFIG": str(tmp / "none.toml"), "PYTHONPATH": str(REPO)}
    (tmp / "none.toml").write_text("")
    started = time.monotonic()  # includes each node's start (its voice models): what a deployment sees
    nodes = [dialer_node(env, tmp / f"node-{n}.log", campaign_id) for n in range(args.nodes)]
    try:
        for n, node in enumerate(nodes):
            if node.wait(timeout=900) != 0:
                sys.exit(f"dialer node {n} failed: {(tmp / f'node-{n}.log').read_text()[-2000:]}")
    finally:
        for node in nodes:  # interrupted or failed: no node is left dialing
            if node.poll() is None:
                node.terminate()
                node.wait(timeout=30)
    return time.monotonic() - started


async def bench(args: argparse.Namespace, tmp: Path) -> None:
    answered = int(args.candidates * args.answered)
    phones = [f"{ANSWERS}{n:03d}" for n in range(answered)] + [f"{BUSY}{n:03d}" for n in range(args.candidates - answered)]
    workers = max(1, -(-args.max_concurrent // 4))
    cluster = None
    if args.nodes > 1:
        from postgres import PgCluster, pg_bin_dir
        if pg_bin_dir() is None:
            sys.exit("--nodes needs PostgreSQL (initdb, pg_ctl): apt-get install postgresql, or ./run")
        cluster = PgCluster(pg_bin_dir()).start()
    try:
        with campaign_uas(tmp, hang_up_after_ms=1000) as uas:
            url = cluster.new_database() if cluster else ""
            base = Settings(log=LogSettings(level="warning"), store=StoreSettings(
                path=str(tmp / "bench.db"), url=url, recordings_dir=str(tmp / "rec")))
            settings = sip_settings(base, workers=workers, ring_timeout_s=5.0, domain=uas.domain)
            store = SessionStore(settings.store.target, clock=utcnow if cluster else OffsetClock())
            campaign = make_campaign(store, short_template(), phones, max_concurrent_calls=args.max_concurrent,
                                     attempts_per_second=args.rate, window=EVERY_DAY,
                                     retry={"busy": {"delay_s": 60, "max_attempts": 1}},
                                     resume={"max_resumes": 0})  # SIPp hangs up 1 s in: no redials
            if cluster:
                store.campaign_action(campaign.id, "start")
                elapsed = run_nodes(args, tmp, url, campaign.id, uas.domain)
            else:
                elapsed = await one_process(settings, store, campaign.id)
            report(args, store, campaign, uas, answered, workers, elapsed)
            store.close()
    finally:
        if cluster:
            cluster.stop()


async def one_process(settings: Settings, store: SessionStore, campaign_id: str) -> float:
    pool = SharedPool(settings, store, with_llm=False)
    await pool.get()  # start the workers first: model loading is not dialing
    store.campaign_action(campaign_id, "start")
    scheduler = CampaignScheduler(settings, store, pool=pool, campaign_ids=[campaign_id], poll_interval_s=0.05)
    started = time.monotonic()
    try:
        await asyncio.wait_for(scheduler.run(until_done=True), 900)
    finally:
        await scheduler.close(hang_up=True)
        await pool.close()
    return time.monotonic() - started


def report(args: argparse.Namespace, store: SessionStore, campaign, uas, answered: int, workers: int,
           elapsed: float) -> None:
    phone_of = {cid: store.get_candidate(cid).phone for cid in campaign.candidate_ids}
    attempts = [a for cid in campaign.candidate_ids for a in store.list_attempts(campaign.id, cid)
                if a.started_at and a.ended_at]
    spans = [(parse_time(a.started_at).timestamp(), parse_time(a.ended_at).timestamp()) for a in attempts]
    phones = [phone_of[a.candidate_id] for a in attempts]
    starts = sorted(s for s, _ in spans)
    gaps = [(b - a) * 1000 for a, b in zip(starts, starts[1:])]
    print(f"phonescreen campaign dialer — {len(attempts)} attempts ({answered} answered, "
          f"{len(attempts) - answered} busy), cap {args.max_concurrent}, pacing {args.rate}/s, "
          f"{args.nodes} node(s) of {workers} media worker(s)" + (", PostgreSQL" if args.nodes > 1 else ""))
    print(f"attempts per second (whole campaign)         {len(spans) / elapsed:8.2f}   in {elapsed:.1f} s")
    print(row("between two claims (ms)", gaps))
    print(row("claim -> attempt ended, answered (ms)", [(b - a) * 1000 for (a, b), p in zip(spans, phones)
                                                       if p.startswith(ANSWERS)]))
    print(row("claim -> attempt ended, busy (ms)", [(b - a) * 1000 for (a, b), p in zip(spans, phones)
                                                   if p.startswith(BUSY)]))
    print(f"peak concurrent calls: store {peak_overlap(spans)}, SIPp {uas.peak_concurrent_calls()}, "
          f"cap {args.max_concurrent}")
    per_second = uas.new_calls_per_second()
    print(f"new calls per second (SIPp): max {max(per_second, default=0)}, pacing held: "
          f"{paced(per_second, args.rate)}")
    print(f"progress: {store.campaign_progress(campaign.id)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=60)
    parser.add_argument("--max-concurrent", type=int, default=8)
    parser.add_argument("--rate", type=float, default=10.0, help="campaign pacing, attempts per second")
    parser.add_argument("--answered", type=float, default=0.3, help="share of numbers that answer")
    parser.add_argument("--nodes", type=int, default=1, help="dialer processes; 2 or more share a PostgreSQL store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phonescreen-bench-dialer-") as tmp:
        asyncio.run(bench(args, Path(tmp)))


if __name__ == "__main__":
    main()
