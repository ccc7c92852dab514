"""The SIP channel against third-party peers: SIPp scenarios (tests/sipp/*.xml) and baresip, all on
127.0.0.1, with real Piper audio from the candidate's side and real Whisper on ours.

The far ends do not listen to the interviewer, so each candidate recording is laid out on a timeline with
room for what the AI says (measured with the short template: greeting and consent end ~10.5 s after the
answer, the first question ~21 s) and inside its re-prompt window (8 s after each prompt).
"""
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
import socket

from dialer.sip.pool import MediaWorkerPool
from models.lifecycle import Status
from browser import write_wav
from sip_harness import SHORT_ANSWERS, new_interview, short_template, sim_phone, sip_settings
from sipp import baresip, candidate_track, rtp_packets, sipp, write_pcap, write_ulaw
from test_sip_calls import SHORT_SCRIPT, candidate_text
from voice import transcribe_wav, word_error_rate, word_recall

# Fixed offsets, not interactive: generous, so a loaded machine speaking late is not talked over
# (the short template re-prompts only after 15 s of silence).
CONSENT_AT_S = 15.0  # "Yes, I agree." once the greeting and the consent question are over (~11 s)
ANSWER_AT_S = 30.0  # the answer, once "Thank you, let's begin" and the question are over (~23 s)
TRACK_S = 70.0  # the call ends (~45 s) before the recording does
ANSWERS = " ".join(SHORT_ANSWERS)


def interview_track():
    return candidate_track([(CONSENT_AT_S, SHORT_ANSWERS[0]), (ANSWER_AT_S, SHORT_ANSWERS[1])], TRACK_S)


async def test_sipp_streaming_a_recorded_candidate_completes_the_interview(settings, store, tmp_path) -> None:
    settings = sip_settings(settings)
    interview_id = new_interview(store, short_template())
    audio = write_ulaw(tmp_path / "candidate.ulaw", interview_track())
    with sipp(tmp_path, "uas_answer_stream", files={"candidate.ulaw": audio}) as peer:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            result = await pool.dial(interview_id, peer.uri())
        sipp_result = await asyncio.to_thread(peer.result)
    assert result.status == Status.COMPLETED and result.sip_code == 200
    assert word_error_rate(ANSWERS, candidate_text(store, interview_id)) <= 0.15
    assert sipp_result.passed, sipp_result  # SIPp saw the whole dialog, our BYE included


async def test_baresip_auto_answers_speaks_the_answers_and_hears_the_greeting(settings, store, engines,
                                                                              tmp_path) -> None:
    settings = sip_settings(settings)
    interview_id = new_interview(store, short_template())
    source = write_wav(tmp_path / "answers.wav", interview_track(), 8000)
    with baresip(tmp_path, source) as phone:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            result = await pool.dial(interview_id, phone.uri())
    assert result.status == Status.COMPLETED and result.sip_code == 200, phone.log()
    assert word_error_rate(ANSWERS, candidate_text(store, interview_id)) <= 0.15
    heard = transcribe_wav(engines.stt, phone.recording("dec")).lower()  # what baresip received from us
    assert "automated interviewer" in heard and "thank you for your time" in heard, heard  # greeting to closing


async def test_each_sipp_outcome_ends_in_its_documented_status(settings, store, tmp_path) -> None:
    """Eight phones at once on one pool: refusals, a phone nobody picks up, a candidate who hangs up, and
    a line whose RTP stops while the dialog stays up."""
    settings = sip_settings(settings, workers=2, ring_timeout_s=3.0, rtp_timeout_s=3.0)
    template = short_template()
    refusals = {"486": Status.BUSY, "603": Status.DECLINED, "480": Status.NO_ANSWER, "500": Status.FAILED,
                "404": Status.FAILED}
    consent_only = candidate_track([(CONSENT_AT_S, SHORT_ANSWERS[0])], CONSENT_AT_S + 12)
    goes_quiet = candidate_track([(CONSENT_AT_S, SHORT_ANSWERS[0])], CONSENT_AT_S + 3)  # then no RTP at all
    # name -> (scenario, user to call, sipp() options)
    calls = {code: ("uas_refuse", code, {}) for code in refusals}
    calls["ring"] = ("uas_ring_forever", "candidate", {})
    calls["hang_up"] = ("uas_hang_up", "candidate", {
        "pause_ms": int((CONSENT_AT_S + 5) * 1000),  # BYE while the first question is being asked
        "files": {"candidate.ulaw": write_ulaw(tmp_path / "consent.ulaw", consent_only)}})
    calls["rtp_stops"] = ("uas_answer_stream", "candidate", {
        "files": {"candidate.ulaw": write_ulaw(tmp_path / "quiet.ulaw", goes_quiet)}})
    ids = {name: new_interview(store, template, phone=f"+1415555060{i}") for i, name in enumerate(calls)}
    states: dict[str, list[str]] = {iid: [] for iid in ids.values()}
    with contextlib.ExitStack() as stack:
        peers = {name: stack.enter_context(sipp(tmp_path, scenario, name=name, **options))
                 for name, (scenario, _, options) in calls.items()}
        async with MediaWorkerPool(settings, store, with_llm=False,
                                   on_state=lambda iid, status: states[iid].append(status)) as pool:
            results = await asyncio.gather(*(pool.dial(ids[name], peer.uri(calls[name][1]))
                                             for name, peer in peers.items()))
        sipp_results = {name: await asyncio.to_thread(peer.result) for name, peer in peers.items()}
    results = dict(zip(peers, results))
    for name, outcome in sipp_results.items():
        assert outcome.passed, (name, outcome)  # every scenario ran to its end: CANCEL, ACKs, BYEs answered
    for code, status in refusals.items():
        interview = store.get_interview(ids[code])
        assert (results[code].status, results[code].sip_code) == (status, int(code))
        assert interview.status == status and interview.outcome_code == code
        assert store.turns(ids[code]) == []
    assert results["ring"].status == Status.NO_ANSWER and "ringing" in states[ids["ring"]]
    assert store.get_interview(ids["ring"]).status == Status.NO_ANSWER  # our CANCEL, answered 487
    for name in ("hang_up", "rtp_stops"):
        turns = store.turns(ids[name])
        assert results[name].status == Status.PARTIAL and store.get_interview(ids[name]).status == Status.PARTIAL
        assert [t.role for t in turns][:2] == ["agent", "candidate"], (name, turns)
        assert "agree" in turns[1].text.lower() and "automated interviewer" in turns[0].text.lower()


async def test_malformed_sdp_and_garbage_do_not_hurt_the_worker(settings, store, tmp_path) -> None:
    settings = sip_settings(settings)
    template = short_template()
    broken, normal = new_interview(store, template), new_interview(store, template, phone="+14155550700")
    with sim_phone(tmp_path, [SHORT_SCRIPT]) as phone:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            with sipp(tmp_path, "uas_bad_sdp") as peer:
                result = await pool.dial(broken, peer.uri())
                bad_sdp = await asyncio.to_thread(peer.result)
            await asyncio.to_thread(_send_garbage, settings.sip.port)
            with sipp(tmp_path, "uac_garbage", remote=f"127.0.0.1:{settings.sip.port}", timeout_s=30) as peer:
                garbage = await asyncio.to_thread(peer.result, 40)
            followed = await pool.dial(normal, phone.uri("short"))
            assert pool.restarts == 0 and all(w.process.is_alive() for w in pool.workers)
    assert result.status == Status.FAILED and store.get_interview(broken).outcome_code, result
    assert bad_sdp.passed, bad_sdp  # the call was ended properly: ACK and BYE, each answered
    assert garbage.passed, garbage  # the unsolicited INVITE was refused and OPTIONS still answered 200
    assert followed.status == Status.COMPLETED
    assert word_error_rate(ANSWERS, candidate_text(store, normal)) <= 0.15


def _send_garbage(port: int) -> None:
    """Datagrams that are not SIP, or not whole SIP, at the worker's SIP port."""
    junk = [b"", b"\x00" * 7, bytes(range(256)) * 16, b"\xff" * 60000, b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP",
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKnothing\r\nCSeq: 1 INVITE\r\n\r\n",
            b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: -5\r\n\r\n", "ünïcødé ☎ garbage".encode()]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind(("127.0.0.1", 0))
        for datagram in junk * 3:
            sender.sendto(datagram, ("127.0.0.1", port))


# Keypad timeline: 1 (consent) when the consent question is over, 9 (repeat) when the first question is,
# the answer once the repeated question is over.
CONSENT_KEY_AT_S, REPEAT_KEY_AT_S, ANSWER_AFTER_REPEAT_AT_S = 15.0, 25.0, 35.0


async def test_keypad_consent_and_repeat_over_sip_info_and_rfc4733(settings, store, tmp_path) -> None:
    settings = sip_settings(settings)
    template = short_template()
    answer_only = candidate_track([(ANSWER_AFTER_REPEAT_AT_S, SHORT_ANSWERS[1])], ANSWER_AFTER_REPEAT_AT_S + 20)
    info_audio = write_ulaw(tmp_path / "answer.ulaw", answer_only)
    rfc4733_audio = write_pcap(tmp_path / "answer.pcap",
                               rtp_packets(answer_only, [(CONSENT_KEY_AT_S, "1"), (REPEAT_KEY_AT_S, "9")]))
    ids = {"info": new_interview(store, template), "rfc4733": new_interview(store, template, phone="+14155550800")}
    with sipp(tmp_path, "uas_dtmf_info", files={"candidate.ulaw": info_audio},
              variables={"consent_key_at": int(CONSENT_KEY_AT_S * 1000),
                         "repeat_key_after": int((REPEAT_KEY_AT_S - CONSENT_KEY_AT_S) * 1000)}) as info, \
            sipp(tmp_path, "uas_dtmf_rfc4733", files={"candidate.pcap": rfc4733_audio}) as rfc4733:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            results = await asyncio.gather(pool.dial(ids["info"], info.uri()), pool.dial(ids["rfc4733"], rfc4733.uri()))
        sipp_results = [await asyncio.to_thread(peer.result) for peer in (info, rfc4733)]
    for (method, interview_id), result, peer_result in zip(ids.items(), results, sipp_results):
        assert result.status == Status.COMPLETED, (method, result)
        assert peer_result.passed, (method, peer_result)  # INFOs answered 200, our BYE received
        turns = store.turns(interview_id)
        # No spoken consent: 1 took the interview to the first question, 9 had it asked again.
        assert [t.role for t in turns] == ["agent", "agent", "agent", "candidate", "agent"], (method, turns)
        question = template.factors[0].questions[0]
        assert question in turns[1].text and turns[2].text.startswith("Sure.") and question in turns[2].text
        assert word_error_rate(SHORT_ANSWERS[1], turns[3].text) <= 0.15, (method, turns[3].text)


async def test_a_line_echoing_our_rtp_sends_our_own_voice_back(settings, store, engines, tmp_path) -> None:
    settings = sip_settings(settings)
    interview_id = new_interview(store, short_template())
    with sipp(tmp_path, "uas_echo", rtp_echo=True, timeout_s=120) as peer:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            call = asyncio.create_task(pool.dial(interview_id, peer.uri()))
            # A line that echoes everything may keep the interviewer busy (how our garbled voice is taken
            # varies): 40 s of echo is plenty to check the audio, then we hang up ourselves.
            done, _ = await asyncio.wait({call}, timeout=40)
            if not done:
                pool.hang_up(interview_id)
            result = await asyncio.wait_for(call, 60)
        echo = await asyncio.to_thread(peer.result)
    assert echo.passed, echo
    # Echoed turns that read back as our own words are ignored (three in a row end the call, partial);
    # how a garbled echo is taken depends on what Whisper makes of it (an unclear consent: declined; a
    # callback request; rarely a consent), so the call may end in any of the ways an answered call ends.
    assert result.status not in (Status.FAILED, Status.NO_ANSWER, Status.BUSY)
    recording = store.get_interview(interview_id).recording_path
    if result.status == Status.DECLINED:  # no consent, no recording: deleted at once
        assert recording is None and not list(Path(settings.store.recordings_dir).glob(f"{interview_id}*"))
        return
    # The echo barges in on the AI, so neither side says the whole greeting; what the AI said (right
    # channel) must come back on the candidate's channel (left).
    said = transcribe_wav(engines.stt, recording, channel=1)
    heard = transcribe_wav(engines.stt, recording, channel=0)
    # Our words come back: most of what the AI said is among the words heard. (Not an edit distance: when
    # the echo keeps the interviewer answering itself, one reply repeats a dozen times, and a misheard word
    # in each repeat, or a repeat cut at the hang-up, misaligns the two transcripts.)
    recall = word_recall(said, heard)
    assert len(heard.split()) >= 5 and recall >= 0.6, (recall, said, heard)
