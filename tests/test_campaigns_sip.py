"""The campaign dialer end to end over real SIP: a 30-candidate campaign dialed by the scheduler through a
pjsua2 media worker to one SIPp UAS that answers some numbers, is busy (486) for some and never answers
others. The store's clock is moved forward for retry delays and calling windows (OffsetClock); SIPp's own
statistics check the concurrency cap."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from campaign_harness import OffsetClock, make_campaign
from campaign_sipp import ANSWERS, BUSY, RINGS, campaign_uas
from dialer.campaign.scheduler import CampaignScheduler
from dialer.sip.shared_pool import SharedPool
from models.db import parse_time
from models.store import SessionStore
from sip_harness import short_template, sip_settings

CAP = 3
SETTLE_TIMEOUT_S = 150


async def _settle(store: SessionStore, campaign_id: str, run: asyncio.Task) -> None:
    """Until nothing is being called and nothing is due now (or the campaign is over)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        assert not run.done(), run.exception()
        now = store.now()
        busy = store._one("SELECT 1 FROM call_attempts WHERE campaign_id = ? AND (status = 'active' OR "
                          "(status = 'pending' AND due_at <= ?))", [campaign_id, now])
        if busy is None:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"campaign still dialing after {SETTLE_TIMEOUT_S} s: {store.campaign_progress(campaign_id)}")


def _peak_overlap(intervals: list[tuple[str, str]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                   key=lambda edge: (edge[0], edge[1]))  # an end before a start at the same instant
    peak = level = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


async def test_thirty_candidate_campaign_against_sipp(settings, tmp_path) -> None:
    answers = [f"{ANSWERS}{n:03d}" for n in range(12)]  # the last 3 live in Tokyo: outside their window now
    busy = [f"{BUSY}{n:03d}" for n in range(9)]
    rings = [f"{RINGS}{n:03d}" for n in range(9)]
    zones = ["UTC"] * 9 + ["Asia/Tokyo"] * 3 + ["UTC"] * 18
    clock = OffsetClock()  # Wednesday 12:00 UTC: 21:00 in Tokyo
    with campaign_uas(tmp_path, hang_up_after_ms=1500) as uas:
        settings = sip_settings(settings, ring_timeout_s=2.0, rtp_timeout_s=4.0, domain=uas.domain)
        store = SessionStore(settings.store.path, clock=clock)
        campaign = make_campaign(store, short_template(), answers + busy + rings, timezones=zones,
                                 max_concurrent_calls=CAP, attempts_per_second=5.0, retry={
                                     "busy": {"delay_s": 600, "max_attempts": 2},
                                     "no_answer": {"delay_s": 3600, "max_attempts": 2}},
                                 resume={"max_resumes": 0})  # SIPp hangs up 1.5 s in: no redial of those here
        by_phone = {store.get_candidate(cid).phone: cid for cid in campaign.candidate_ids}
        store.campaign_action(campaign.id, "start")
        pool = SharedPool(settings, store, with_llm=False)
        scheduler = CampaignScheduler(settings, store, pool=pool, campaign_ids=[campaign.id], poll_interval_s=0.2)
        run = asyncio.create_task(scheduler.run(until_done=True))
        try:
            await _settle(store, campaign.id, run)
            # First wave: answered ones are done; busy and unanswered ones wait for their retry delays.
            for phone in busy + rings:
                first, retry = store.list_attempts(campaign.id, by_phone[phone])
                delay = 600 if phone in busy else 3600
                assert (first.outcome, retry.status) == ("busy" if phone in busy else "no_answer", "pending")
                assert (parse_time(retry.due_at) - parse_time(first.ended_at)).total_seconds() == delay
            for phone in answers[9:]:  # deferred to 09:00 in Tokyo (00:00 UTC), nothing dialed
                [deferred] = store.list_attempts(campaign.id, by_phone[phone])
                assert deferred.interview_id is None
                assert parse_time(deferred.due_at) == datetime(2030, 1, 10, 0, 0, tzinfo=timezone.utc)
            dialed = store.campaign_progress(campaign.id)["dialed"]
            assert dialed == 27
            clock.advance(300)  # half the busy delay: nothing may be dialed
            await asyncio.sleep(1.0)
            assert store.campaign_progress(campaign.id)["dialed"] == dialed
            clock.advance(310)
            await _settle(store, campaign.id, run)
            assert store.campaign_progress(campaign.id)["dialed"] == dialed + 9
            clock.advance(3600)
            await _settle(store, campaign.id, run)
            # Thursday 09:01 in Tokyo: the deferred candidates are called, and the campaign ends.
            clock.advance((datetime(2030, 1, 10, 0, 1, tzinfo=timezone.utc) - clock()).total_seconds())
            await asyncio.wait_for(run, SETTLE_TIMEOUT_S)
        finally:
            await scheduler.close(hang_up=True)
            await pool.close()

        assert store.get_campaign(campaign.id).status == "completed"
        progress = store.campaign_progress(campaign.id)
        assert progress == {**progress, "partial": 12, "failed": 18, "retry_pending": 0, "in_progress": 0,
                            "dialed": 12 + 2 * 18}
        invites = uas.invites()
        for phone in answers:
            [attempt] = store.list_attempts(campaign.id, by_phone[phone])
            assert (attempt.outcome, attempt.sip_code) == ("partial", 200)
            assert store.get_interview(attempt.interview_id).status == "partial"
            assert len(invites[phone]) == 1
        for phone in busy + rings:
            attempts = store.list_attempts(campaign.id, by_phone[phone])
            assert [a.outcome for a in attempts] == ["busy" if phone in busy else "no_answer"] * 2
            if phone in busy:
                assert [a.sip_code for a in attempts] == [486, 486]
            assert store.get_interview(attempts[1].interview_id).rerun_of == attempts[0].interview_id
            assert len(invites[phone]) == 2  # one INVITE per attempt, never two at once
        # The cap, from SIPp's side and from the store's attempt intervals.
        intervals = [(a.started_at, a.ended_at) for cid in campaign.candidate_ids
                     for a in store.list_attempts(campaign.id, cid) if a.started_at]
        assert _peak_overlap(intervals) == CAP
        assert 2 <= uas.peak_concurrent_calls() <= CAP, uas.errors()
        store.close()
