#!/usr/bin/env bash
# deploy/kubernetes/validate.sh OVERLAY... - renders each kustomization and validates every
# object against the Kubernetes (and Prometheus Operator) schemas, offline. Prints the objects
# of all overlays as JSON arrays, one line per overlay, on stdout; exits 1 on the first invalid
# one, naming the object and the field.
#
# Renderer: `kubectl kustomize`, else `kustomize build` (KUSTOMIZE=... to choose). Validator:
# tests/k8s/validate.mjs with its npm packages (npm ci --prefix tests/k8s; scripts/setup.sh
# --test does it). Exit status 2 when a tool is missing, so callers can tell "cannot check"
# from "invalid".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
validator=${SAWMILL_K8S_VALIDATOR:-$root/tests/k8s}

render() {
  if [[ -n ${KUSTOMIZE:-} ]]; then "$KUSTOMIZE" build "$1"
  elif command -v kubectl >/dev/null; then kubectl kustomize "$1"
  elif command -v kustomize >/dev/null; then kustomize build "$1"
  elif [[ -x ${GOPATH:-$HOME/go}/bin/kustomize ]]; then "${GOPATH:-$HOME/go}/bin/kustomize" build "$1"
  else echo "validate.sh: no kustomize renderer (kubectl or kustomize); scripts/setup.sh --test installs kustomize" >&2; exit 2
  fi
}

command -v node >/dev/null || { echo "validate.sh: node not found" >&2; exit 2; }
[[ -d $validator/node_modules/kubernetes-models ]] \
  || { echo "validate.sh: $validator/node_modules missing: npm ci --prefix $validator" >&2; exit 2; }
(( $# )) || { echo "usage: validate.sh OVERLAY..." >&2; exit 2; }
for overlay in "$@"; do
  rendered=$(render "$overlay") || { echo "validate.sh: rendering $overlay failed" >&2; exit 1; }
  node "$validator/validate.mjs" <<<"$rendered" || { echo "validate.sh: $overlay is invalid" >&2; exit 1; }
  echo
done
