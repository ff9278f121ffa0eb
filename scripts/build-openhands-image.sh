#!/usr/bin/env bash
# A real OpenHands runtime image, built with no registry: a Debian trixie root file system (debootstrap), a venv from
# the image folder's requirements.lock (pinned, hash-checked), a user of uid 10001, and the
# ENV/LABEL/USER/WORKDIR/EXPOSE/CMD lines of its Dockerfile, imported with `docker import`. Which image is the first
# argument:
#   v1  the current agent server, openhands-agent-server 1.58.2 (images/openhands-v1) → nestor-agent-server:1.58.2
#   v0  the V0 nested server, openhands-ai 1.4.0 (images/openhands)                  → nestor-openhands:1.4.0
# Tagged <repo>:<version>-<hash of its inputs> and <repo>:<version>; skipped when that hash exists.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
case "${1:-}" in
  v1)
    DIR="$ROOT/images/openhands-v1"
    IMAGE="$OPENHANDS_IMAGE"
    DATA_DIRS="home tmp tmux conversations bash_events workspace worktrees"
    # The server's app with the run-time settings that matter at import (no network for LiteLLM's cost map).
    IMPORT_CHECK="HOME=/tmp/home LITELLM_LOCAL_MODEL_COST_MAP=True OPENHANDS_SUPPRESS_BANNER=1 /opt/openhands/venv/bin/python -c 'import openhands.agent_server.api'"
    ;;
  v0)
    DIR="$ROOT/images/openhands"
    IMAGE="$OPENHANDS_V0_IMAGE"
    DATA_DIRS="home tmp cache tmux file_store workspace"
    # With no frontend build, V0 routes only, the local runtime.
    IMPORT_CHECK="HOME=/tmp/home SERVE_FRONTEND=0 ENABLE_V1=0 RUNTIME=local LITELLM_LOCAL_MODEL_COST_MAP=True /opt/openhands/venv/bin/python -c 'import openhands.server.listen'"
    ;;
  *) die "usage: build-openhands-image.sh v1|v0 (the current agent server, or the V0 nested server)" ;;
esac
UV_VERSION="0.13.9"
SUITE="trixie"
MIRROR="${NESTOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="python3,python3-venv,git,tmux,bash,ca-certificates,procps"

docker info >/dev/null 2>&1 || die "no Docker engine answers, so the OpenHands image can be neither found nor imported; start one (scripts/ensure-docker.sh, which npm run setup runs)"
hash=$(cat "$DIR/Dockerfile" "$DIR/requirements.lock" "$0" | { cat; echo "$SUITE $PACKAGES $UV_VERSION"; } | sha256sum | cut -c1-16)
repo="${IMAGE%%:*}"
version="${IMAGE##*:}"
if docker image inspect "$repo:$version-$hash" >/dev/null 2>&1; then
  docker tag "$repo:$version-$hash" "$IMAGE"
  exit 0
fi

work="$STATE/build/$repo"
rootfs="$work/rootfs"
logfile="$work/build.log"
started=$(date +%s)
n=0
total=7
unmount() {
  for m in "$rootfs/var/cache/uv" "$rootfs/proc" "$rootfs/dev"; do
    if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
  done
}
cleanup() { unmount; rm -rf "$rootfs"; }
trap cleanup EXIT
# Each step logs its output to one file; a failure names the step and shows the end of that log.
step() {
  local name="$1"; shift
  n=$((n + 1))
  log "openhands image $repo:$version-$hash: step $n/$total, $name ($(( $(date +%s) - started )) s so far)"
  # A subshell outside any condition, so `set -e` holds inside the step's function.
  set +e
  (set -e; "$@") >>"$logfile" 2>&1
  local rc=$?
  set -e
  if [ "$rc" != 0 ]; then
    tail -25 "$logfile" >&2
    die "building the OpenHands image failed at step '$name' (exit $rc; full log: $logfile)"
  fi
}
in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

[ "$(id -u)" = 0 ] || die "building the OpenHands image needs root (debootstrap, chroot); run the set-up as root"
mkdir -p "$work" "$STATE/build/uv-cache"
: >"$logfile"
log "building the OpenHands runtime image $IMAGE (a few minutes the first time; log: $logfile)"

tools() {
  if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
  fi
  [ -x "$TOOLS/uv-$UV_VERSION/bin/uv" ] || python3 -m pip install -q --target "$TOOLS/uv-$UV_VERSION" "uv==$UV_VERSION"
}
step "install debootstrap and uv $UV_VERSION" tools

base() {
  # Up to three tries: the mirror has failed a fresh machine's first index download once ("Couldn't download
  # .../Packages", 2026-12-03) and answered the same request a minute later.
  local try
  for try in 1 2 3; do
    unmount
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" && return 0
    [ "$try" = 3 ] || { echo "debootstrap failed (try $try of 3); trying again in 10 s"; sleep 10; }
  done
  return 1
}
step "debootstrap Debian $SUITE with $PACKAGES" base

venv() {
  mount -t proc proc "$rootfs/proc"
  mount --bind /dev "$rootfs/dev"
  mkdir -p "$rootfs/var/cache/uv"
  mount --bind "$STATE/build/uv-cache" "$rootfs/var/cache/uv"
  # Name resolution and this workplace's TLS proxy CA, for the download only; both are removed before the import.
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$rootfs/tmp/build-ca.crt"
  cp "$TOOLS/uv-$UV_VERSION/bin/uv" "$rootfs/tmp/uv"
  cp "$DIR/requirements.lock" "$rootfs/tmp/requirements.lock"
  in_root /usr/bin/python3 -m venv --without-pip /opt/openhands/venv
  in_root SSL_CERT_FILE=/tmp/build-ca.crt UV_CACHE_DIR=/var/cache/uv /tmp/uv pip install --no-config \
    --python /opt/openhands/venv/bin/python --require-hashes --no-deps --link-mode copy --compile-bytecode \
    -r /tmp/requirements.lock
}
step "install $(head -1 "$DIR/requirements.in" 2>/dev/null || echo openhands) from requirements.lock (pinned, hash-checked)" venv

check() {
  in_root /tmp/uv pip check --no-config --python /opt/openhands/venv/bin/python
  in_root bash -c "$IMPORT_CHECK"
}
step "check the installed packages and import the server" check

user() {
  echo 'openhands:x:10001:10001:openhands:/data/home:/bin/bash' >>"$rootfs/etc/passwd"
  echo 'openhands:x:10001:' >>"$rootfs/etc/group"
  for d in $DATA_DIRS; do mkdir -p "$rootfs/data/$d"; done
  chown -R 10001:10001 "$rootfs/data"
}
step "create user openhands (uid 10001) and /data" user

strip() {
  unmount
  rm -rf "$rootfs"/tmp/* "$rootfs"/var/cache/uv "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/root/.cache "$rootfs"/root/.openhands
  : >"$rootfs/etc/resolv.conf"
  find "$rootfs/data" -mindepth 2 -delete
}
step "strip build-only files" strip

# The image's run-time contract comes from the Dockerfile's one-line instructions.
changes=()
while IFS= read -r line; do changes+=(--change "$line"); done \
  < <(grep -E '^(ENV|LABEL|USER|WORKDIR|EXPOSE|CMD) ' "$DIR/Dockerfile")
import() {
  tar --numeric-owner -C "$rootfs" -c . | docker import "${changes[@]}" \
    --change "LABEL nestor.runtime.build=$hash" - "$repo:$version-$hash"
  docker tag "$repo:$version-$hash" "$IMAGE"
}
step "docker import as $repo:$version-$hash" import

# Drop the builds this one replaces (kept if a container still uses one).
for old in $(docker image ls "$repo" --format '{{.Tag}}' | grep -vx -e "$version-$hash" -e "$version"); do
  docker image rm "$repo:$old" >/dev/null 2>&1 || true
done
log "image $IMAGE ($repo:$version-$hash) ready in $(( $(date +%s) - started )) s"
