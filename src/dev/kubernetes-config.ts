// The local Kubernetes' configuration files: the CNI network its pods are on, its private containerd's config, the
// kubelet's. Each setting that was needed on this kind of machine says why.
import { join } from 'node:path';
import { BRIDGE } from './kubernetes-host';
import { SERVICE_RANGE, type KubernetesPki } from './kubernetes-pki';
import { DEFAULT_SANDBOX_LIMITS } from '../defaults';

/** The pause image the cluster's pods share, made from Debian's busybox (no registry here). */
export const PAUSE_IMAGE = 'localhost/nestor-pause:1';
/** The image of the storage provisioner's helper pods (they make and remove volume directories): busybox. */
export const HELPER_IMAGE = 'localhost/nestor-busybox:1';
const POD_SUBNET = '10.244.0.0/24';

export function cniConfig(ipamDir: string) {
  return {
    cniVersion: '1.0.0',
    name: 'nestor-kubernetes',
    plugins: [
      {
        type: 'bridge',
        bridge: BRIDGE,
        isGateway: true,
        // Each pod's port on the bridge is isolated: pods reach this host, never each other (Docker's inter-container
        // traffic off). The cluster runs no NetworkPolicy engine (docs/kubernetes.md says why), so this is what keeps
        // one conversation's sandbox from another's here.
        portIsolation: true,
        // No masquerade: pods reach this host and each other, not the outside (this machine has no network anyway).
        ipMasq: false,
        ipam: {
          type: 'host-local',
          dataDir: ipamDir,
          ranges: [[{ subnet: POD_SUBNET }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export function containerdConfig(o: {
  root: string;
  state: string;
  socket: string;
  cniBin: string;
  cniConf: string;
}): string {
  return `version = 2
root = "${o.root}"
state = "${o.state}"
[grpc]
  address = "${o.socket}"
[ttrpc]
  address = "${o.socket}.ttrpc"
[debug]
  address = "${o.socket}.debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "${o.root}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # This machine's root lacks CAP_SYS_RESOURCE: runc cannot lower a sandbox's oom_score_adj (-998) and dies.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${o.cniBin}"
    conf_dir = "${o.cniConf}"
`;
}

export function kubeletConfig(k: { containerdSocket: string; nodeIp: string }, ca: string, dir: string) {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // This machine's cgroups are v1 (Kubernetes 1.35 refuses them unless told).
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${k.containerdSocket}`,
    address: k.nodeIp,
    healthzBindAddress: '127.0.0.1',
    readOnlyPort: 0,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: ca } },
    authorization: { mode: 'Webhook' },
    podLogsDir: join(dir, 'pod-logs'),
    // No iptables chains of the kubelet's own (there is no kube-proxy); fewer changes to the host.
    makeIPTablesUtilChains: false,
    // A pod's process limit is the node's on Kubernetes (no pod field): nestor's default sandbox limit.
    podPidsLimit: DEFAULT_SANDBOX_LIMITS.pidsLimit,
    // A small machine's disk is mostly full of images and build caches: evict only when it is nearly out.
    evictionHard: {
      'memory.available': '100Mi',
      'nodefs.available': '1%',
      'imagefs.available': '1%',
      'nodefs.inodesFree': '1%',
    },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    clusterDomain: 'cluster.local',
  };
}

/** The API server's command line: etcd, its port on 127.0.0.1, the cluster's PKI, the node's address. */
export function apiServerArgs(o: { etcdPort: number; apiPort: number; nodeIp: string; pki: KubernetesPki }): string[] {
  const kubeletClient = o.pki.client('apiserver-kubelet-client');
  return [
    `--etcd-servers=http://127.0.0.1:${o.etcdPort}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${o.apiPort}`,
    `--advertise-address=${o.nodeIp}`,
    `--service-cluster-ip-range=${SERVICE_RANGE}`,
    `--client-ca-file=${o.pki.ca}`,
    `--tls-cert-file=${o.pki.apiserver.cert}`,
    `--tls-private-key-file=${o.pki.apiserver.key}`,
    '--service-account-issuer=https://kubernetes.default.svc',
    `--service-account-key-file=${o.pki.saPublic}`,
    `--service-account-signing-key-file=${o.pki.saPrivate}`,
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    `--kubelet-client-certificate=${kubeletClient.cert}`,
    `--kubelet-client-key=${kubeletClient.key}`,
    // The node's host name does not resolve here: logs and exec reach the kubelet by its address.
    '--kubelet-preferred-address-types=InternalIP',
  ];
}
