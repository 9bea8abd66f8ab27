#!/usr/bin/env bash
# deploy/container/build-images.sh - build Sawmill's OCI images with podman on a Debian 12 host
# that reaches Debian's apt mirrors but no image registry. See deploy/container/README.md.
#
#   build-images.sh [TARGET...]      TARGET: base runtime etcd kafka hadoop services all
#                                    (default: base runtime; services = etcd kafka hadoop;
#                                     all = everything)
#
# Steps, each skipped when its result is already there (idempotent; safe to re-run):
#   packages  apt-get install podman runc debootstrap netavark aardvark-dns iptables (only those
#             missing)
#   base      debootstrap --variant=minbase bookworm -> rootfs tarball cached in
#             $SAWMILL_IMAGES_CACHE -> podman import -> apt upgrade (security) ->
#             docker.io/library/debian:bookworm-slim
#   runtime   binaries from ${CARGO_TARGET_DIR:-target}/release (cargo build --release if one is
#             missing) -> deploy/docker/Dockerfile --target runtime-prebuilt -> localhost/sawmill:latest
#   etcd      deploy/container/etcd.Dockerfile (Debian's etcd-server) -> localhost/sawmill-etcd:latest
#   kafka     deploy/container/kafka.Dockerfile + the Kafka jars that deploy/local/services
#             resolves with Maven -> localhost/sawmill-kafka:latest
#   hadoop    deploy/container/hadoop.Dockerfile + the Hadoop jars (NameNode, DataNode, FsShell)
#             -> localhost/sawmill-hadoop:latest
#
# Settings (environment):
#   SAWMILL_IMAGES_CACHE  rootfs tarball and staged build contexts [/var/cache/sawmill-images]
#   SAWMILL_BINARIES_DIR  take coordinator/worker/sawmill from here; never run cargo
#   SAWMILL_STRIP=0       keep the binaries' debug info (default: strip --strip-debug)
#   SAWMILL_DEBIAN_MIRROR debootstrap mirror [http://deb.debian.org/debian]
#   SAWMILL_REBUILD_BASE=1  debootstrap again even if the tarball is cached
#   SAWMILL_IMAGE_TAG     tag of the Sawmill and service images [latest]
# All podman calls go through `podman --runtime deploy/container/runc-no-rlimits`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${SAWMILL_IMAGES_CACHE:-/var/cache/sawmill-images}
SERVICES_SCRIPT=$REPO/deploy/local/services
SERVICES_CACHE=${SAWMILL_SERVICES_CACHE:-/var/cache/sawmill-services}
MIRROR=${SAWMILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
TAG=${SAWMILL_IMAGE_TAG:-latest}
RUNTIME_WRAPPER=$HERE/runc-no-rlimits

readonly SUITE=bookworm
readonly BASE_IMAGE=docker.io/library/debian:bookworm-slim   # what `FROM debian:bookworm-slim` resolves to
readonly RAW_IMAGE=localhost/sawmill/debian-rootfs:bookworm   # the imported debootstrap tarball
readonly SAWMILL_IMAGE=localhost/sawmill:$TAG
readonly ETCD_IMAGE=localhost/sawmill-etcd:$TAG
readonly KAFKA_IMAGE=localhost/sawmill-kafka:$TAG
readonly HADOOP_IMAGE=localhost/sawmill-hadoop:$TAG
readonly BINARIES=(coordinator worker sawmill)

log() { printf '[build-images] %s\n' "$*" >&2; }
die() { printf 'build-images: ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# podman with the rlimit-stripping runc wrapper (runc would fail on process.rlimits here).
pm() { podman --runtime "$RUNTIME_WRAPPER" "$@"; }
# Builds: host network (the RUN steps reach Debian's mirrors through the host), never pull
# (there is no registry), docker format (OCI format drops HEALTHCHECK), no leftover containers.
pm_build() { pm build --network host --pull=never --format docker --force-rm "$@"; }

# drop_replaced TAG OLD_ID: a rebuild moved TAG to a new image; remove the old one if nothing
# else names it (so re-runs do not pile up untagged images). Fails quietly when it is in use.
image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
drop_replaced() {
  local tag=$1 old=$2
  [[ -n $old && $old != "$(image_id "$tag")" ]] || return 0
  [[ $(podman image inspect --format '{{len .RepoTags}}' "$old" 2>/dev/null) == 0 ]] || return 0
  podman rmi "$old" >/dev/null 2>&1 || true
}

declare -a SUMMARY=()
step_start=0
step_begin() { step_start=$(date +%s); log "== $1"; }
step_end() {  # step_end NAME NOTE
  local secs=$(( $(date +%s) - step_start ))
  SUMMARY+=("$(printf '%-9s %5ss  %s' "$1" "$secs" "$2")")
  log "== $1 done in ${secs}s${2:+ ($2)}"
}

usage() { sed -n '2,30s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

# ---------------------------------------------------------------- targets
declare -A WANT=()
parse_targets() {
  (( $# )) || set -- base runtime
  local t
  for t in "$@"; do
    case $t in
      base|runtime|etcd|kafka|hadoop) WANT[$t]=1 ;;
      services) WANT[etcd]=1 WANT[kafka]=1 WANT[hadoop]=1 ;;
      all) WANT[base]=1 WANT[runtime]=1 WANT[etcd]=1 WANT[kafka]=1 WANT[hadoop]=1 ;;
      -h|--help|help) usage; exit 0 ;;
      *) usage >&2; die "unknown target '$t'" ;;
    esac
  done
  # Every image builds FROM the local Debian base.
  WANT[base]=1
}

# ---------------------------------------------------------------- packages
apt_install() {
  local log_file=$CACHE/apt.log
  # Another process may be installing packages at the same time: wait for dpkg's lock.
  local -a apt=(apt-get -o DPkg::Lock::Timeout=600 -y -q --no-install-recommends)
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=600 update -q >>"$log_file" 2>&1 || true
  fi
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "$@" >>"$log_file" 2>&1; then
    apt-get -o DPkg::Lock::Timeout=600 update -q >>"$log_file" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "$@" >>"$log_file" 2>&1 \
      || { tail -n 30 "$log_file" >&2; die "apt-get install $* failed (log: $log_file)"; }
  fi
}

ensure_packages() {
  step_begin packages
  local missing=()
  have podman || missing+=(podman)
  have runc || missing+=(runc)
  have debootstrap || missing+=(debootstrap)
  # netavark + aardvark-dns give container networks their DNS (podman recommends them).
  [[ -x /usr/lib/podman/netavark ]] || missing+=(netavark)
  [[ -x /usr/lib/podman/aardvark-dns ]] || missing+=(aardvark-dns)
  # netavark sets up every bridge network with iptables; without it a container on a network
  # fails to start with "netavark: No such file or directory (os error 2)".
  have iptables || [[ -x /usr/sbin/iptables ]] || missing+=(iptables)
  [[ -x /usr/bin/python3 ]] || have jq || missing+=(jq)   # the runc wrapper edits config.json
  if (( ${#missing[@]} )); then
    log "installing ${missing[*]} with apt-get"
    apt_install "${missing[@]}"
    step_end packages "installed ${missing[*]}"
  else
    step_end packages "present: $(podman --version), $(runc --version | head -1)"
  fi
  [[ -x $RUNTIME_WRAPPER ]] || chmod +x "$RUNTIME_WRAPPER"
}

# ---------------------------------------------------------------- base image
image_exists() { podman image exists "$1"; }

# Trim a fresh debootstrap tree the way Debian's own -slim images are trimmed, and configure
# apt/dpkg for containers (the same files debuerreotype writes for the Docker Hub images).
slim_rootfs() {
  local r=$1
  # No service starts from package scripts (no init in a container).
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 755 "$r/usr/sbin/policy-rc.d"
  cat >"$r/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# -slim: no documentation, man pages or translations (copyright files stay)
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" <<'EOF'
force-unsafe-io
EOF
  cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  cat >"$r/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
Acquire::Languages "none";
EOF
  cat >"$r/etc/apt/apt.conf.d/docker-gzip-indexes" <<'EOF'
Acquire::GzipIndexes "true";
EOF
  cat >"$r/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'EOF'
Apt::AutoRemove::SuggestsImportant "false";
EOF
  rm -f "$r/etc/apt/sources.list"
  cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin \
         "$r"/var/log/*.log "$r"/var/log/apt/* "$r"/tmp/* "$r"/var/tmp/* \
         "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/groff/* \
         "$r"/usr/share/lintian/* "$r"/usr/share/linda/*
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  : >"$r/etc/machine-id"
  echo sawmill >"$r/etc/hostname"
  rm -f "$r/etc/resolv.conf"    # podman writes its own
}

build_rootfs_tarball() {  # -> $CACHE/debian-$SUITE-minbase.tar (+ .sha256, .info)
  local tarball=$CACHE/debian-$SUITE-minbase.tar
  if [[ -s $tarball && -s $tarball.sha256 && ${SAWMILL_REBUILD_BASE:-0} != 1 ]]; then
    log "rootfs: cached $tarball ($(du -h "$tarball" | cut -f1))"
    return 0
  fi
  local dir=$CACHE/rootfs.tmp
  rm -rf "$dir"
  mkdir -p "$dir"
  log "rootfs: debootstrap --variant=minbase $SUITE from $MIRROR (about 2 minutes; log: $CACHE/debootstrap.log)"
  if ! debootstrap --variant=minbase --arch=amd64 "$SUITE" "$dir" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
    tail -n 30 "$CACHE/debootstrap.log" >&2
    die "debootstrap failed (log: $CACHE/debootstrap.log; details in $dir/debootstrap/debootstrap.log)"
  fi
  slim_rootfs "$dir"
  {
    echo "suite=$SUITE"
    echo "debian_version=$(cat "$dir/etc/debian_version")"
    echo "mirror=$MIRROR"
    echo "created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$tarball.info.tmp"
  tar --numeric-owner --xattrs -C "$dir" -cf "$tarball.tmp" .
  sha256sum "$tarball.tmp" | cut -d' ' -f1 >"$tarball.sha256.tmp"
  mv -f "$tarball.tmp" "$tarball"
  mv -f "$tarball.sha256.tmp" "$tarball.sha256"
  mv -f "$tarball.info.tmp" "$tarball.info"
  rm -rf "$dir"
  log "rootfs: $tarball ($(du -h "$tarball" | cut -f1), Debian $(sed -n 's/^debian_version=//p' "$tarball.info"))"
}

build_base() {
  step_begin base
  if image_exists "$BASE_IMAGE" && [[ ${SAWMILL_REBUILD_BASE:-0} != 1 ]]; then
    step_end base "present: $BASE_IMAGE"
    return 0
  fi
  build_rootfs_tarball
  local tarball=$CACHE/debian-$SUITE-minbase.tar sum ver created
  sum=$(<"$tarball.sha256")
  ver=$(sed -n 's/^debian_version=//p' "$tarball.info")
  created=$(sed -n 's/^created=//p' "$tarball.info")
  log "base: podman import -> $RAW_IMAGE"
  podman import \
    --change 'CMD ["/bin/bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL org.opencontainers.image.base.name=debootstrap-minbase-$SUITE" \
    --change "LABEL sawmill.rootfs.sha256=$sum" \
    --change "LABEL sawmill.rootfs.debian_version=$ver" \
    --change "LABEL sawmill.rootfs.created=$created" \
    "$tarball" "$RAW_IMAGE" >/dev/null
  # Security and point-release updates (debootstrap installs only the $SUITE suite itself).
  log "base: apt-get upgrade inside the image -> $BASE_IMAGE"
  mkdir -p "$CACHE/context/base"
  # --squash-all: one layer, so the packages replaced by the upgrade do not count twice.
  pm_build --squash-all --tag "$BASE_IMAGE" --tag "localhost/sawmill/debian:$SUITE-$ver" \
    -f - "$CACHE/context/base" <<EOF
FROM $RAW_IMAGE
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -y upgrade \\
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log
LABEL org.opencontainers.image.title="Debian $SUITE slim (local debootstrap)"
CMD ["/bin/bash"]
EOF
  step_end base "$BASE_IMAGE (Debian $(pm run --rm "$BASE_IMAGE" cat /etc/debian_version))"
}

# ---------------------------------------------------------------- runtime image
ensure_binaries() {  # prints the directory that holds the three binaries
  local dir b missing=()
  if [[ -n ${SAWMILL_BINARIES_DIR:-} ]]; then
    dir=$SAWMILL_BINARIES_DIR
  else
    local target=${CARGO_TARGET_DIR:-target}
    [[ $target == /* ]] || target=$REPO/$target
    dir=$target/release
  fi
  for b in "${BINARIES[@]}"; do [[ -x $dir/$b ]] || missing+=("$b"); done
  if (( ${#missing[@]} )); then
    [[ -z ${SAWMILL_BINARIES_DIR:-} ]] \
      || die "SAWMILL_BINARIES_DIR=$dir lacks ${missing[*]}"
    log "runtime: $dir lacks ${missing[*]}: cargo build --release (log: $CACHE/cargo-build.log)"
    if ! (cd "$REPO" && cargo build --release --locked \
            -p sawmill-coordinator -p sawmill-worker -p sawmill-cli) >"$CACHE/cargo-build.log" 2>&1; then
      tail -n 30 "$CACHE/cargo-build.log" >&2
      die "cargo build --release failed (log: $CACHE/cargo-build.log); set SAWMILL_BINARIES_DIR to a directory with ${BINARIES[*]}"
    fi
  fi
  echo "$dir"
}

build_runtime() {
  step_begin runtime
  local src stage=$HERE/bin b
  src=$(ensure_binaries)
  mkdir -p "$stage"
  # The release profile keeps line tables (debug = 1): ~115 MB per binary. The image gets them
  # without debug info (~23 MB each; symbol names stay, so backtraces still name functions),
  # unless SAWMILL_STRIP=0. Stage only when changed, so podman's layer cache keeps hitting.
  local strip=${SAWMILL_STRIP:-1}
  if [[ $strip == 1 ]] && ! have strip; then
    log "runtime: no 'strip' (binutils) on this host: the binaries go in with their debug info"
    strip=0
  fi
  for b in "${BINARIES[@]}"; do
    if [[ $strip == 1 ]]; then
      strip --strip-debug -o "$stage/.$b.tmp" "$src/$b"
    else
      cp -f "$src/$b" "$stage/.$b.tmp"
    fi
    if cmp -s "$stage/.$b.tmp" "$stage/$b"; then rm -f "$stage/.$b.tmp"; else mv -f "$stage/.$b.tmp" "$stage/$b"; fi
  done
  log "runtime: binaries from $src$([[ $strip == 1 ]] && echo ", debug info stripped") ($(du -ch "${BINARIES[@]/#/$stage/}" | tail -1 | cut -f1) total)"
  local old
  old=$(image_id "$SAWMILL_IMAGE")
  pm_build --target runtime-prebuilt \
    --build-arg DEBIAN_IMAGE="$BASE_IMAGE" \
    --label "sawmill.binaries.source=$src" \
    --label "sawmill.git.commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    -f "$REPO/deploy/docker/Dockerfile" -t "$SAWMILL_IMAGE" "$REPO"
  drop_replaced "$SAWMILL_IMAGE" "$old"
  step_end runtime "$SAWMILL_IMAGE"
}

# ---------------------------------------------------------------- service images
# Stage a small build context (podman reads the whole context directory).
stage_context() {  # stage_context NAME FILE... -> prints dir
  local dir=$CACHE/context/$1; shift
  mkdir -p "$dir"
  local f
  for f in "$@"; do cmp -s "$f" "$dir/${f##*/}" || cp -f "$f" "$dir/"; done
  echo "$dir"
}

# stage_jars NAME LIBDIR DEST: hard links when possible (same file system), else copies.
stage_jars() {
  local src=$2 dest=$3
  if [[ -f $dest/.complete && -f $src/.complete && $(<"$dest/.complete") == "$(<"$src/.complete")" ]]; then
    return 0
  fi
  rm -rf "$dest"
  cp -al "$src" "$dest" 2>/dev/null || cp -a "$src" "$dest"
}

services_version() {  # services_version KAFKA|HADOOP: the version pinned in deploy/local/services
  sed -n "s/^readonly $1_VERSION=\([^ ]*\).*/\1/p" "$SERVICES_SCRIPT"
}

# The jars come from deploy/local/services, which resolves them with Maven once into
# $SERVICES_CACHE; a cheap `--version`-style call makes it do so when they are missing.
ensure_jars() {  # ensure_jars kafka|hadoop -> prints the lib dir
  local name=$1 version lib
  case $name in
    kafka)  version=$(services_version KAFKA);  lib=$SERVICES_CACHE/kafka-$version/lib ;;
    hadoop) version=$(services_version HADOOP); lib=$SERVICES_CACHE/hadoop-$version/lib ;;
  esac
  [[ -n $version ]] || die "cannot read the $name version from $SERVICES_SCRIPT"
  if [[ ! -f $lib/.complete ]]; then
    log "$name: resolving the $name $version jars with deploy/local/services (Maven)"
    # A private state dir: the call writes logs and tool configs there, not next to the
    # host services that deploy/local/services may be running.
    case $name in
      kafka)  SAWMILL_SERVICES_DIR=$CACHE/services-state SAWMILL_SERVICES_CACHE=$SERVICES_CACHE \
                "$SERVICES_SCRIPT" kafka-class kafka.Kafka --version >/dev/null ;;
      hadoop) SAWMILL_SERVICES_DIR=$CACHE/services-state SAWMILL_SERVICES_CACHE=$SERVICES_CACHE \
                "$SERVICES_SCRIPT" hadoop-class org.apache.hadoop.util.VersionInfo >/dev/null ;;
    esac
    [[ -f $lib/.complete ]] || die "$name jars still missing in $lib"
  fi
  echo "$lib"
}

build_etcd() {
  step_begin etcd
  local ctx old
  ctx=$(stage_context etcd "$HERE/etcd.Dockerfile")
  old=$(image_id "$ETCD_IMAGE")
  pm_build --build-arg DEBIAN_IMAGE="$BASE_IMAGE" -f "$ctx/etcd.Dockerfile" -t "$ETCD_IMAGE" "$ctx"
  drop_replaced "$ETCD_IMAGE" "$old"
  step_end etcd "$ETCD_IMAGE"
}

# build_jvm_image NAME IMAGE VERSION_VAR PRODUCT: a JVM service image (kafka, hadoop) from the
# harness's jars, with NAME.Dockerfile and NAME/{entrypoint,healthcheck}.sh.
build_jvm_image() {
  local name=$1 image=$2 version_var=$3 product=$4
  step_begin "$name"
  local lib ctx version old
  lib=$(ensure_jars "$name")
  version=$(services_version "$version_var")
  ctx=$(stage_context "$name" "$HERE/$name.Dockerfile" "$HERE/$name/entrypoint.sh" "$HERE/$name/healthcheck.sh")
  stage_jars "$name" "$lib" "$ctx/lib"
  old=$(image_id "$image")
  pm_build --build-arg DEBIAN_IMAGE="$BASE_IMAGE" --build-arg "${version_var}_VERSION=$version" \
    -f "$ctx/$name.Dockerfile" -t "$image" "$ctx"
  drop_replaced "$image" "$old"
  step_end "$name" "$image ($product $version, $(find "$ctx/lib" -name '*.jar' | wc -l) jars)"
}

build_kafka() { build_jvm_image kafka "$KAFKA_IMAGE" KAFKA Kafka; }
build_hadoop() { build_jvm_image hadoop "$HADOOP_IMAGE" HADOOP Hadoop; }

# ---------------------------------------------------------------- main
# Everything runs from main, which bash has parsed completely before it starts: editing this
# file (or a git checkout) during a long run cannot change what the run does.
main() {
  parse_targets "$@"
  (( EUID == 0 )) || die "run as root (apt-get, debootstrap and rootful podman)"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock -w 1800 9 || die "another build-images.sh holds $CACHE/.lock"

  local t0 img
  t0=$(date +%s)
  ensure_packages
  if [[ -n ${WANT[base]:-} ]]; then build_base; fi
  if [[ -n ${WANT[runtime]:-} ]]; then build_runtime; fi
  if [[ -n ${WANT[etcd]:-} ]]; then build_etcd; fi
  if [[ -n ${WANT[kafka]:-} ]]; then build_kafka; fi
  if [[ -n ${WANT[hadoop]:-} ]]; then build_hadoop; fi

  echo
  echo "step      time   result"
  printf '%s\n' "${SUMMARY[@]}"
  echo "total     $(( $(date +%s) - t0 ))s"
  echo
  echo "images:"
  for img in "$BASE_IMAGE" "$SAWMILL_IMAGE" "$ETCD_IMAGE" "$KAFKA_IMAGE" "$HADOOP_IMAGE"; do
    if image_exists "$img"; then
      printf '  %-48s %s\n' "$img" "$(podman image inspect --format '{{.Size}}' "$img" \
        | awk '{ printf "%.1f MB", $1 / 1000 / 1000 }')"
    fi
  done
  echo
  echo "run them with: podman --runtime $RUNTIME_WRAPPER run ..."
}

main "$@"
exit $?
