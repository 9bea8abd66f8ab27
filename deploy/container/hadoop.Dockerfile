# HDFS for Sawmill: NameNode and DataNode (one image, two commands) built from the Apache
# Hadoop jars on Maven Central, the same classpath deploy/local/services runs on the host (no
# Hadoop tarball, no registry image). The JRE comes from Debian 12's apt.
#
# Build context (build-images.sh stages it in /var/cache/sawmill-images/context/hadoop):
#   lib/            hadoop-hdfs, hadoop-hdfs-client, hadoop-common and their runtime
#                   dependencies, resolved by deploy/local/services into /var/cache/sawmill-services
#   entrypoint.sh   deploy/container/hadoop/entrypoint.sh
#   healthcheck.sh  deploy/container/hadoop/healthcheck.sh
#
#   podman run -d --name namenode --network NET localhost/sawmill-hadoop namenode
#   podman run -d --name datanode --network NET localhost/sawmill-hadoop datanode
#   podman exec namenode hdfs dfs -put - /sawmill/hello.txt
# Settings: see entrypoint.sh (HDFS_NAMENODE_HOST, HADOOP_HEAP_OPTS, ...).
ARG DEBIAN_IMAGE=debian:bookworm-20260824-slim@sha256:88200866dfff7ea7f5cbcb6ec7c8a701889efe6fe859fe64d6990e4b07ea4171
FROM ${DEBIAN_IMAGE}
# Identical to the first RUN of kafka.Dockerfile, so both images share this layer.
# (The -slim dpkg excludes drop /usr/share/man; the JRE's postinst needs man1 to exist.)
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini \
    && rm -rf /var/lib/apt/lists/*
ARG HADOOP_VERSION=3.4.3
LABEL org.opencontainers.image.title="HDFS $HADOOP_VERSION NameNode/DataNode (jars from Maven Central)" \
      org.apache.hadoop.version="$HADOOP_VERSION"
RUN groupadd --system --gid 10003 hadoop \
    && useradd --system --uid 10003 --gid hadoop --home-dir /var/lib/hadoop --create-home \
         --shell /usr/sbin/nologin hadoop \
    && mkdir -p /var/lib/hadoop/dfs /opt/hadoop/etc/hadoop /opt/hadoop/logs \
    && chown -R hadoop:hadoop /var/lib/hadoop /opt/hadoop/etc/hadoop /opt/hadoop/logs
COPY lib/ /opt/hadoop/lib/
COPY entrypoint.sh /usr/local/bin/hdfs
COPY healthcheck.sh /usr/local/bin/hdfs-healthcheck
ENV HADOOP_HOME=/opt/hadoop \
    HADOOP_CONF_DIR=/opt/hadoop/etc/hadoop \
    HADOOP_VERSION=$HADOOP_VERSION \
    HDFS_DATA_DIR=/var/lib/hadoop/dfs
USER hadoop
WORKDIR /var/lib/hadoop
# NameNode: RPC 9000, HTTP 9870 (WebHDFS, /jmx). DataNode: data 9866, HTTP 9864, IPC 9867.
EXPOSE 9000 9870 9866 9864 9867
HEALTHCHECK --interval=10s --timeout=10s --start-period=20s --retries=12 \
    CMD ["/usr/local/bin/hdfs-healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/hdfs"]
CMD ["namenode"]
