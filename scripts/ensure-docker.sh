#!/usr/bin/env bash
# A running Docker engine: used as it is when `docker info` answers; otherwise, with apt and root, install
# docker.io and start dockerd in the background. Prints "started" on stdout when it started the daemon.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    log "installing docker.io from apt"
    started=$(date +%s)
    mkdir -p "$STATE"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; } >"$STATE/apt.log" 2>&1 \
      || { tail -20 "$STATE/apt.log" >&2; die "installing docker.io failed; its log is above"; }
    log "docker.io installed in $(( $(date +%s) - started )) s"
  else
    die "no Docker engine is running and none can be installed here: install Docker (e.g. 'apt-get install docker.io') and start it, or set DOCKER_HOST"
  fi
fi
[ "$(id -u)" = 0 ] || die "dockerd is installed but not running, and starting it needs root: start the Docker service"
mkdir -p "$STATE"
# A daemon killed without cleanup (a stopped session, a crash) leaves its pid file behind, and dockerd refuses to
# start while it exists. Remove it only when no live dockerd owns it.
for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
  if [ -f "$pidfile" ]; then
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
      log "removing stale $pidfile"
      rm -f "$pidfile"
    fi
  fi
done
log "starting dockerd (log: $STATE/dockerd.log)"
# Unix socket only; containers publish ports on 127.0.0.1 themselves.
nohup dockerd --host unix:///var/run/docker.sock --ip 127.0.0.1 >"$STATE/dockerd.log" 2>&1 &
echo $! >"$STATE/dockerd.pid"
# Machine-wide too: a daemon any nestor checkout started is one the fault suite may restart (not someone else's).
echo $! >"$NESTOR_DOCKERD_PID" 2>/dev/null || true
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then echo started; exit 0; fi
  kill -0 "$(cat "$STATE/dockerd.pid")" 2>/dev/null || { tail -20 "$STATE/dockerd.log" >&2; die "dockerd exited; its log is above"; }
  sleep 0.5
done
tail -20 "$STATE/dockerd.log" >&2
die "dockerd did not answer within 60 s"
