# etcd for Sawmill's checkpoints: Debian 12's etcd-server (3.4.23), the same etcd that
# deploy/local/services runs on the host. One member; clients on :2379.
#   build-images.sh etcd      (or: podman build -f deploy/container/etcd.Dockerfile deploy/container)
#   podman run -d --name etcd --network NET localhost/sawmill-etcd
# Settings are etcd's own ETCD_* variables (each flag --foo-bar reads ETCD_FOO_BAR); override
# ETCD_ADVERTISE_CLIENT_URLS when the container is not reached as `etcd`.
# The build context needs nothing but this file.
ARG DEBIAN_IMAGE=debian:bookworm-20260824-slim@sha256:88200866dfff7ea7f5cbcb6ec7c8a701889efe6fe859fe64d6990e4b07ea4171
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends etcd-server etcd-client tini \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/etcd/data \
    && chown -R etcd:etcd /var/lib/etcd \
    && chmod 700 /var/lib/etcd/data
ENV ETCD_NAME=default \
    ETCD_DATA_DIR=/var/lib/etcd/data \
    ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379 \
    ETCD_ADVERTISE_CLIENT_URLS=http://etcd:2379 \
    ETCD_LOGGER=zap \
    ETCDCTL_API=3
USER etcd
WORKDIR /var/lib/etcd
EXPOSE 2379
HEALTHCHECK --interval=5s --timeout=5s --start-period=5s --retries=20 \
    CMD ["etcdctl", "--endpoints=http://127.0.0.1:2379", "--dial-timeout=2s", "--command-timeout=3s", "endpoint", "health"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["etcd"]
