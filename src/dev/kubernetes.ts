// A real single-node Kubernetes on this machine (issue 25), for `nestor kubernetes` and the tests: Debian's etcd, a
// private containerd (Debian's, with its CRI plugin, its own sockets and directories; Docker's is not touched), and
// kube-apiserver, kube-controller-manager, kube-scheduler and a kubelet v1.35.8 built from the Go module proxy
// (scripts/ensure-kubernetes.sh). Pods get addresses on a CNI bridge (10.244.0.0/24) reachable from this host. Every
// setting that was needed here, and why: ../shared/reference/kubernetes-local-cluster.md. Nothing here stands in for
// Kubernetes: these are its own processes, and nestor talks to the API server as it would to any cluster.
//
// What the kubelet and the CNI plugins change outside the cluster's directory is put back by `stop`
// (kubernetes-host.ts); the configuration files it writes: kubernetes-config.ts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { AdminApi, type ApiAnswer } from './kubernetes-api';
import { makePki, type KubernetesPki } from './kubernetes-pki';
import { apiServerArgs, cniConfig, containerdConfig, kubeletConfig } from './kubernetes-config';
import { ctr, importImage, loadHelperImage, loadPauseImage } from './kubernetes-images';
import { applyStorage, provisionerArgs } from './kubernetes-storage';
import { HostChanges, nodeIp } from './kubernetes-host';

export interface KubernetesOptions {
  /** State: certificates, etcd's data, containerd's root, the kubelet's directory, logs. */
  dir: string;
  /** Built binaries and Debian's parts (.tools/kubernetes-<version>). */
  toolsDir: string;
  /** The API server's port on 127.0.0.1. @default 16443 */
  apiPort?: number;
  /** etcd's client port on 127.0.0.1. @default 23790 */
  etcdPort?: number;
  /** etcd's peer port on 127.0.0.1 (one member: nothing connects to it, but etcd listens). @default 23791 */
  etcdPeerPort?: number;
}

/** The node's name (one node). */
export const NODE_NAME = 'nestor-node';
type Component =
  | 'etcd'
  | 'containerd'
  | 'kube-apiserver'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'kubelet'
  | 'local-path-provisioner';

/** What stops before containerd and etcd: whatever acts on pods first, the API server last. */
const STOP_FIRST = [
  'local-path-provisioner',
  'kubelet',
  'kube-scheduler',
  'kube-controller-manager',
  'kube-apiserver',
] as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LocalKubernetes {
  private readonly procs = new Map<Component, ChildProcess>();
  readonly apiPort: number;
  readonly etcdPort: number;
  readonly etcdPeerPort: number;
  readonly nodeIp = nodeIp();
  private pki?: KubernetesPki;
  private host?: HostChanges;

  constructor(readonly o: KubernetesOptions) {
    this.apiPort = o.apiPort ?? 16443;
    this.etcdPort = o.etcdPort ?? 23790;
    this.etcdPeerPort = o.etcdPeerPort ?? 23791;
  }

  get server(): string {
    return `https://127.0.0.1:${this.apiPort}`;
  }

  /** The administrator's kubeconfig (system:masters): what nestor's worker and `kubectl` use. */
  get kubeconfig(): string {
    return join(this.o.dir, 'pki', 'admin.kubeconfig');
  }

  get containerdSocket(): string {
    return join(this.o.dir, 'containerd', 'containerd.sock');
  }

  private bin(name: string): string {
    return name === 'etcd' ? join(this.o.toolsDir, 'debian/usr/bin/etcd') : join(this.o.toolsDir, 'bin', name);
  }

  private path(...parts: string[]): string {
    return join(this.o.dir, ...parts);
  }

  /** Everything, in order, each waited for; the node Ready and the default service account there. A start that fails stops what it started. */
  async start(): Promise<void> {
    try {
      await this.startAll();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startAll(): Promise<void> {
    const parts = [
      'etcd',
      'kube-apiserver',
      'kubelet',
      'kube-controller-manager',
      'kube-scheduler',
      'local-path-provisioner',
    ];
    for (const b of parts)
      if (!existsSync(this.bin(b))) throw new Error(`${this.bin(b)} missing: run scripts/ensure-kubernetes.sh`);
    mkdirSync(this.path('logs'), { recursive: true });
    this.pki = makePki(this.path('pki'), { node: NODE_NAME, nodeIp: this.nodeIp, server: this.server });
    this.host ??= new HostChanges(this.o.dir);
    await this.startEtcd();
    await this.startContainerd();
    await this.startApiServer();
    this.launch('kube-controller-manager', [
      `--kubeconfig=${this.pki.kubeconfig('controller-manager')}`,
      '--leader-elect=false',
      // No serving port (nothing here asks its health): two clusters' tests and a dev one do not clash on it.
      '--secure-port=0',
      `--service-account-private-key-file=${this.pki.saPrivate}`,
      `--root-ca-file=${this.pki.ca}`,
      '--use-service-account-credentials=true',
      `--cluster-signing-cert-file=${this.pki.ca}`,
      `--cluster-signing-key-file=${this.pki.caKey}`,
    ]);
    this.launch('kube-scheduler', [
      `--kubeconfig=${this.pki.kubeconfig('scheduler')}`,
      '--leader-elect=false',
      '--secure-port=0',
    ]);
    await this.startKubelet();
    await this.until('the default service account', async () => {
      const r = await this.api('GET', '/api/v1/namespaces/default/serviceaccounts/default');
      return r.status === 200;
    });
    // Dynamic volumes and the sandboxes' namespace (kubernetes-storage.ts).
    loadHelperImage(this.containerdSocket, join(this.o.toolsDir, 'debian/bin/busybox'), this.path('helper-image'));
    await applyStorage((m, p, b) => this.api(m, p, b), this.path('volumes'));
    this.launch('local-path-provisioner', provisionerArgs(this.kubeconfig));
  }

  private launch(name: Component, args: string[]): ChildProcess {
    const log = openSync(this.path('logs', `${name}.log`), 'a');
    // Its own process group: a Ctrl-C meant for nestor does not reach it before `stop` has stopped the kubelet.
    const child = spawn(name === 'containerd' ? 'containerd' : this.bin(name), args, {
      stdio: ['ignore', log, log],
      detached: true,
    });
    closeSync(log);
    this.procs.set(name, child);
    return child;
  }

  private async startEtcd(): Promise<void> {
    const client = `http://127.0.0.1:${this.etcdPort}`;
    this.launch('etcd', [
      '--name=nestor',
      `--data-dir=${this.path('etcd')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=http://127.0.0.1:${this.etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${this.etcdPeerPort}`,
      `--initial-cluster=nestor=http://127.0.0.1:${this.etcdPeerPort}`,
    ]);
    await this.until(
      'etcd',
      async () => {
        const r = await request(`${client}/health`);
        await r.body.text();
        return r.statusCode === 200;
      },
      'etcd',
    );
  }

  private async startContainerd(): Promise<void> {
    const d = (p: string) => this.path('containerd', p);
    mkdirSync(this.path('cni', 'net.d'), { recursive: true });
    writeFileSync(this.path('cni', 'net.d', '10-nestor.conflist'), JSON.stringify(cniConfig(this.path('cni', 'ipam'))));
    mkdirSync(d(''), { recursive: true });
    writeFileSync(
      d('config.toml'),
      containerdConfig({
        root: d('root'),
        state: d('state'),
        socket: this.containerdSocket,
        cniBin: join(this.o.toolsDir, 'cni'),
        cniConf: this.path('cni', 'net.d'),
      }),
    );
    this.launch('containerd', ['--config', d('config.toml')]);
    await this.until('containerd', async () => this.ctr(['version']).status === 0, 'containerd');
    loadPauseImage(this.containerdSocket, join(this.o.toolsDir, 'debian/bin/busybox'), this.path('pause-image'));
  }

  /** `ctr` against this cluster's containerd, in Kubernetes' namespace. */
  ctr(args: string[]): ReturnType<typeof spawnSync> {
    return ctr(this.containerdSocket, args);
  }

  /** A Docker image into the cluster's image store: its pods run it with imagePullPolicy Never. */
  importImage(image: string): void {
    importImage(this.containerdSocket, image);
  }

  private async startApiServer(): Promise<void> {
    const p = this.pki!;
    this.launch(
      'kube-apiserver',
      apiServerArgs({ etcdPort: this.etcdPort, apiPort: this.apiPort, nodeIp: this.nodeIp, pki: p }),
    );
    await this.until('kube-apiserver', async () => (await this.api('GET', '/readyz')).status === 200, 'kube-apiserver');
  }

  private async startKubelet(): Promise<void> {
    const p = this.pki!;
    const dir = this.path('kubelet');
    mkdirSync(join(dir, 'pod-logs'), { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(kubeletConfig(this, p.ca, dir)));
    this.launch('kubelet', [
      `--config=${join(dir, 'config.json')}`,
      `--kubeconfig=${p.kubeconfig('kubelet')}`,
      `--root-dir=${join(dir, 'root')}`,
      `--cert-dir=${join(dir, 'pki')}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${this.nodeIp}`,
    ]);
    await this.until(
      'the node Ready',
      async () => {
        const r = await this.api('GET', `/api/v1/nodes/${NODE_NAME}`);
        const conditions = (r.body as { status?: { conditions?: Array<{ type: string; status: string }> } })?.status
          ?.conditions;
        return !!conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      },
      'kubelet',
    );
  }

  /** A request to the API server as the administrator (kubernetes-api.ts). */
  api(method: string, path: string, body?: unknown, contentType?: string): Promise<ApiAnswer> {
    this.admin ??= new AdminApi(this.server, this.pki!);
    return this.admin.call(method, path, body, contentType);
  }

  private admin?: AdminApi;

  private async until(what: string, ok: () => Promise<boolean>, component?: Component, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (await ok()) return;
      } catch {
        // not answering yet
      }
      const proc = component && this.procs.get(component);
      if (proc && (proc.exitCode !== null || proc.signalCode !== null))
        throw new Error(
          `${component} exited (${proc.exitCode ?? proc.signalCode}) before ${what}; see ${this.path('logs', `${component}.log`)}`,
        );
      if (Date.now() > deadline)
        throw new Error(`${what} not there within ${timeoutMs} ms; logs in ${this.path('logs')}`);
      await sleep(200);
    }
  }

  /**
   * Stop everything and put back what the kubelet and CNI changed on the host. The cluster's state (etcd, images,
   * certificates) stays for the next start; pods are started again by their kubelet then.
   */
  async stop(): Promise<void> {
    await this.admin?.close();
    this.admin = undefined;
    for (const name of STOP_FIRST) await this.kill(name);
    // The pods' containers run under shims that outlive containerd: stop them first, then containerd.
    if (this.procs.has('containerd')) {
      const tasks = this.ctr(['tasks', 'list', '-q']).stdout?.toString().split('\n').filter(Boolean) ?? [];
      for (const t of tasks) this.ctr(['tasks', 'kill', '-s', 'SIGKILL', t]);
      for (const t of tasks) this.ctr(['tasks', 'delete', '-f', t]);
    }
    await this.kill('containerd');
    await this.kill('etcd');
    await this.host?.restore();
    rmSync(this.path('cni', 'ipam'), { recursive: true, force: true });
  }

  private async kill(name: Component): Promise<void> {
    const p = this.procs.get(name);
    this.procs.delete(name);
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}
