// What a local Kubernetes changes on its host outside its own directory, whatever it is told, and how `stop` puts it
// back: the sysctls the kubelet sets (it "protects" kernel defaults otherwise), its cgroups, the pods' mounts and
// network namespaces, the CNI bridge, and directories the kubelet, containerd's shims and the CNI plugins make.
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

/** The CNI bridge the cluster's pods are on (kubernetes-config.ts). */
export const BRIDGE = 'nestorcni0';
const KUBELET_SYSCTLS = ['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops'];
/** Removed by `restore` when they were not there when the cluster started. */
const HOST_PATHS = ['/var/lib/kubelet', '/var/lib/cni', '/run/containerd', '/run/netns'];

/** The first non-loopback IPv4 address: the kubelet refuses a loopback node IP, and the API server reaches it there. */
export function nodeIp(): string {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name.startsWith('docker') || name.startsWith('br-') || name.startsWith('veth') || name === BRIDGE) continue;
    const a = (addrs ?? []).find((x) => x.family === 'IPv4' && !x.internal);
    if (a) return a.address;
  }
  throw new Error('no non-loopback IPv4 address on this machine: the kubelet needs one as its node IP');
}

export class HostChanges {
  private readonly sysctls = new Map<string, string>();
  private readonly madePaths: string[];

  /** Note the host as it is, before the cluster starts; `dir` is the cluster's own directory (its containerd's too). */
  constructor(private readonly dir: string) {
    for (const s of KUBELET_SYSCTLS) this.sysctls.set(s, readFileSync(`/proc/sys/${s}`, 'utf8').trim());
    this.madePaths = HOST_PATHS.filter((p) => !existsSync(p));
  }

  /**
   * Put the host back, once every process of the cluster is stopped: containerd's shims outlive it (a pod's shim
   * exits after containerd, and makes /run/containerd again on its way out), so they are ended and waited for first.
   * Idempotent.
   */
  async restore(): Promise<void> {
    await endShims(this.dir);
    for (const [s, v] of this.sysctls)
      if (readFileSync(`/proc/sys/${s}`, 'utf8').trim() !== v) writeFileSync(`/proc/sys/${s}`, v);
    // The pods' mounts (service-account tokens, volumes, the sandboxes' shm) under the cluster's directory and their
    // network namespaces, deepest first.
    const mounts = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1])
      .filter((m) => m && (m.startsWith(`${this.dir}/`) || m.startsWith('/run/netns/cni-')))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    for (const ns of existsSync('/run/netns') ? readdirSync('/run/netns') : [])
      if (ns.startsWith('cni-')) rmSync(join('/run/netns', ns), { force: true });
    spawnSync('ip', ['link', 'delete', BRIDGE]);
    // Its cgroups, leaf first, in every hierarchy (cgroup v1 here).
    for (const hierarchy of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : [])
      removeCgroupTree(join('/sys/fs/cgroup', hierarchy, 'kubepods'));
    rmSync('/var/lib/kubelet/device-plugins', { recursive: true, force: true });
    rmSync('/run/containerd/runc/k8s.io', { recursive: true, force: true });
    for (const p of this.madePaths) rmSync(p, { recursive: true, force: true });
  }
}

/** containerd's shims started for the containerd whose sockets are under `dir`: SIGKILL, then wait (5 s at most). */
async function endShims(dir: string): Promise<void> {
  const shims = () =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const args = readFileSync(`/proc/${p}/cmdline`, 'utf8');
          return args.includes('containerd-shim') && args.includes(dir);
        } catch {
          return false; // gone meanwhile
        }
      })
      .map(Number);
  for (const pid of shims()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  for (let i = 0; i < 50 && shims().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
}

/** A cgroup directory and everything under it (rmdir only: a cgroup with a process left refuses, and stays). */
function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
  spawnSync('rmdir', [dir]);
}
