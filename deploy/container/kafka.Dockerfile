# Kafka for Sawmill: one KRaft node (broker + controller) built from the Apache jars on Maven
# Central, the same classpath deploy/local/services runs on the host (no Kafka tarball, no
# registry image). The JRE comes from Debian 12's apt.
#
# Build context (build-images.sh stages it in /var/cache/sawmill-images/context/kafka):
#   lib/            the runtime classpath (kafka_2.13, kafka-tools, log4j2 backend, ...) that
#                   deploy/local/services resolves with Maven into /var/cache/sawmill-services
#   entrypoint.sh   deploy/container/kafka/entrypoint.sh
#   healthcheck.sh  deploy/container/kafka/healthcheck.sh
#
#   podman run -d --name kafka --hostname kafka --network NET localhost/sawmill-kafka
#   podman exec kafka kafka topics --create --topic access-logs --partitions 3
# Settings: see entrypoint.sh (KAFKA_ADVERTISED_HOST, KAFKA_CLUSTER_ID, KAFKA_HEAP_OPTS, ...).
ARG DEBIAN_IMAGE=debian:bookworm-20260824-slim@sha256:88200866dfff7ea7f5cbcb6ec7c8a701889efe6fe859fe64d6990e4b07ea4171
FROM ${DEBIAN_IMAGE}
# Identical to the first RUN of hadoop.Dockerfile, so both images share this layer.
# (The -slim dpkg excludes drop /usr/share/man; the JRE's postinst needs man1 to exist.)
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini \
    && rm -rf /var/lib/apt/lists/*
ARG KAFKA_VERSION=4.4.0
LABEL org.opencontainers.image.title="Kafka $KAFKA_VERSION (KRaft, jars from Maven Central)" \
      org.apache.kafka.version="$KAFKA_VERSION"
RUN groupadd --system --gid 10002 kafka \
    && useradd --system --uid 10002 --gid kafka --home-dir /var/lib/kafka --create-home \
         --shell /usr/sbin/nologin kafka \
    && mkdir -p /var/lib/kafka/data /opt/kafka/config \
    && chown -R kafka:kafka /var/lib/kafka /opt/kafka/config
COPY lib/ /opt/kafka/libs/
COPY entrypoint.sh /usr/local/bin/kafka
COPY healthcheck.sh /usr/local/bin/kafka-healthcheck
ENV KAFKA_HOME=/opt/kafka \
    KAFKA_VERSION=$KAFKA_VERSION \
    KAFKA_DATA_DIR=/var/lib/kafka/data
USER kafka
WORKDIR /var/lib/kafka
EXPOSE 9092
HEALTHCHECK --interval=10s --timeout=30s --start-period=20s --retries=12 \
    CMD ["/usr/local/bin/kafka-healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/kafka"]
CMD ["server"]
