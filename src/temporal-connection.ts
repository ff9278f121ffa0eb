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
