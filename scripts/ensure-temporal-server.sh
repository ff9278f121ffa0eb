#!/usr/bin/env bash
# The open-source Temporal server and its SQL schema tool, v1.29.1 (the server the Temporal CLI v1.5.1 embeds, so the
# dev server and a cluster run one version), built with go install from the Go module proxy into .tools/, skipped
# when already there. The first step of a real cluster on PostgreSQL (issue 13); nothing calls it yet.
# Measured here on 2026-11-25: 107 s with the module cache the CLI's build left (go.temporal.io/server is one of its
# dependencies). The schema tool embeds PostgreSQL's schemas, though its --help lists only MySQL's: checked against
# Debian's PostgreSQL 15 (initdb/pg_ctl on this machine) with `--pl postgres12 --db temporal create`, `setup-schema -v
# 0.0`, `update-schema -s postgresql/v12/temporal` (to 1.18) and the same for temporal_visibility with
# `-s postgresql/v12/visibility` (to 1.9, which needs CREATE EXTENSION btree_gin: a superuser role), under 1 s each.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SERVER_BIN="$TEMPORAL_SERVER_DIR/temporal-server"
SQL_TOOL_BIN="$TEMPORAL_SERVER_DIR/temporal-sql-tool"
if [ -x "$SERVER_BIN" ] && [ -x "$SQL_TOOL_BIN" ] &&
  "$SERVER_BIN" --version 2>/dev/null | grep -q "temporal version $TEMPORAL_SERVER_VERSION$"; then
  exit 0
fi
command -v go >/dev/null || die "Go is needed to build the Temporal server (go install go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION); install Go 1.25 or newer"
log "building the Temporal server and SQL tool v$TEMPORAL_SERVER_VERSION with go install (a few minutes the first time)"
started=$(date +%s)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
GOBIN="$build" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
  "go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION" \
  "go.temporal.io/server/cmd/tools/sql@v$TEMPORAL_SERVER_VERSION"
mkdir -p "$TEMPORAL_SERVER_DIR"
mv "$build/server" "$SERVER_BIN"
mv "$build/sql" "$SQL_TOOL_BIN"
"$SERVER_BIN" --version | grep -q "temporal version $TEMPORAL_SERVER_VERSION$" ||
  die "the built server does not report version $TEMPORAL_SERVER_VERSION"
log "Temporal server v$TEMPORAL_SERVER_VERSION ready in $(($(date +%s) - started)) s: $SERVER_BIN, $SQL_TOOL_BIN"
