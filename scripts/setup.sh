#!/usr/bin/env bash
# Idempotent set-up, run by both README commands: Temporal CLI, Docker engine, the runtime images (each rebuilt only
# when its inputs change). Only the OpenHands image NESTOR_RUNTIME names is built: `openhands` (the default) the
# current agent server, `openhands-v0` the V0 server, `emulator` neither (a quick first try); `all` builds both.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/ensure-temporal-cli.sh"
bash "$ROOT/scripts/ensure-docker.sh" >/dev/null
bash "$ROOT/scripts/build-emulator-image.sh"
case "${NESTOR_RUNTIME:-openhands}" in
  emulator | emulator-v1) log "NESTOR_RUNTIME=$NESTOR_RUNTIME: not building the OpenHands images ($OPENHANDS_IMAGE, $OPENHANDS_V0_IMAGE)" ;;
  openhands) bash "$ROOT/scripts/build-openhands-image.sh" v1 ;;
  openhands-v0) bash "$ROOT/scripts/build-openhands-image.sh" v0 ;;
  all)
    bash "$ROOT/scripts/build-openhands-image.sh" v1
    bash "$ROOT/scripts/build-openhands-image.sh" v0
    ;;
  *) die "NESTOR_RUNTIME: expected openhands, openhands-v0, emulator or emulator-v1 (got '$NESTOR_RUNTIME')" ;;
esac
