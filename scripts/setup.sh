#!/usr/bin/env bash
# Installs what building and testing Sawmill needs on a fresh Debian machine with Rust, Java 17,
# Maven and Python. Idempotent: a second run only checks.
set -euo pipefail

need_apt=()
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
# librdkafka is built with TLS (OpenSSL) and SASL/GSSAPI (Cyrus SASL); the binaries load
# libgssapi_krb5 for Kerberos at run time (hdfs-native, librdkafka's GSSAPI plugin).
[[ -e /usr/include/openssl/ssl.h ]] || need_apt+=(libssl-dev)
[[ -e /usr/include/sasl/sasl.h ]] || need_apt+=(libsasl2-dev)
compgen -G '/usr/lib/*/sasl2/libgssapiv2.so' >/dev/null || need_apt+=(libsasl2-modules-gssapi-mit)
compgen -G '/usr/lib/*/libgssapi_krb5.so.2' >/dev/null || need_apt+=(libgssapi-krb5-2)
if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [[ "${1:-}" == "--test" ]]; then
  # pyarrow and duckdb read our Parquet in the tests: real clients that are not ours.
  # podman-compose runs the fleet test's compose file (podman itself comes with
  # deploy/container/build-images.sh, which scripts/test.sh runs).
  if ! command -v podman-compose >/dev/null; then
    echo "setup: installing podman-compose with pip" >&2
    python3 -m pip install -q podman-compose
    if command -v pyenv >/dev/null; then pyenv rehash; fi
  fi
  if ! python3 -c 'import pyarrow, duckdb, yaml' 2>/dev/null; then
    echo "setup: installing pyarrow and duckdb with pip" >&2
    python3 -m pip install -q pyarrow duckdb pyyaml
  fi
  # Headless Chromium opens the HTML report in the report's browser test.
  if ! command -v chromium >/dev/null; then
    echo "setup: installing chromium with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
  fi
  # The dependency audit (scripts/test.sh) reads the RustSec database copy in ../shared/.
  if ! cargo audit --version >/dev/null 2>&1; then
    echo "setup: installing cargo-audit with cargo install (a few minutes)" >&2
    cargo install --locked -q cargo-audit
  fi
  # The Kubernetes manifests' offline validation (tests/tests/kubernetes.rs): the API's schemas
  # from npm, and a kustomize renderer (kubectl's built-in one, else kustomize from the Go
  # module proxy).
  k8s=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/k8s" && pwd)
  if [[ ! -d $k8s/node_modules/kubernetes-models ]]; then
    echo "setup: installing the Kubernetes schema validators with npm" >&2
    npm ci --prefix "$k8s" --no-audit --no-fund --loglevel=error
  fi
  if ! command -v kubectl >/dev/null && ! command -v kustomize >/dev/null \
      && [[ ! -x ${GOPATH:-$HOME/go}/bin/kustomize ]]; then
    echo "setup: installing kustomize with go install" >&2
    GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1
  fi
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
