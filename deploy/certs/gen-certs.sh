#!/usr/bin/env bash
# deploy/certs/gen-certs.sh DIR [NAMESPACE] - the coordinator's TLS files and the shared token
# for a secured Sawmill (docs/security.md, "Certificates"), made with openssl:
#
#   DIR/ca.pem, ca.key             a CA for Sawmill's own gRPC/HTTPS (keep ca.key offline)
#   DIR/coordinator.pem, .key      server certificate: coordinator, sawmill-coordinator,
#                                  *.sawmill-coordinator.NAMESPACE.svc.cluster.local
#                                  (a pod's name under the headless Service), localhost, 127.0.0.1
#   DIR/worker.pem, .key           client certificate of the workers, CN sawmill-worker (what
#                                  --allow-worker / SAWMILL_ALLOWED_WORKERS matches)
#   DIR/status.pem, .key           client certificate for `sawmill status` (not a worker)
#   DIR/token                      32 random alphanumerics, no line end
#
# Existing files are kept (run it again after deleting one to reissue it). NAMESPACE defaults
# to sawmill. Keys are written 0600; the directory is made 0700.
set -euo pipefail
dir=${1:?usage: gen-certs.sh DIR [NAMESPACE]}
ns=${2:-sawmill}
command -v openssl >/dev/null || { echo "gen-certs: openssl not found (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
umask 077

if [[ ! -s ca.pem ]]; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -sha256 -subj "/CN=sawmill CA" \
    -keyout ca.key -out ca.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null
fi

issue() {  # issue NAME CN SAN USAGE
  local name=$1 cn=$2 san=$3 usage=$4
  [[ -s $name.pem ]] && return 0
  openssl req -new -newkey rsa:3072 -nodes -keyout "$name.key" -subj "/CN=$cn" -out "$name.csr" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -sha256 \
    -out "$name.pem" -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$san" "$usage") \
    2>/dev/null
  rm -f "$name.csr"
}

issue coordinator coordinator \
  "DNS:coordinator,DNS:sawmill-coordinator,DNS:sawmill-coordinator.$ns.svc,DNS:sawmill-coordinator.$ns.svc.cluster.local,DNS:*.sawmill-coordinator.$ns.svc.cluster.local,DNS:localhost,IP:127.0.0.1" \
  serverAuth
issue worker sawmill-worker "DNS:sawmill-worker" clientAuth
issue status sawmill-status "DNS:sawmill-status" clientAuth
if [[ ! -s token ]]; then
  head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 >token
fi
rm -f ca.srl
chmod 600 ./*.key token
chmod 644 ./*.pem
echo "gen-certs: CA, coordinator, worker and status certificates and a token in $PWD" >&2
