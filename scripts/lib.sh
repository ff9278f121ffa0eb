# Shared helpers for the set-up scripts. Sourced, not run.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
STATE="$ROOT/.nestor"
TEMPORAL_CLI_VERSION="1.5.1"
TEMPORAL_BIN="$TOOLS/temporal-$TEMPORAL_CLI_VERSION/temporal"
# The open-source server and its SQL schema tool, for a cluster (scripts/ensure-temporal-server.sh).
TEMPORAL_SERVER_VERSION="1.29.2"
# The Temporal UI server the CLI v1.5.1 embeds, run beside a cluster (the dev server has it built in).
TEMPORAL_UI_VERSION="2.42.1"
TEMPORAL_SERVER_DIR="$TOOLS/temporal-server-$TEMPORAL_SERVER_VERSION"
# The runtime images the set-up builds (src/runtime/image-manifest.ts names the same tags for NESTOR_RUNTIME): the
# current OpenHands agent server (V1, the default), the V0 nested server, and nestor's emulator.
EMULATOR_IMAGE="nestor-emulator:latest"
# The emulator speaking the current agent server's (V1) contract: the same file system, another kind.
EMULATOR_V1_IMAGE="nestor-emulator-v1:latest"
OPENHANDS_IMAGE="nestor-agent-server:1.58.2"
OPENHANDS_V0_IMAGE="nestor-openhands:1.4.0"
# A local single-node Kubernetes (scripts/ensure-kubernetes.sh, src/dev/kubernetes.ts): the newest 1.35 patch the
# Go module proxy serves here (1.35.7 and 1.35.9+ are refused).
KUBERNETES_VERSION="1.35.8"
KUBERNETES_DIR="$TOOLS/kubernetes-$KUBERNETES_VERSION"
# Its dynamic volumes: Rancher's local-path-provisioner (src/dev/kubernetes-storage.ts), built into the same bin.
LOCAL_PATH_PROVISIONER_VERSION="0.0.30"
# Its CNI plugins: the bridge's port isolation (pods cannot reach each other) came after Debian 12's 1.1.1.
CNI_PLUGINS_VERSION="1.9.1"
log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
# Where scripts/ensure-docker.sh records, for the whole machine, the pid of a dockerd it started.
NESTOR_DOCKERD_PID="${NESTOR_DOCKERD_PID:-/run/nestor-dockerd.pid}"
# Jaeger v2, a real OpenTelemetry trace store with an OTLP receiver, for the tracing test (scripts/ensure-jaeger.sh).
JAEGER_VERSION="1.75.0"
JAEGER_BIN="$TOOLS/jaeger-$JAEGER_VERSION/jaeger"
