#!/usr/bin/env bash
# Set-up for a Temporal cluster on this machine (npm run start:cluster, the cluster tests): PostgreSQL from Debian's
# packages when absent, and the Temporal server, SQL tool and UI server built from the Go module proxy.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/ensure-postgres.sh"
bash "$ROOT/scripts/ensure-temporal-server.sh"
