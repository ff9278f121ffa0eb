# Shared helpers for the set-up scripts. Sourced, not run.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
STATE="$ROOT/.nestor"
TEMPORAL_CLI_VERSION="1.5.1"
TEMPORAL_BIN="$TOOLS/temporal-$TEMPORAL_CLI_VERSION/temporal"
EMULATOR_IMAGE="${NESTOR_RUNTIME_IMAGE:-nestor-emulator:latest}"
log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
