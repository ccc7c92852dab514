# Build stage: llama-cpp-python compiles from source (~15 min on 2 cores); everything else is a wheel.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY config ./config
COPY models ./models
COPY ivr ./ivr
COPY dialer ./dialer
COPY scoring ./scoring
COPY server ./server
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# tzdata: calling windows are in each candidate's own zone; libgomp1: llama.cpp's threads.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tzdata ca-certificates libgomp1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels phonescreen && rm -rf /wheels

RUN useradd --create-home --uid 10001 phonescreen && mkdir -p /data && chown phonescreen /data
USER phonescreen
WORKDIR /data
ENV PHONESCREEN_STORE_PATH=/data/phonescreen.db \
    PHONESCREEN_STORE_RECORDINGS_DIR=/data/recordings \
    PHONESCREEN_MODELS_DIR=/data/models \
    PHONESCREEN_SERVER_HOST=0.0.0.0
VOLUME /data
EXPOSE 8080
CMD ["phonescreen", "serve"]
