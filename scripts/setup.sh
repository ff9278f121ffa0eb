#!/usr/bin/env bash
# Idempotent set-up, run by both README commands: Temporal CLI, Docker engine, the two runtime images (each rebuilt
# only when its inputs change). `NESTOR_RUNTIME=emulator npm start` skips the OpenHands image, for a quick first try.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/ensure-temporal-cli.sh"
bash "$ROOT/scripts/ensure-docker.sh" >/dev/null
bash "$ROOT/scripts/build-emulator-image.sh"
if [ "${NESTOR_RUNTIME:-openhands}" = "emulator" ]; then
  log "NESTOR_RUNTIME=emulator: not building the OpenHands image ($OPENHANDS_IMAGE)"
else
  bash "$ROOT/scripts/build-openhands-image.sh"
fi
