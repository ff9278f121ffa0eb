#!/usr/bin/env bash
# The emulator image, built with no registry: a root filesystem holding this machine's node, the libraries it
# links and the bundled emulator, imported with `docker import`. Rebuilt only when its inputs change. Its labels are
# its manifest (src/runtime/image-manifest.ts): a node process needs little memory and answers /alive in well under a second.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
BUNDLE="$ROOT/dist/emulator/emulator.js"
[ -f "$BUNDLE" ] || (cd "$ROOT" && node scripts/build-emulator.mjs)
NODE_BIN="$(readlink -f "$(command -v node)")"
hash=$( { sha256sum "$BUNDLE" "$0" | cut -d' ' -f1; node --version; } | sha256sum | cut -c1-16)
repo="${EMULATOR_IMAGE%%:*}"
v1repo="${EMULATOR_V1_IMAGE%%:*}"
if docker image inspect "$repo:$hash" >/dev/null 2>&1 && docker image inspect "$v1repo:$hash" >/dev/null 2>&1; then
  docker tag "$repo:$hash" "$EMULATOR_IMAGE"
  docker tag "$v1repo:$hash" "$EMULATOR_V1_IMAGE"
  exit 0
fi
log "building images $EMULATOR_IMAGE and $EMULATOR_V1_IMAGE ($hash)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{app,etc,tmp,data/file_store,usr/local/bin}
chmod 1777 "$stage/tmp"
cp "$NODE_BIN" "$stage/usr/local/bin/node"
# The dynamic loader and every library node links, at the same paths.
for lib in $(ldd "$NODE_BIN" | grep -o '/[^ ]*'); do
  mkdir -p "$stage$(dirname "$lib")"
  cp -L "$lib" "$stage$lib"
done
cp "$BUNDLE" "$stage/app/emulator.js"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnestor:x:10001:10001:nestor:/data:/sbin/nologin\n' >"$stage/etc/passwd"
printf 'root:x:0:\nnestor:x:10001:\n' >"$stage/etc/group"
chown -R 10001:10001 "$stage/data"
# The same file system twice: as the V0 nested server's emulator, and (EMULATOR_PROTOCOL=v1, its own kind) as the
# current agent server's.
tar -C "$stage" -c . | docker import \
  --change 'USER 10001' \
  --change 'WORKDIR /data' \
  --change 'ENV FILE_STORE_PATH=/data/file_store port=3000 EMULATOR_PROTOCOL=v1' \
  --change 'EXPOSE 3000' \
  --change 'LABEL nestor.runtime.kind=emulator-v1 nestor.runtime.port=3000 nestor.runtime.memory-floor-mb=64 nestor.runtime.default-memory-mb=256 nestor.runtime.alive-timeout-ms=60000 nestor.runtime.tmpfs-mb=64' \
  --change 'CMD ["/usr/local/bin/node", "/app/emulator.js"]' \
  - "$v1repo:$hash" >/dev/null
docker tag "$v1repo:$hash" "$EMULATOR_V1_IMAGE"
tar -C "$stage" -c . | docker import \
  --change 'USER 10001' \
  --change 'WORKDIR /data' \
  --change 'ENV FILE_STORE_PATH=/data/file_store port=3000' \
  --change 'EXPOSE 3000' \
  --change 'LABEL nestor.runtime.kind=emulator nestor.runtime.port=3000 nestor.runtime.memory-floor-mb=64 nestor.runtime.default-memory-mb=256 nestor.runtime.alive-timeout-ms=60000 nestor.runtime.tmpfs-mb=64 nestor.runtime.pool-env=CONVERSATION_START_DELAY_MS=0' \
  --change 'CMD ["/usr/local/bin/node", "/app/emulator.js"]' \
  - "$repo:$hash" >/dev/null
docker tag "$repo:$hash" "$EMULATOR_IMAGE"
# Drop the builds this one replaces (kept if a container still uses one).
for r in "$repo" "$v1repo"; do
  for old in $(docker image ls "$r" --format '{{.Tag}}' | grep -vx -e "$hash" -e "${EMULATOR_IMAGE##*:}"); do
    docker image rm "$r:$old" >/dev/null 2>&1 || true
  done
done
log "images $EMULATOR_IMAGE and $EMULATOR_V1_IMAGE ready"
