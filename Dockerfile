FROM python:3.11-slim

# tzdata: candidates' calling windows are in their own time zones.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tzdata ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY config ./config
COPY models ./models
COPY ivr ./ivr
COPY dialer ./dialer
COPY scoring ./scoring
COPY server ./server
RUN pip install --no-cache-dir .

RUN useradd --create-home --uid 10001 phonescreen && mkdir -p /data && chown phonescreen /data
USER phonescreen
ENV PHONESCREEN_STORE_PATH=/data/phonescreen.db \
    PHONESCREEN_STORE_RECORDINGS_DIR=/data/recordings \
    PHONESCREEN_SERVER_HOST=0.0.0.0
VOLUME /data
EXPOSE 8080
CMD ["phonescreen", "serve"]
