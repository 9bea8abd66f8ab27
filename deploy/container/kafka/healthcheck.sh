#!/bin/bash
# HEALTHCHECK of the sawmill-kafka image: the broker answers a metadata request
# (TopicCommand --list), the same check deploy/local/services uses; an open port is not enough.
set -euo pipefail
port=${KAFKA_PORT:-9092}
timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null || { echo "port $port closed" >&2; exit 1; }
timeout 25 /usr/local/bin/kafka topics --list >/dev/null
