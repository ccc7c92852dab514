"""Prometheus metrics at /metrics (text format, no API key: scrape it from inside your network).

One registry per app, so every server (and every test) counts only its own calls. Sources: the status
changes this process's store makes and those SIP media workers report over their pipes (interviews by
final status, call setup time), the reply timings of each finished SIP session (first AI audio, STT /
LLM / TTS stage times), the webhook dispatcher's attempts, the SIP dialer's results; active calls and
media worker restarts are read when scraped.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from models.lifecycle import ACTIVE, ENDED, Status
from models.records import CHANNELS, Interview
from models.store import SessionStore
from server.webhooks import AttemptResult

if TYPE_CHECKING:
    from dialer.sip.pool import CallResult  # pjsua2 loads only in servers that dial SIP

LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
SETUP_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0)
FINAL = ENDED - {Status.REPORT_READY}  # report_ready is scoring finishing a completed interview
TRACKED_CALLS = 10_000  # status changes remembered per interview id, so a status is never counted twice


class Metrics:
    def __init__(self, store: SessionStore, pool_restarts: Callable[[], int] = lambda: 0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.interviews = Counter("phonescreen_interviews", "Interviews that reached a final status.",
                                  ["status"], registry=self.registry)
        self.first_audio = Histogram("phonescreen_first_ai_audio_seconds", "Candidate stops speaking -> first "
                                     "AI audio on the line.", buckets=LATENCY_BUCKETS, registry=self.registry)
        self.stage = Histogram("phonescreen_stage_seconds", "Reply stage times after the end of a turn: stt "
                               "(final transcript), llm (interviewer decision when an LLM worded it), tts (text to "
                               "first audio).", ["stage"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.call_setup = Histogram("phonescreen_call_setup_seconds", "Dialing -> answered.", ["channel"],
                                    buckets=SETUP_BUCKETS, registry=self.registry)
        self.webhook_failures = Counter("phonescreen_webhook_delivery_failures", "Failed webhook delivery attempts.",
                                        registry=self.registry)
        self.dialer_attempts = Counter("phonescreen_dialer_attempts", "Calls the dialer placed, by outcome.",
                                       ["channel", "outcome"], registry=self.registry)
        self.registry.register(_ScrapeTime(store, pool_restarts))
        self._seen: OrderedDict[str, tuple[str, float | None]] = OrderedDict()  # id -> (status, dialing since)

    # -- sources -------------------------------------------------------------------------------------------
    def status_changed(self, interview_id: str, status: str, channel: str = "sip") -> None:
        """A status change, from the store's listener or a media worker (either may report one twice)."""
        last, dialing_since = self._seen.pop(interview_id, (None, None))
        if status != last:
            if status == Status.DIALING:
                dialing_since = time.monotonic()
            elif status == Status.IN_PROGRESS and dialing_since is not None:
                self.call_setup.labels(channel).observe(time.monotonic() - dialing_since)
            elif status in FINAL:
                self.interviews.labels(status).inc()
        self._seen[interview_id] = (status, dialing_since)
        while len(self._seen) > TRACKED_CALLS:
            self._seen.popitem(last=False)

    def store_transition(self, interview: Interview) -> None:
        self.status_changed(interview.id, interview.status, interview.channel)

    def call_done(self, result: "CallResult", timings: list[dict[str, Any]]) -> None:
        """A SIP call ended (the pool's on_done): its outcome and its session's reply timings."""
        self.dialer_attempts.labels("sip", result.status).inc()
        self.observe_timings(timings)

    def observe_timings(self, timings: Iterable[dict[str, Any]]) -> None:
        """ivr.session.TurnTiming fields as dicts (what media workers send), one per reply."""
        for timing in timings:
            if timing.get("total_ms") is not None:
                self.first_audio.observe(timing["total_ms"] / 1000)
            if timing.get("stt_final_ms") is not None:
                self.stage.labels("stt").observe(timing["stt_final_ms"] / 1000)
            if timing.get("reply_source") in ("llm", "fallback") and timing.get("decide_ms") is not None:
                self.stage.labels("llm").observe(timing["decide_ms"] / 1000)
            if timing.get("tts_first_audio_ms") is not None:
                self.stage.labels("tts").observe(timing["tts_first_audio_ms"] / 1000)

    def webhook_attempt(self, result: AttemptResult) -> None:
        if not result.ok:
            self.webhook_failures.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ScrapeTime(Collector):
    """Values read when scraped: calls under way per channel (from the store, so calls of every process
    count) and media worker restarts."""

    def __init__(self, store: SessionStore, pool_restarts: Callable[[], int]) -> None:
        self.store, self.pool_restarts = store, pool_restarts

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time only: no store query when the registry is built

    def collect(self) -> Iterable[Metric]:
        active = GaugeMetricFamily("phonescreen_active_calls", "Interviews dialing, ringing or in progress.",
                                   labels=["channel"])
        marks = ",".join("?" * len(ACTIVE))
        counts = {r["channel"]: r["n"] for r in self.store.db.query(
            f"SELECT channel, COUNT(*) AS n FROM interviews WHERE status IN ({marks}) GROUP BY channel",
            [s.value for s in ACTIVE])}
        for channel in CHANNELS:
            active.add_metric([channel], counts.get(channel, 0))
        yield active
        restarts = CounterMetricFamily("phonescreen_media_worker_restarts", "Media workers replaced after dying.")
        restarts.add_metric([], self.pool_restarts())
        yield restarts


METRICS = web.AppKey("metrics", Metrics)


async def metrics_page(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


def add_routes(app: web.Application, store: SessionStore, pool_restarts: Callable[[], int]) -> Metrics:
    metrics = Metrics(store, pool_restarts)
    store.transition_listeners.append(metrics.store_transition)
    app[METRICS] = metrics
    app.router.add_get("/metrics", metrics_page)
    return metrics
