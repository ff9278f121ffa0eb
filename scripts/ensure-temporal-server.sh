#!/usr/bin/env bash
# The open-source Temporal server and its SQL schema tool, v1.29.2: the newest patch served here of 1.29, the line
# the Temporal CLI v1.5.1 embeds (1.29.1), so the dev server and a cluster run one line; the proxy refuses 1.29.3+.
# Also the Temporal UI server v2.42.1 (the one the CLI embeds). Built with
# go install from the Go module proxy into .tools/, skipped when already there. Used by `npm run start:cluster` and
# the cluster tests (src/dev/cluster.ts).
# Measured here on 2026-11-25: 107 s for the server and tool with the module cache the CLI's build left
# (go.temporal.io/server is one of its dependencies), 14 s for the UI server. The schema tool embeds PostgreSQL's
# schemas, though its --help lists only MySQL's (`update-schema -s postgresql/v12/temporal`, `…/visibility`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SERVER_BIN="$TEMPORAL_SERVER_DIR/temporal-server"
SQL_TOOL_BIN="$TEMPORAL_SERVER_DIR/temporal-sql-tool"
UI_BIN="$TEMPORAL_SERVER_DIR/temporal-ui-server"
if [ -x "$SERVER_BIN" ] && [ -x "$SQL_TOOL_BIN" ] && [ -x "$UI_BIN" ] &&
  "$SERVER_BIN" --version 2>/dev/null | grep -q "temporal version $TEMPORAL_SERVER_VERSION$" &&
  "$UI_BIN" --version 2>/dev/null | grep -q "version $TEMPORAL_UI_VERSION$"; then
  exit 0
fi
command -v go >/dev/null || die "Go is needed to build the Temporal server (go install go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION); install Go 1.25 or newer"
log "building the Temporal server, SQL tool (v$TEMPORAL_SERVER_VERSION) and UI server (v$TEMPORAL_UI_VERSION) with go install (a few minutes the first time)"
started=$(date +%s)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
GOBIN="$build" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
  "go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION" \
  "go.temporal.io/server/cmd/tools/sql@v$TEMPORAL_SERVER_VERSION"
mkdir -p "$build/ui"
GOBIN="$build/ui" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
  "github.com/temporalio/ui-server/v2/cmd/server@v$TEMPORAL_UI_VERSION"
mkdir -p "$TEMPORAL_SERVER_DIR"
mv "$build/server" "$SERVER_BIN"
mv "$build/sql" "$SQL_TOOL_BIN"
mv "$build/ui/server" "$UI_BIN"
"$SERVER_BIN" --version | grep -q "temporal version $TEMPORAL_SERVER_VERSION$" ||
  die "the built server does not report version $TEMPORAL_SERVER_VERSION"
log "Temporal server v$TEMPORAL_SERVER_VERSION and UI v$TEMPORAL_UI_VERSION ready in $(($(date +%s) - started)) s in $TEMPORAL_SERVER_DIR"
