#!/usr/bin/env bash
# The Temporal CLI (dev server) v1.5.1, built with go install into .tools/, skipped when already there.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
if [ -x "$TEMPORAL_BIN" ] && "$TEMPORAL_BIN" --version 2>/dev/null | grep -q "temporal version $TEMPORAL_CLI_VERSION "; then
  exit 0
fi
command -v go >/dev/null || die "Go is needed to build the Temporal CLI (go install github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION); install Go 1.25 or newer"
log "building the Temporal CLI v$TEMPORAL_CLI_VERSION with go install (several minutes the first time)"
started=$(date +%s)
mkdir -p "$(dirname "$TEMPORAL_BIN")"
GOBIN="$(dirname "$TEMPORAL_BIN")" CGO_ENABLED=0 go install -trimpath \
  -ldflags "-s -w -X github.com/temporalio/cli/temporalcli.Version=$TEMPORAL_CLI_VERSION" \
  "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION"
"$TEMPORAL_BIN" --version | grep -q "temporal version $TEMPORAL_CLI_VERSION " || die "the built CLI does not report version $TEMPORAL_CLI_VERSION"
log "Temporal CLI ready in $(( $(date +%s) - started )) s: $("$TEMPORAL_BIN" --version)"
