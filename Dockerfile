# tether-bridge: build on Debian bookworm, run as a non-root user with state in a volume.
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential pkg-config libcurl4-openssl-dev libjansson-dev libyaml-dev \
        libmosquitto-dev libsqlite3-dev libmicrohttpd-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY bridge ./bridge
COPY config ./config
COPY rules ./rules
COPY tests/sim ./tests/sim
RUN make BUILD=build build/tether-bridge

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        libcurl4 libjansson4 libyaml-0-2 libmosquitto1 libsqlite3-0 libmicrohttpd12 \
        libssl3 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/tether-bridge --shell /usr/sbin/nologin tether \
    && mkdir -p /var/lib/tether-bridge /etc/tether-bridge \
    && chown tether:tether /var/lib/tether-bridge && chmod 0700 /var/lib/tether-bridge
COPY --from=build /src/build/tether-bridge /usr/local/bin/tether-bridge
COPY config/example.yaml /etc/tether-bridge/tether-bridge.yaml
ENV TETHER_BRIDGE_STATE_DIR=/var/lib/tether-bridge
USER tether
VOLUME /var/lib/tether-bridge
ENTRYPOINT ["tether-bridge", "run", "-c", "/etc/tether-bridge/tether-bridge.yaml"]
