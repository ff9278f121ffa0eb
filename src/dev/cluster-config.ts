// The local cluster's configuration: each server process's config file (persistence on PostgreSQL for both the
// default and the visibility store, its own ports, the shared cluster metadata) and nestor's dynamic config.
import { join } from 'node:path';
import { NESTOR_DYNAMIC_CONFIG } from './server';

export const SERVER_NAMES = ['a', 'b'] as const;
export type ServerName = (typeof SERVER_NAMES)[number];

export interface ClusterOptions {
  /** State: PostgreSQL's data, the servers' configs and logs. */
  dir: string;
  /** Where temporal-server, temporal-sql-tool and temporal-ui-server are (scripts/ensure-temporal-server.sh). */
  binDir: string;
  /** Frontend of server `a`; server `b` is 100 above. Every other port is an offset from it (see `ports`). */
  basePort: number;
  pgPort: number;
  namespace: string;
  /** Port of the Temporal UI server (`startUi`). */
  uiPort?: number;
  /** Dynamic config values for single namespaces, on top of nestor's. */
  dynamicConfig?: NamespaceOverrides;
  /**
   * Mutual TLS on the frontends and Temporal's authorizer checking a JWT on every call (cluster-security.ts); each
   * process then also runs an internal frontend, which the server's own system workers use without a JWT.
   */
  secure?: boolean;
}

/** One process's ports: 7233 → frontend 7233, history 7234, matching 7235, worker 7239, membership 6933…, http 7243. */
export function ports(base: number, name: ServerName) {
  const o = name === 'a' ? 0 : 100;
  const p = base + o;
  return {
    frontend: p,
    history: p + 1,
    matching: p + 2,
    internalFrontend: p + 3,
    worker: p + 6,
    membership: { frontend: p - 300, history: p - 299, matching: p - 298, internalFrontend: p - 297, worker: p - 294 },
    http: p + 10,
    pprof: p + 703,
    metrics: p + 767,
  };
}

/** A dynamic config value for one namespace only (a namespace's constraint is more specific than none). */
export type NamespaceOverrides = Record<string, { namespace: string; value: unknown }[]>;

/**
 * Dynamic config file text: nestor's values (dev/server.ts NESTOR_DYNAMIC_CONFIG) for every namespace, and any
 * per-namespace overrides (the tests give one namespace Temporal's own low defaults).
 */
export function dynamicConfigYaml(overrides: NamespaceOverrides = {}): string {
  const keys = [...new Set([...Object.keys(NESTOR_DYNAMIC_CONFIG), ...Object.keys(overrides)])];
  // JSON is YAML.
  return keys
    .map((k) => {
      const rows = (overrides[k] ?? []).map(
        (o) =>
          `  - value: ${JSON.stringify(o.value)}\n    constraints: { namespace: ${JSON.stringify(o.namespace)} }\n`,
      );
      if (k in NESTOR_DYNAMIC_CONFIG) rows.push(`  - value: ${JSON.stringify(NESTOR_DYNAMIC_CONFIG[k])}\n`);
      return `${k}:\n${rows.join('')}`;
    })
    .join('');
}

/**
 * A server process's config file (`<dir>/<name>.yaml`; server 1.29 reads it with --root, --config, --env).
 * `securityYaml`: the `global.tls` and `global.authorization` of a secure cluster (ClusterSecurity.serverGlobalYaml).
 */
export function serverConfig(o: ClusterOptions, name: ServerName, securityYaml = ''): string {
  const p = ports(o.basePort, name);
  const store = (db: string, conns: number) =>
    `{ sql: { pluginName: postgres12, databaseName: ${db}, connectAddr: "127.0.0.1:${o.pgPort}", connectProtocol: tcp, user: temporal, password: temporal, maxConns: ${conns}, maxIdleConns: ${conns}, maxConnLifetime: 1h } }`;
  const rpc = (grpc: number, membership: number, extra = '') =>
    `{ rpc: { grpcPort: ${grpc}, membershipPort: ${membership}, bindOnLocalHost: true${extra} } }`;
  return `log: { stdout: true, level: warn }
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default: ${store('temporal', 20)}
    visibility: ${store('temporal_visibility', 4)}
global:
  membership: { maxJoinDuration: 30s, broadcastAddress: "127.0.0.1" }
  pprof: { port: ${p.pprof} }
  metrics: { prometheus: { framework: tally, timerType: histogram, listenAddress: "127.0.0.1:${p.metrics}" } }
${securityYaml}services:
  frontend: ${rpc(p.frontend, p.membership.frontend, `, httpPort: ${p.http}`)}
  history: ${rpc(p.history, p.membership.history)}
  matching: ${rpc(p.matching, p.membership.matching)}
  worker: ${rpc(p.worker, p.membership.worker)}
${securityYaml ? `  internal-frontend: ${rpc(p.internalFrontend, p.membership.internalFrontend)}\n` : ''}clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active: { enabled: true, initialFailoverVersion: 1, rpcName: frontend, rpcAddress: "127.0.0.1:${ports(o.basePort, 'a').frontend}" }
dcRedirectionPolicy: { policy: noop }
dynamicConfigClient: { filepath: "${join(o.dir, 'dynamic-config.yaml')}", pollInterval: 10s }
`;
}
