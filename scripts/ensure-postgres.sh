#!/usr/bin/env bash
# PostgreSQL for a local Temporal cluster (src/dev/cluster.ts runs its own instance: own data directory and port, as
# the postgres user). Installed from Debian's packages when absent; nothing else is configured here.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null; then
  exit 0
fi
[ "$(id -u)" = 0 ] || die "PostgreSQL is missing and installing it needs root: apt-get install postgresql"
log "installing PostgreSQL from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# Debian's package starts a cluster of its own on 5432; nestor's runs on its own port, so that one is not needed.
command -v service >/dev/null && service postgresql stop >/dev/null 2>&1 || true
log "PostgreSQL installed: $(ls -d /usr/lib/postgresql/*/bin | tail -1)"
