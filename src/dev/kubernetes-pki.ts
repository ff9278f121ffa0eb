// The local Kubernetes cluster's certificates and kubeconfigs: one CA; the API server's serving certificate; a client
// certificate for each component (the API server to the kubelets, the kubelet, the controller manager, the scheduler)
// and for an administrator (system:masters, what nestor's tests and `kubectl` use); the service-account key pair.
// Made once per directory with openssl, kept for restarts.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeCa, makeLeaf } from './openssl-certs';

export type ClientName = 'admin' | 'apiserver-kubelet-client' | 'kubelet' | 'controller-manager' | 'scheduler';

export interface KubernetesPki {
  dir: string;
  ca: string;
  caKey: string;
  apiserver: { cert: string; key: string };
  saPublic: string;
  saPrivate: string;
  client(name: ClientName): { cert: string; key: string };
  kubeconfig(name: ClientName): string;
}

/** The cluster's Service addresses (the API server's --service-cluster-ip-range). */
export const SERVICE_RANGE = '10.96.0.0/16';
/** The API server's address inside the cluster: the first of the Service range, named in its certificate. */
const KUBERNETES_SERVICE_IP = '10.96.0.1';

function subjectOf(name: ClientName, node: string): string {
  switch (name) {
    case 'admin':
      return '/CN=nestor-admin/O=system:masters';
    case 'apiserver-kubelet-client':
      return '/CN=kube-apiserver-kubelet-client/O=system:masters';
    case 'kubelet':
      return `/CN=system:node:${node}/O=system:nodes`;
    case 'controller-manager':
      return '/CN=system:kube-controller-manager';
    case 'scheduler':
      return '/CN=system:kube-scheduler';
  }
}

const CLIENTS: ClientName[] = ['admin', 'apiserver-kubelet-client', 'kubelet', 'controller-manager', 'scheduler'];

export function makePki(dir: string, o: { node: string; nodeIp: string; server: string }): KubernetesPki {
  mkdirSync(dir, { recursive: true });
  const f = (name: string) => join(dir, name);
  const pki: KubernetesPki = {
    dir,
    ca: f('ca.pem'),
    caKey: f('ca-key.pem'),
    apiserver: { cert: f('apiserver.pem'), key: f('apiserver-key.pem') },
    saPublic: f('sa.pub'),
    saPrivate: f('sa.key'),
    client: (name) => ({ cert: f(`${name}.pem`), key: f(`${name}-key.pem`) }),
    kubeconfig: (name) => f(`${name}.kubeconfig`),
  };
  const ca = { cert: pki.ca, key: pki.caKey };
  if (!existsSync(pki.ca)) makeCa(pki.ca, pki.caKey, 'nestor local kubernetes CA');
  // The serving certificate names the node's address too: it changes with the machine, so it is made again when it does.
  const sans = `IP:127.0.0.1,IP:${o.nodeIp},IP:${KUBERNETES_SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc`;
  const sanFile = f('apiserver.sans');
  if (!existsSync(pki.apiserver.cert) || !existsSync(sanFile) || readFileSync(sanFile, 'utf8') !== sans) {
    makeLeaf(
      ca,
      pki.apiserver.cert,
      pki.apiserver.key,
      '/CN=kube-apiserver',
      `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans}\n`,
    );
    writeFileSync(sanFile, sans);
  }
  for (const name of CLIENTS) {
    const { cert, key } = pki.client(name);
    if (!existsSync(cert))
      makeLeaf(
        ca,
        cert,
        key,
        subjectOf(name, o.node),
        'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
      );
    writeFileSync(pki.kubeconfig(name), kubeconfig(o.server, pki.ca, cert, key, name));
  }
  if (!existsSync(pki.saPrivate)) {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(pki.saPrivate, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(pki.saPublic, publicKey.export({ type: 'spki', format: 'pem' }));
  }
  return pki;
}

/** A kubeconfig (JSON is YAML) naming the certificate files, so it stays valid when they are made again. */
function kubeconfig(server: string, ca: string, cert: string, key: string, user: string): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'nestor-local', cluster: { server, 'certificate-authority': ca } }],
      users: [{ name: user, user: { 'client-certificate': cert, 'client-key': key } }],
      contexts: [{ name: 'nestor-local', context: { cluster: 'nestor-local', user } }],
      'current-context': 'nestor-local',
    },
    null,
    2,
  );
}
