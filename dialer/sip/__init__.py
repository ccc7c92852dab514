"""The SIP channel: pjsua2 media worker processes place calls and bridge their RTP audio to the voice
engine. endpoint.py sets up pjsua2, media.py moves frames between pjsip's media thread and asyncio,
call.py is one call and its Leg, outcomes.py maps SIP codes onto the lifecycle, worker.py is a media
worker process, pool.py the pool of them the server drives."""
