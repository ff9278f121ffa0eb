#!/usr/bin/env bash
# Idempotent set-up, run by both README commands: Temporal CLI, Docker engine, emulator image.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/ensure-temporal-cli.sh"
bash "$ROOT/scripts/ensure-docker.sh" >/dev/null
bash "$ROOT/scripts/build-emulator-image.sh"
