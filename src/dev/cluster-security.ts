// A secured local cluster, shaped like a production one: the frontends speak TLS and require a client certificate
// signed by the cluster's CA (mutual TLS), and Temporal's own authorizer checks every call against the JWT it carries
// (the "API key" clients send as `Authorization: Bearer …`), verified with the public keys it fetches from a JWKS URL.
// Certificates come from openssl; the signing key and the JWKS endpoint (127.0.0.1, closed by `close`) live in the
// process that owns the cluster. Nothing here imitates Temporal: the server does all the checking.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { makeCa, makeLeaf } from './openssl-certs';

/** Files a client needs (TEMPORAL_TLS_* variables) and the server's own. */
export interface ClusterCertificates {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** The name every certificate of the server carries (also its IP, 127.0.0.1). */
export const CLUSTER_SERVER_NAME = 'localhost';

export class ClusterSecurity {
  private constructor(
    readonly certs: ClusterCertificates,
    private readonly signingKey: KeyObject,
    private readonly kid: string,
    private readonly jwks: Server,
  ) {}

  /** Certificates (made once per directory, kept for restarts), a signing key and its JWKS endpoint. */
  static async create(dir: string): Promise<ClusterSecurity> {
    mkdirSync(dir, { recursive: true });
    const certs = makeCertificates(dir);
    const keyFile = join(dir, 'jwt-signing.pem');
    if (!existsSync(keyFile)) {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    }
    const signingKey = createPrivateKey(readFileSync(keyFile));
    const kid = 'nestor-local';
    const jwk = { ...createPublicKey(signingKey).export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
    const jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    jwks.listen(0, '127.0.0.1');
    await once(jwks, 'listening');
    return new ClusterSecurity(certs, signingKey, kid, jwks);
  }

  get jwksUrl(): string {
    return `http://127.0.0.1:${(this.jwks.address() as AddressInfo).port}/jwks.json`;
  }

  /**
   * A JWT the server's default claim mapper accepts: `permissions` are `<namespace>:<role>` (read, write, worker,
   * admin), `temporal-system:admin` for cluster-wide calls. `signedBy` another key makes one the server must refuse.
   */
  apiKey(o: { subject?: string; permissions: string[]; ttlSeconds?: number; signedBy?: KeyObject }): string {
    const now = Math.floor(Date.now() / 1000);
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const head = b64({ alg: 'RS256', typ: 'JWT', kid: this.kid });
    const body = b64({
      sub: o.subject ?? 'nestor',
      permissions: o.permissions,
      iat: now,
      exp: now + (o.ttlSeconds ?? 24 * 3600),
      jti: randomUUID(),
    });
    const signature = sign('sha256', Buffer.from(`${head}.${body}`), o.signedBy ?? this.signingKey);
    return `${head}.${body}.${signature.toString('base64url')}`;
  }

  /** The server config's `global.tls` and `global.authorization`, indented under `global:`. */
  serverGlobalYaml(): string {
    const c = this.certs;
    return `  tls:
    frontend:
      server: { certFile: "${c.serverCert}", keyFile: "${c.serverKey}", requireClientAuth: true, clientCaFiles: ["${c.ca}"] }
      client: { serverName: "${CLUSTER_SERVER_NAME}", rootCaFiles: ["${c.ca}"] }
    systemWorker: { certFile: "${c.clientCert}", keyFile: "${c.clientKey}", client: { serverName: "${CLUSTER_SERVER_NAME}", rootCaFiles: ["${c.ca}"] } }
  authorization:
    jwtKeyProvider: { keySourceURIs: ["${this.jwksUrl}"], refreshInterval: 1m }
    permissionsClaimName: permissions
    authorizer: default
    claimMapper: default
`;
  }

  /** TLS options of an SDK connection with the cluster's client certificate. */
  clientTls() {
    return {
      serverNameOverride: CLUSTER_SERVER_NAME,
      serverRootCACertificate: readFileSync(this.certs.ca),
      clientCertPair: { crt: readFileSync(this.certs.clientCert), key: readFileSync(this.certs.clientKey) },
    };
  }

  async close(): Promise<void> {
    this.jwks.closeAllConnections();
    await new Promise((r) => this.jwks.close(r));
  }
}

/** A CA, a server certificate (localhost, 127.0.0.1) and a client certificate, all signed by that CA. */
function makeCertificates(dir: string): ClusterCertificates {
  const f = (name: string) => join(dir, name);
  const certs: ClusterCertificates = {
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server-key.pem'),
    clientCert: f('client.pem'),
    clientKey: f('client-key.pem'),
  };
  if (Object.values(certs).every((p) => existsSync(p))) return certs;
  const ca = { cert: certs.ca, key: f('ca-key.pem') };
  makeCa(ca.cert, ca.key, 'nestor local cluster CA');
  const leaf = (cert: string, key: string, cn: string, ext: string) => makeLeaf(ca, cert, key, `/CN=${cn}`, ext);
  leaf(
    certs.serverCert,
    certs.serverKey,
    CLUSTER_SERVER_NAME,
    `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:${CLUSTER_SERVER_NAME},IP:127.0.0.1\n`,
  );
  leaf(
    certs.clientCert,
    certs.clientKey,
    'nestor',
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );
  return certs;
}
