// How every process of nestor reaches Temporal: the address, and TLS / API key when the configuration asks for them
// (a cluster with mTLS, Temporal Cloud). One home, so the worker, the CLI and library clients connect alike.
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import { ConfigError } from './errors';
import type { NestorConfig } from './config';
import { temporalAddress } from './config';

export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

/** Connection options of both SDK connections (client `Connection`, worker `NativeConnection`) from the config. */
export function temporalConnectionOptions(c: NestorConfig): TemporalConnectionOptions {
  const { tls, apiKey } = c.temporalAuth;
  return {
    address: temporalAddress(c),
    ...(apiKey && { apiKey }),
    ...(tls && {
      tls: {
        ...(tls.serverName && { serverNameOverride: tls.serverName }),
        ...(tls.serverCaCertPath && {
          serverRootCACertificate: readPem(tls.serverCaCertPath, 'TEMPORAL_TLS_SERVER_CA_CERT_PATH'),
        }),
        ...(tls.clientCertPath &&
          tls.clientKeyPath && {
            clientCertPair: {
              crt: readPem(tls.clientCertPath, 'TEMPORAL_TLS_CLIENT_CERT_PATH'),
              key: readPem(tls.clientKeyPath, 'TEMPORAL_TLS_CLIENT_KEY_PATH'),
            },
          }),
      },
    }),
  };
}

/** How the connection is secured, for start-up lines: never the key or a certificate's content. */
export function describeTemporalAuth(c: NestorConfig): string {
  const { tls, apiKey } = c.temporalAuth;
  if (!tls) return 'plain gRPC (no TLS)';
  return [
    'TLS',
    tls.clientCertPath ? 'client certificate' : '',
    tls.serverCaCertPath ? 'own CA' : '',
    apiKey ? 'API key' : '',
  ]
    .filter(Boolean)
    .join(', ');
}

function readPem(path: string, variable: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${variable}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** gRPC PERMISSION_DENIED and UNAUTHENTICATED: the server knows who called and refused them. */
const REFUSED_CODES: Record<number, string> = { 7: 'PERMISSION_DENIED', 16: 'UNAUTHENTICATED' };

/**
 * The same codes as the worker's native connection words them: it has no code field, only a message such as
 * `Failed to call GetSystemInfo: code: 'The caller does not have permission …', message: "Request unauthorized."`
 * (the descriptions of tonic, the gRPC library of Temporal's Rust core).
 */
const NATIVE_REFUSALS: Array<[RegExp, string]> = [
  [
    /code: 'The caller does not have permission to execute the specified operation', message: "([^"]*)"/,
    'PERMISSION_DENIED',
  ],
  [/code: 'The request does not have valid authentication credentials', message: "([^"]*)"/, 'UNAUTHENTICATED'],
];

/**
 * The server's refusal of the caller's credentials or permissions, found anywhere in an error's cause chain (the
 * SDKs wrap the gRPC error: "Failed to connect to Temporal server", "Failed to start Workflow"), as
 * `CODE: server's words`; undefined for any other failure.
 */
export function temporalRefusal(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, details, message } = e as { code?: unknown; details?: unknown; message?: unknown };
    if (typeof code === 'number' && REFUSED_CODES[code])
      return `${REFUSED_CODES[code]}: ${typeof details === 'string' && details ? details : (e as Error).message}`;
    for (const [pattern, name] of NATIVE_REFUSALS) {
      const m = typeof message === 'string' ? pattern.exec(message) : null;
      if (m) return `${name}: ${m[1]}`;
    }
  }
  return undefined;
}

/**
 * Why a connection to Temporal failed, and what to check: refused credentials name the API key; anything else (a
 * TLS handshake the server drops shows only as a timeout) names the address and the TLS settings in use.
 */
export function connectFailure(err: unknown, o: TemporalConnectionOptions): string {
  const refused = temporalRefusal(err);
  if (refused)
    return `Temporal at ${o.address} refused this client (${refused}); check TEMPORAL_API_KEY: ${o.apiKey ? 'a key the server accepts (not expired, signed by a key it trusts)' : 'the server requires one'}`;
  const cause = (err as Error)?.message ?? String(err);
  return o.tls
    ? `cannot reach Temporal at ${o.address} over TLS (${cause}); check TEMPORAL_ADDRESS, TEMPORAL_TLS_SERVER_CA_CERT_PATH (the CA that signed the server's certificate), TEMPORAL_TLS_SERVER_NAME (a name in it), and TEMPORAL_TLS_CLIENT_CERT_PATH/_KEY_PATH if the server requires a client certificate`
    : `cannot reach Temporal at ${o.address} (${cause}); check TEMPORAL_ADDRESS ('npm start' runs a server here); if the server requires TLS, set TEMPORAL_TLS=true and TEMPORAL_TLS_*`;
}
