#!/usr/bin/env bash
# Jaeger v2 (module github.com/jaegertracing/jaeger v1.75.0: the OpenTelemetry Collector with Jaeger's trace store
# and query API), the OTLP receiver the tracing test exports to and reads back from (test/observability/). Built from
# the Go module proxy into .tools/, skipped when already there. Its go.mod has replace directives, so `go install
# pkg@version` refuses it: it is built as a tool of a throw-away module, whose requirements are Jaeger's own.
# Measured here on 2026-12-05: about 5 minutes with both cores shared with other work (downloads 25 s).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ -x "$JAEGER_BIN" ] && exit 0
command -v go >/dev/null || die "Go is needed to build Jaeger (github.com/jaegertracing/jaeger/cmd/jaeger@v$JAEGER_VERSION)"
log "building Jaeger v$JAEGER_VERSION (an OTLP receiver and trace store) with go build (a few minutes the first time)"
started=$(date +%s)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
(
  cd "$build"
  go mod init nestor-tools-jaeger >/dev/null 2>&1
  go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@v$JAEGER_VERSION" 2>get.log ||
    { cat get.log >&2; die "go get of Jaeger v$JAEGER_VERSION failed (above)"; }
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o jaeger github.com/jaegertracing/jaeger/cmd/jaeger
)
mkdir -p "$(dirname "$JAEGER_BIN")"
mv "$build/jaeger" "$JAEGER_BIN"
log "Jaeger v$JAEGER_VERSION ready in $(($(date +%s) - started)) s at $JAEGER_BIN"
