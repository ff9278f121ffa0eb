// Images for the local Kubernetes: nothing can be pulled here, so images Docker built are streamed into the cluster's
// containerd (`docker save` | `ctr images import`) and its pods run them with imagePullPolicy Never; the pause image
// every pod shares, and the storage provisioner's helper, are built by Docker from scratch around Debian's
// busybox-static.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HELPER_IMAGE, PAUSE_IMAGE } from './kubernetes-config';

/** `ctr` against the cluster's containerd, in Kubernetes' namespace. */
export function ctr(socket: string, args: string[]): ReturnType<typeof spawnSync> {
  return spawnSync('ctr', ['--address', socket, '-n', 'k8s.io', ...args]);
}

/** A Docker image into the cluster's image store, streamed (an image of 1.7 GB is not held in memory). */
export function importImage(socket: string, image: string): void {
  const r = spawnSync(
    'bash',
    ['-c', 'set -o pipefail; docker save "$1" | ctr --address "$2" -n k8s.io images import -', 'import', image, socket],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`importing ${image} into the cluster failed: ${r.stderr.trim().slice(-600)}`);
}

/** An image built from scratch around busybox-static, into the cluster's image store unless it has it already. */
function loadBusyboxImage(socket: string, busybox: string, buildDir: string, image: string, tail: string[]): void {
  if (String(ctr(socket, ['images', 'check', `name==${image}`]).stdout).includes(image)) return;
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(join(buildDir, 'busybox'), readFileSync(busybox), { mode: 0o755 });
  writeFileSync(join(buildDir, 'Dockerfile'), ['FROM scratch', 'COPY busybox /bin/busybox', ...tail, ''].join('\n'));
  const built = spawnSync('docker', ['build', '-q', '-t', image, buildDir]);
  if (built.status !== 0) throw new Error(`building ${image} failed: ${String(built.stderr).trim()}`);
  importImage(socket, image);
}

/** The pause image: a shell that waits for its TERM. */
export function loadPauseImage(socket: string, busybox: string, buildDir: string): void {
  loadBusyboxImage(socket, busybox, buildDir, PAUSE_IMAGE, [
    'ENTRYPOINT ["/bin/busybox", "sh", "-c", "trap \'exit 0\' TERM INT; while :; do /bin/busybox sleep 3600 & wait $!; done"]',
  ]);
}

/** The storage provisioner's helper image: busybox with its applets (sh, mkdir, rm) on the PATH. */
export function loadHelperImage(socket: string, busybox: string, buildDir: string): void {
  loadBusyboxImage(socket, busybox, buildDir, HELPER_IMAGE, [
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    'ENV PATH=/bin',
  ]);
}
