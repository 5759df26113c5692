# tether-bridge: built on Debian bookworm with `make install`, run as a non-root user with its
# state in a volume. The configuration is mounted at /etc/tether-bridge/tether-bridge.yaml
# (none is baked in: the entry point says what to mount); a starting point for a real
# account is /usr/local/share/doc/tether-bridge/service.yaml.
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential pkg-config libcurl4-openssl-dev libjansson-dev libyajl-dev libyaml-dev \
        libmosquitto-dev libsqlite3-dev libmicrohttpd-dev libssl-dev libsystemd-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY lib ./lib
COPY bridge ./bridge
COPY config ./config
COPY rules ./rules
COPY man ./man
COPY contrib ./contrib
RUN make BUILD=build build/tether-bridge && make BUILD=build DESTDIR=/out install

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        libcurl4 libjansson4 libyajl2 libyaml-0-2 libmosquitto1 libsqlite3-0 libmicrohttpd12 \
        libssl3 libsystemd0 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/tether-bridge --shell /usr/sbin/nologin tether \
    && mkdir -p /var/lib/tether-bridge /etc/tether-bridge \
    && chown tether:tether /var/lib/tether-bridge && chmod 0700 /var/lib/tether-bridge
COPY --from=build /out/usr/local/bin/tether-bridge /usr/local/bin/tether-bridge
COPY --from=build /out/usr/local/share /usr/local/share
COPY contrib/docker-entrypoint.sh /usr/local/bin/docker-entrypoint
USER tether
VOLUME /var/lib/tether-bridge
# /metrics and /healthz when the configuration sets metrics.listen (0.0.0.0:9464)
EXPOSE 9464
ENTRYPOINT ["docker-entrypoint"]
CMD ["run"]
